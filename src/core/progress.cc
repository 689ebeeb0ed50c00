#include "core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

namespace twistar {

namespace {
std::atomic<bool> g_quiet{false};

std::string format_seconds(double s) {
  if (s < 0 || s > 1e7) return "?";
  int total = static_cast<int>(s + 0.5);
  if (total >= 3600) return fmt::format("{}h{:02}m", total / 3600, (total % 3600) / 60);
  return fmt::format("{}:{:02}", total / 60, total % 60);
}
}  // namespace

void Progress::set_quiet(bool quiet) { g_quiet = quiet; }

Progress::Progress(std::string label, size_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled && !g_quiet),
      tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() { finish(); }

void Progress::set_note(std::string note) {
  std::lock_guard<std::mutex> lock(mutex_);
  note_ = std::move(note);
}

size_t Progress::done() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return done_;
}

void Progress::tick(size_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  done_ += n;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ > std::chrono::milliseconds(200) || done_ >= total_) {
      last_draw_ = now;
      draw(false);
    }
  } else if (total_ > 0) {
    int decile = static_cast<int>(10 * done_ / total_);
    if (decile != last_decile_ && decile < 10) {
      last_decile_ = decile;
      draw(false);
    }
  }
}

void Progress::draw(bool final) {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = elapsed > 0 ? done_ / elapsed : 0.0;
  double eta = rate > 0 && total_ > done_ ? (total_ - done_) / rate : 0.0;
  double frac = total_ ? std::min(1.0, static_cast<double>(done_) / total_) : 1.0;
  const int width = 24;
  int filled = static_cast<int>(frac * width);
  std::string bar = std::string(filled, '#') + std::string(width - filled, '.');
  std::string line = fmt::format("{} [{}] {}/{} {:.0f}% {:.1f}/s elapsed {} eta {}{}{}", label_, bar,
                                 done_, total_, 100 * frac, rate, format_seconds(elapsed),
                                 format_seconds(eta), note_.empty() ? "" : " ", note_);
  if (tty_)
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  else
    std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  finished_ = true;
  if (enabled_ && (tty_ || done_ > 0)) draw(true);
}

}  // namespace twistar
