#include "core/hash.h"

#include <fmt/format.h>

#include <fstream>
#include <vector>

#include "core/error.h"

namespace twistar {

uint64_t fnv1a64(std::string_view bytes, uint64_t seed) {
  uint64_t h = seed;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string hash_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_input_error("{}: cannot open file", path.string());
  std::vector<char> buf(1 << 16);
  uint64_t h = 0xcbf29ce484222325ULL;
  while (in) {
    in.read(buf.data(), buf.size());
    h = fnv1a64(std::string_view(buf.data(), in.gcount()), h);
  }
  return fmt::format("{:016x}", h);
}

std::string hash_string(std::string_view bytes) { return fmt::format("{:016x}", fnv1a64(bytes)); }

}  // namespace twistar
