#include "core/context.h"

#include <torch/torch.h>

#include <thread>

#include "core/error.h"

// OpenBLAS keeps its own thread pool, separate from libtorch's: left alone it splits even the tiny
// matrix products of a single request over every core and spins in sched_yield, which made one
// fast_rec request 10x slower and a second training thread a net loss on the 2-core VM. Weak, so
// the program still runs against a BLAS without this entry point.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace twistar {

void set_compute_threads(int n) {
  torch::set_num_threads(n);
  if (openblas_set_num_threads) openblas_set_num_threads(n);
}

int Context::resolved_threads() const {
  if (threads > 0) return threads;
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

void Context::apply() const {
  if (threads < 0) throw_input_error("threads: must be >= 0 (0 = all cores), got {}", threads);
  if (device != "cpu" && device.rfind("cuda", 0) != 0)
    throw_input_error("device: expected 'cpu' or 'cuda[:N]', got '{}'", device);
  if (device.rfind("cuda", 0) == 0 && !torch::cuda::is_available())
    throw_input_error("device: '{}' requested but this libtorch build has no usable CUDA device",
                      device);
  set_compute_threads(resolved_threads());
  torch::manual_seed(seed);
}

}  // namespace twistar
