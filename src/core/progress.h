// A progress bar with rate and ETA for every long loop. On a terminal it redraws one line; elsewhere
// (CI logs, pipes) it prints a line every 10% so logs stay short. Safe to tick from several threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>

namespace twistar {

class Progress {
 public:
  Progress(std::string label, size_t total, bool enabled = true);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void tick(size_t n = 1);
  /// Steps ticked so far.
  size_t done() const;
  /// Free text shown after the counters (e.g. the current loss).
  void set_note(std::string note);
  void finish();

  /// Globally silences progress output (tests, --quiet).
  static void set_quiet(bool quiet);

 private:
  void draw(bool final);

  std::string label_;
  std::string note_;
  size_t total_;
  size_t done_ = 0;
  bool enabled_;
  bool tty_;
  bool finished_ = false;
  int last_decile_ = -1;
  mutable std::mutex mutex_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace twistar
