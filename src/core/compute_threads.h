// A scoped intra-op thread count: holds libtorch's and the BLAS's threads (set_compute_threads,
// core/context.h) at n for the guard's lifetime and restores the previous count after, also when an
// exception leaves the scope. Latency is timed on one thread (eval/evaluator.h), the cost model is
// measured on one (agent/episodes.h), and the planner trains on one so that it is the same for every
// --threads (agent/planner.h).
#pragma once

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

}  // namespace twistar
