#pragma once

#include <torch/torch.h>

#include "core/context.h"

namespace twistar {

/// The libtorch device named by the context.
torch::Device torch_device(const Context& ctx);

}  // namespace twistar
