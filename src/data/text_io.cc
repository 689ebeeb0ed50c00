#include "data/text_io.h"

#include <charconv>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace twistar {

LineReader::LineReader(std::string path) : path_(std::move(path)), buf_(1 << 16) {
  // gzopen reads plain files transparently too, so one code path serves both.
  gz_ = gzopen(path_.c_str(), "rb");
  if (!gz_) throw_input_error("{}: cannot open file", path_);
  gzbuffer(gz_, 1 << 17);
}

LineReader::~LineReader() {
  if (gz_) gzclose(gz_);
}

bool LineReader::fill() {
  if (eof_) return false;
  int n = gzread(gz_, buf_.data(), static_cast<unsigned>(buf_.size()));
  if (n < 0) {
    int err = 0;
    const char* msg = gzerror(gz_, &err);
    throw_input_error("{}: read error after line {}: {}", path_, line_, msg ? msg : "?");
  }
  if (n == 0) {
    // A gzip stream cut short ends like a file (0 bytes); only gzerror tells the two apart.
    int err = Z_OK;
    gzerror(gz_, &err);
    if (err == Z_BUF_ERROR)
      throw_input_error("{}: compressed data ends early, after line {} (the file is truncated)", path_, line_);
    eof_ = true;
    return false;
  }
  pos_ = 0;
  end_ = static_cast<size_t>(n);
  return true;
}

bool LineReader::next(std::string& line) {
  line.clear();
  bool any = false;
  while (true) {
    if (pos_ >= end_ && !fill()) break;
    any = true;
    const char* start = buf_.data() + pos_;
    const void* nl = std::memchr(start, '\n', end_ - pos_);
    if (nl) {
      size_t len = static_cast<const char*>(nl) - start;
      line.append(start, len);
      pos_ += len + 1;
      ++line_;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return true;
    }
    line.append(start, end_ - pos_);
    pos_ = end_;
  }
  if (!any || line.empty()) return false;
  ++line_;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

void LineReader::fail(const std::string& message) const {
  throw InputError(at_line(path_, line_, message));
}

std::vector<std::string_view> split_ws(std::string_view s, std::string_view delims) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    i = s.find_first_not_of(delims, i);
    if (i == std::string_view::npos) break;
    size_t j = s.find_first_of(delims, i);
    if (j == std::string_view::npos) j = s.size();
    out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::vector<std::string_view> split_exact(std::string_view s, char delim) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t j = s.find(delim, start);
    if (j == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, j - start));
    start = j + 1;
  }
}

std::string_view trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

bool parse_int64(std::string_view s, int64_t& out) {
  if (s.empty()) return false;
  const char* first = s.data();
  if (*first == '+') ++first;
  auto [ptr, ec] = std::from_chars(first, s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

bool parse_double(std::string_view s, double& out) {
  if (s.empty()) return false;
  std::string tmp(s);
  char* end = nullptr;
  out = std::strtod(tmp.c_str(), &end);
  return end == tmp.c_str() + tmp.size();
}

}  // namespace twistar
