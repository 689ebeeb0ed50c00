#include "nn/loss.h"

namespace twistar {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

struct FusedSoftmaxCrossEntropy : public torch::autograd::Function<FusedSoftmaxCrossEntropy> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor hidden, torch::Tensor weight,
                               torch::Tensor targets) {
    auto logits = hidden.mm(weight.t());
    auto lse = logits.logsumexp(1, true);
    auto picked = logits.gather(1, targets.unsqueeze(1));
    auto loss = (lse - picked).mean();
    ctx->save_for_backward({hidden, weight, targets, logits, lse});
    return loss;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    auto hidden = saved[0], weight = saved[1], targets = saved[2], probs = saved[3], lse = saved[4];
    // The saved logits become the softmax in place: backward runs once per forward.
    probs.sub_(lse).exp_();
    probs.scatter_add_(1, targets.unsqueeze(1),
                       -torch::ones({probs.size(0), 1}, probs.options()));
    // Scaling the small [P, D] and [V, D] products is cheaper than scaling [P, V].
    auto scale = grads[0] / static_cast<double>(probs.size(0));
    auto d_hidden = probs.mm(weight).mul_(scale);
    auto d_weight = probs.t().mm(hidden).mul_(scale);
    return {d_hidden, d_weight, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor full_softmax_cross_entropy(const torch::Tensor& hidden, const torch::Tensor& weight,
                                         const torch::Tensor& targets) {
  return FusedSoftmaxCrossEntropy::apply(hidden, weight, targets);
}

}  // namespace twistar
