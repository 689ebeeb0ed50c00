#include "nn/loss.h"

#include <ATen/Parallel.h>

namespace twistar {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

int64_t num_chunks(int64_t rows) { return (rows + kCrossEntropyChunk - 1) / kCrossEntropyChunk; }

struct FusedSoftmaxCrossEntropy : public torch::autograd::Function<FusedSoftmaxCrossEntropy> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor hidden, torch::Tensor weight,
                               torch::Tensor targets) {
    torch::NoGradGuard no_grad;
    const int64_t P = hidden.size(0);
    auto lse = torch::empty({P}, hidden.options());
    auto picked = torch::empty({P}, hidden.options());
    auto weight_t = weight.t().contiguous();
    at::parallel_for(0, num_chunks(P), 1, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        int64_t r0 = c * kCrossEntropyChunk, r1 = std::min(P, r0 + kCrossEntropyChunk);
        auto logits = hidden.slice(0, r0, r1).mm(weight_t);
        lse.slice(0, r0, r1).copy_(logits.logsumexp(1));
        picked.slice(0, r0, r1).copy_(
            logits.gather(1, targets.slice(0, r0, r1).unsqueeze(1)).squeeze(1));
      }
    });
    ctx->save_for_backward({hidden, weight, targets, lse});
    return (lse - picked).mean();
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    torch::NoGradGuard no_grad;
    auto saved = ctx->get_saved_variables();
    auto hidden = saved[0], weight = saved[1], targets = saved[2], lse = saved[3];
    const int64_t P = hidden.size(0);
    const double scale = grads[0].item<double>() / static_cast<double>(P);
    auto weight_t = weight.t().contiguous();
    auto d_hidden = torch::empty_like(hidden);
    const int threads = at::get_num_threads();
    std::vector<torch::Tensor> d_weight_parts(threads);
    at::parallel_for(0, num_chunks(P), 1, [&](int64_t begin, int64_t end) {
      auto& d_weight = d_weight_parts[at::get_thread_num()];
      if (!d_weight.defined()) d_weight = torch::zeros_like(weight);
      for (int64_t c = begin; c < end; ++c) {
        int64_t r0 = c * kCrossEntropyChunk, r1 = std::min(P, r0 + kCrossEntropyChunk);
        auto h = hidden.slice(0, r0, r1);
        // softmax(z) - onehot(target), recomputed from the saved log-sum-exp.
        auto probs = h.mm(weight_t).sub_(lse.slice(0, r0, r1).unsqueeze(1)).exp_();
        probs.scatter_add_(1, targets.slice(0, r0, r1).unsqueeze(1),
                           torch::full({r1 - r0, 1}, -1.0, probs.options()));
        d_hidden.slice(0, r0, r1).copy_(probs.mm(weight).mul_(scale));
        d_weight.addmm_(probs.t(), h, 1.0, scale);
      }
    });
    torch::Tensor d_weight;
    for (auto& part : d_weight_parts)
      if (part.defined()) d_weight = d_weight.defined() ? d_weight.add_(part) : part;
    if (!d_weight.defined()) d_weight = torch::zeros_like(weight);
    return {d_hidden, d_weight, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor full_softmax_cross_entropy(const torch::Tensor& hidden, const torch::Tensor& weight,
                                         const torch::Tensor& targets) {
  return FusedSoftmaxCrossEntropy::apply(hidden, weight, targets);
}

}  // namespace twistar
