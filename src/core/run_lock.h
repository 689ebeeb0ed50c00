// One writer per run directory: every command that writes into RUN holds an advisory lock on
// RUN/.lock (flock, released by the kernel when the process ends, kill -9 included). A second writer
// fails at once with the holder's pid instead of silently replacing the first one's models.
#pragma once

#include <filesystem>
#include <string>

namespace twistar {

class RunLock {
 public:
  /// Creates RUN (and RUN/.lock) if needed and takes the lock, writing this process's pid into the
  /// file; throws InputError naming the holder's pid when another process has it. Then removes the
  /// temporary files (`.NAME.tmp.PID.HEX`, core/atomic_file.h) an earlier writer killed mid-write left:
  /// with the lock held, nobody else can be writing them. `command` names the holder in the file.
  RunLock(const std::filesystem::path& run_dir, const std::string& command);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  /// Temporary files removed when the lock was taken.
  size_t stale_removed() const { return stale_removed_; }

 private:
  int fd_ = -1;
  size_t stale_removed_ = 0;
};

}  // namespace twistar
