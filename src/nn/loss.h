// Full-softmax cross-entropy over a large output vocabulary (all items for SASRec), fused with the
// output projection. Exact, not sampled.
//
// Why fused: the plain path materialises [positions x vocabulary] logits (37 MB for a Beauty batch),
// walks them about ten times (log_softmax, nll, their backwards) and pays page faults on every fresh
// allocation. Here rows are processed in cache-sized chunks, logits are recomputed in the backward pass
// instead of stored, and chunks run in parallel with per-thread weight-gradient accumulators. Measured
// about 2x faster than the plain path for forward + backward on a Beauty-sized batch
// (bench/micro/loss_bench.cc; numbers in docs/experiments/2026-11-26-machine-notes.md).
#pragma once

#include <torch/torch.h>

namespace twistar {

/// mean_i CE(hidden_i · weightᵀ, targets_i). hidden [P, D], weight [V, D], targets [P] (0..V-1).
/// Differentiable in hidden and weight.
torch::Tensor full_softmax_cross_entropy(const torch::Tensor& hidden, const torch::Tensor& weight,
                                         const torch::Tensor& targets);

/// Rows per chunk (cache blocking); exposed for tests and benchmarks.
constexpr int64_t kCrossEntropyChunk = 64;

}  // namespace twistar
