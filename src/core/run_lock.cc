#include "core/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <regex>
#include <system_error>

#include "core/error.h"
#include "core/log.h"

namespace twistar {
namespace fs = std::filesystem;

namespace {

/// What the holder wrote into the lock file ("pid command"), for the second writer's message.
std::string read_holder(int fd) {
  char buf[512] = {0};
  const ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  std::string s = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

size_t remove_stale_temporaries(const fs::path& run_dir) {
  static const std::regex temp_name(R"(\..+\.tmp\.[0-9]+\.[0-9a-f]+)");
  size_t removed = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(run_dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec) || !std::regex_match(it->path().filename().string(), temp_name)) continue;
    std::error_code rm;
    if (fs::remove(it->path(), rm)) {
      ++removed;
      spdlog::warn("{}: removed a temporary file an interrupted write left", it->path().string());
    }
  }
  return removed;
}

}  // namespace

RunLock::RunLock(const fs::path& run_dir, const std::string& command) {
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) throw_input_error("{}: cannot create the run directory: {}", run_dir.string(), ec.message());
  const fs::path path = run_dir / ".lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw_input_error("{}: cannot open: {}", path.string(), std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string holder = err == EWOULDBLOCK ? read_holder(fd_) : std::string();
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK) throw_input_error("{}: cannot lock: {}", path.string(), std::strerror(err));
    const size_t space = holder.find(' ');
    const std::string pid = holder.substr(0, space), what = space == std::string::npos ? "" : holder.substr(space + 1);
    throw_input_error("{}: another twistar process (pid {}{}) is writing this run; wait for it to finish or use "
                      "another --run",
                      run_dir.string(), pid.empty() ? "unknown" : pid, what.empty() ? "" : ": " + what);
  }
  const std::string me = std::to_string(::getpid()) + " " + command.substr(0, 400) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) < 0)
    spdlog::warn("{}: could not record this process in the lock file", path.string());
  stale_removed_ = remove_stale_temporaries(run_dir);
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

}  // namespace twistar
