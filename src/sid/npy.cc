#include "sid/npy.h"

#include <fmt/format.h>

#include <cstring>
#include <regex>
#include <string>

#include "core/atomic_file.h"
#include "core/error.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the .npy reader assumes a little-endian host");

namespace twistar {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
  size_t data_offset = 0;
};

// The value of `key` in the header's Python dict literal, as raw text ("'<f4'", "False", "(3, 4)").
std::string dict_value(const std::string& dict, const std::string& key, const std::string& file) {
  const std::regex pattern("['\"]" + key + "['\"]\\s*:\\s*('[^']*'|\"[^\"]*\"|\\([^)]*\\)|\\w+)");
  std::smatch m;
  if (!std::regex_search(dict, m, pattern))
    throw_input_error("{}: .npy header has no '{}' field: {}", file, key, dict);
  return m[1].str();
}

std::vector<int64_t> parse_shape(const std::string& text) {
  std::vector<int64_t> shape;
  const std::regex number("\\d+");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), number);
       it != std::sregex_iterator(); ++it)
    shape.push_back(std::stoll(it->str()));
  return shape;
}

NpyHeader parse_header(const std::string& bytes, const std::string& file) {
  if (bytes.size() < 10 || bytes.compare(0, kMagicSize, kMagic, kMagicSize) != 0)
    throw_input_error("{}: not a .npy file (bad magic)", file);
  const auto major = static_cast<uint8_t>(bytes[6]);
  if (major < 1 || major > 3)
    throw_input_error("{}: unsupported .npy format version {}.{}", file, major,
                      static_cast<uint8_t>(bytes[7]));
  size_t length = 0, start = 10;
  if (major == 1) {
    length =
        static_cast<uint8_t>(bytes[8]) | (static_cast<size_t>(static_cast<uint8_t>(bytes[9])) << 8);
  } else {
    if (bytes.size() < 12) throw_input_error("{}: truncated .npy header", file);
    uint32_t len32 = 0;
    std::memcpy(&len32, bytes.data() + 8, 4);
    length = len32;
    start = 12;
  }
  if (start + length > bytes.size()) throw_input_error("{}: truncated .npy header", file);
  const std::string dict = bytes.substr(start, length);
  NpyHeader h;
  h.descr = dict_value(dict, "descr", file);
  h.descr = h.descr.substr(1, h.descr.size() - 2);  // Strip the quotes.
  const std::string fortran = dict_value(dict, "fortran_order", file);
  if (fortran != "True" && fortran != "False")
    throw_input_error("{}: .npy fortran_order is '{}', expected True or False", file, fortran);
  h.fortran_order = fortran == "True";
  h.shape = parse_shape(dict_value(dict, "shape", file));
  h.data_offset = start + length;
  return h;
}

}  // namespace

EmbeddingMatrix load_npy(const std::filesystem::path& path) {
  const std::string file = path.string();
  const std::string bytes = read_file(path);
  const NpyHeader h = parse_header(bytes, file);
  if (h.descr != "<f4" && h.descr != "=f4" && h.descr != "f4")
    throw_input_error("{}: dtype '{}' is not float32 ('<f4'); save with x.astype(np.float32)", file,
                      h.descr);
  if (h.shape.size() != 2)
    throw_input_error("{}: expected a 2-D matrix [items x dim], got {} dimensions", file,
                      h.shape.size());
  const int64_t rows = h.shape[0], cols = h.shape[1];
  const size_t expected = static_cast<size_t>(rows) * static_cast<size_t>(cols) * sizeof(float);
  if (bytes.size() - h.data_offset != expected)
    throw_input_error("{}: {} data bytes for shape ({}, {}), expected {}", file,
                      bytes.size() - h.data_offset, rows, cols, expected);
  EmbeddingMatrix m(rows, cols);
  if (h.fortran_order) {
    Eigen::MatrixXf column_major(rows, cols);
    std::memcpy(column_major.data(), bytes.data() + h.data_offset, expected);
    m = column_major;
  } else {
    std::memcpy(m.data(), bytes.data() + h.data_offset, expected);
  }
  return m;
}

void save_npy(const std::filesystem::path& path, const EmbeddingMatrix& matrix) {
  std::string dict = fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
                                 matrix.rows(), matrix.cols());
  // Pad with spaces and a final newline so magic + version + length + dict is a multiple of 64.
  const size_t unpadded = kMagicSize + 2 + 2 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict.push_back('\n');
  std::string out(kMagic, kMagicSize);
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(dict.size() & 0xff));
  out.push_back(static_cast<char>(dict.size() >> 8));
  out += dict;
  out.append(reinterpret_cast<const char*>(matrix.data()), sizeof(float) * matrix.size());
  write_file_atomic(path, out);
}

}  // namespace twistar
