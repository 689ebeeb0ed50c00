// The explicit execution context passed to every component instead of globals: which device, how many
// threads, which seed.
#pragma once

#include <cstdint>
#include <string>

namespace twistar {

struct Context {
  /// "cpu" or "cuda" / "cuda:N" (needs a CUDA build of libtorch).
  std::string device = "cpu";
  /// Intra-op threads for training and batched inference; 0 means all hardware threads.
  int threads = 0;
  /// Seed for every random choice (data shuffling, initialisation, dropout, sampling).
  uint64_t seed = 42;

  /// Threads actually used (resolves 0).
  int resolved_threads() const;
  /// Validates the fields and applies threads and seed to libtorch. Debian's libtorch starts with one
  /// intra-op thread, so this must run before any training.
  void apply() const;
};

/// Sets the intra-op threads of libtorch and of its BLAS (OpenBLAS runs its own pool) together.
void set_compute_threads(int n);

}  // namespace twistar
