// A scoped intra-op thread count: holds libtorch's and the BLAS's threads (set_compute_threads,
// core/context.h) at n for the guard's lifetime and restores the previous count after, also when an
// exception leaves the scope. Latency is timed on one thread (eval/evaluator.h), the cost model is
// measured on one (agent/episodes.h), and the planner trains on one so that it is the same for every
// --threads (agent/planner.h). for_each_task spreads independent tasks over request threads.
#pragma once

#include <cstddef>
#include <functional>

namespace twistar {

class ComputeThreadsGuard {
 public:
  explicit ComputeThreadsGuard(int n);
  ~ComputeThreadsGuard();
  ComputeThreadsGuard(const ComputeThreadsGuard&) = delete;
  ComputeThreadsGuard& operator=(const ComputeThreadsGuard&) = delete;

 private:
  int previous_;
};

/// Runs task(0), ..., task(tasks - 1), each once. With threads > 1 (capped at tasks) they are taken in
/// order by that many threads, each with one intra-op thread (many small per-request tensors use two
/// cores better that way than one request with two intra-op threads); otherwise they run in order on
/// the caller's thread at its intra-op threads. The first exception a task throws stops the other
/// threads after their current task and is rethrown here.
void for_each_task(size_t tasks, size_t threads, const std::function<void(size_t)>& task);

}  // namespace twistar
