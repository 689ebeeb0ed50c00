#include "nn/device.h"

namespace twistar {

torch::Device torch_device(const Context& ctx) { return torch::Device(ctx.device); }

}  // namespace twistar
