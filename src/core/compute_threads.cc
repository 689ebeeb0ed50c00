#include "core/compute_threads.h"

#include <torch/torch.h>

#include "core/context.h"

namespace twistar {

ComputeThreadsGuard::ComputeThreadsGuard(int n) : previous_(torch::get_num_threads()) { set_compute_threads(n); }

ComputeThreadsGuard::~ComputeThreadsGuard() { set_compute_threads(previous_); }

}  // namespace twistar
