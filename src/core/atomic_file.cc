#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>

#include "core/error.h"

namespace twistar {
namespace fs = std::filesystem;

namespace {

fs::path temp_sibling(const fs::path& path) {
  std::random_device rd;
  return path.parent_path() /
         fmt::format(".{}.tmp.{}.{:x}", path.filename().string(), ::getpid(), rd());
}

void fsync_path(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void commit(const fs::path& tmp, const fs::path& path) {
  fsync_path(tmp);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw_error("cannot move {} into place: {}", path.string(), ec.message());
  }
  fsync_path(path.parent_path().empty() ? fs::path(".") : path.parent_path());
}

void ensure_parent(const fs::path& path) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
}

}  // namespace

void write_path_atomic(const fs::path& path, const std::function<void(const fs::path&)>& writer) {
  ensure_parent(path);
  fs::path tmp = temp_sibling(path);
  try {
    writer(tmp);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  if (!fs::exists(tmp)) throw_error("writing {} produced no file", path.string());
  commit(tmp, path);
}

void write_file_atomic(const fs::path& path, const std::function<void(std::ostream&)>& writer) {
  write_path_atomic(path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw_error("cannot open {} for writing", tmp.string());
    writer(out);
    out.flush();
    if (!out) throw_error("write to {} failed (disk full?)", tmp.string());
  });
}

void write_file_atomic(const fs::path& path, const std::string& content) {
  write_file_atomic(path, [&](std::ostream& out) { out.write(content.data(), content.size()); });
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_input_error("{}: cannot open file", path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace twistar
