// BSARec's blocks (Shin et al., AAAI 2024, "An Attentive Inductive Bias for Sequential
// Recommendation beyond the Self-Attention"): each block mixes a frequency branch with causal
// self-attention, alpha * freq + (1 - alpha) * attn, then a feed-forward layer, all post-LayerNorm
// (BERT style, the layout the published numbers were reached with).
//
// The frequency branch splits the sequence into its lowest `cutoff / 2 + 1` DFT bins (the slow
// trend of a history) and the rest, and rescales the rest by a learned per-dimension beta^2. The
// DFT runs over the whole window, so the branch is not causal: sequences are left-padded to a fixed
// window W and only the last position's output is read (training is one target per prefix).
//
// One departure from the reference code: padding positions are zero in every layer (there they
// carry position embeddings and, through the DFT, the history's own items). A history's output
// then depends on its items alone, and a batch needs only its last T <= W positions, the longest
// history's: the DFT over W positions of zero-padded input is the [T, T] corner of its matrix.
// On Amazon histories (~9 items) that makes training about ten times cheaper than padding to 50.
//
// Vocabulary: B batch, W window (positions; the last one is the newest item), T positions present
// (the last T of the window), D model width.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace twistar {

struct FrequencyMixOptions {
  int64_t dim = 64;
  int64_t heads = 1;
  int64_t layers = 2;
  /// Positions of the (left-padded) window.
  int64_t window = 50;
  /// Dropout on embeddings, branch outputs and the feed-forward output.
  double dropout = 0.5;
  /// Dropout on attention weights.
  double attn_dropout = 0.5;
  /// Weight of the frequency branch against attention.
  double alpha = 0.7;
  /// BSARec's c: the low band keeps DFT bins [0, cutoff / 2 + 1).
  int64_t cutoff = 5;

  void validate() const;
};

/// The real [W, W] matrix L with L x = irfft(low-band(rfft(x))) along positions (orthonormal DFT).
torch::Tensor low_pass_matrix(int64_t window, int64_t cutoff);

class FrequencyMixBlockImpl : public torch::nn::Module {
 public:
  explicit FrequencyMixBlockImpl(const FrequencyMixOptions& options);
  /// x [B, T, D], the window's last T positions, zero at padding; mask [B, 1, T, T] additive (0 =
  /// may attend); valid [B, T, 1] float (1 = item, 0 = padding). With `last_only` returns [B, 1, D]:
  /// the last position's output alone, equal to the last row of the full output.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask, const torch::Tensor& valid,
                        bool last_only);

 private:
  int64_t heads_, head_dim_;
  double alpha_;
  torch::Tensor low_pass_, sqrt_beta_;
  torch::nn::LayerNorm freq_ln_{nullptr}, attn_ln_{nullptr}, ff_ln_{nullptr};
  torch::nn::Linear query_{nullptr}, key_value_{nullptr}, attn_out_{nullptr}, ff1_{nullptr}, ff2_{nullptr};
  torch::nn::Dropout drop_{nullptr}, attn_drop_{nullptr};
};
TORCH_MODULE(FrequencyMixBlock);

class FrequencyMixStackImpl : public torch::nn::Module {
 public:
  explicit FrequencyMixStackImpl(const FrequencyMixOptions& options);
  /// x [B, T, D] (embedded, left-padded: the window's last T <= W positions), valid [B, T] bool ->
  /// the last position's state [B, D]. Padding inputs are ignored.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& valid);

 private:
  std::vector<FrequencyMixBlock> blocks_;
};
TORCH_MODULE(FrequencyMixStack);

/// BSARec's attention mask: causal and key-padding, as an additive [B, 1, T, T] of 0 and -10000
/// (finite, so a padding query that may see nothing stays finite; its output is zeroed).
torch::Tensor additive_causal_mask(const torch::Tensor& valid);

}  // namespace twistar
