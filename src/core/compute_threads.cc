#include "core/compute_threads.h"

#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>
#include <vector>

#include "core/context.h"

namespace twistar {

ComputeThreadsGuard::ComputeThreadsGuard(int n) : previous_(torch::get_num_threads()) { set_compute_threads(n); }

ComputeThreadsGuard::~ComputeThreadsGuard() { set_compute_threads(previous_); }

void for_each_task(size_t tasks, size_t threads, const std::function<void(size_t)>& task) {
  threads = std::min(threads, tasks);
  if (threads <= 1) {
    for (size_t t = 0; t < tasks; ++t) task(t);
    return;
  }
  const ComputeThreadsGuard one_thread(1);
  std::atomic<size_t> next{0};
  std::vector<std::exception_ptr> errors(threads);
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (size_t w = 0; w < threads; ++w)
    workers.emplace_back([&, w] {
      try {
        set_compute_threads(1);  // OpenMP keeps the count per thread: a new thread starts at the default
        for (size_t t = next++; t < tasks; t = next++) task(t);
      } catch (...) {
        errors[w] = std::current_exception();
        next = tasks;  // the others stop after their current task
      }
    });
  for (auto& w : workers) w.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace twistar
