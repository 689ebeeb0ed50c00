#include "core/context.h"

#include <torch/torch.h>

#include <thread>

#include "core/error.h"

namespace twistar {

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
  torch::set_num_threads(resolved_threads());
  torch::manual_seed(seed);
}

}  // namespace twistar
