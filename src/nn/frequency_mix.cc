#include "nn/frequency_mix.h"

#include <cmath>

#include "core/error.h"

namespace twistar {

void FrequencyMixOptions::validate() const {
  if (dim < 1) throw_input_error("dim: must be >= 1, got {}", dim);
  if (heads < 1 || dim % heads != 0) throw_input_error("heads: must divide dim ({}), got {}", dim, heads);
  if (layers < 1) throw_input_error("layers: must be >= 1, got {}", layers);
  if (window < 1) throw_input_error("max_len: must be >= 1, got {}", window);
  if (dropout < 0 || dropout >= 1) throw_input_error("dropout: must be in [0, 1), got {}", dropout);
  if (attn_dropout < 0 || attn_dropout >= 1)
    throw_input_error("attn_dropout: must be in [0, 1), got {}", attn_dropout);
  if (alpha < 0 || alpha > 1) throw_input_error("alpha: must be in [0, 1], got {}", alpha);
  if (cutoff < 0) throw_input_error("freq_cutoff: must be >= 0, got {}", cutoff);
}

torch::Tensor low_pass_matrix(int64_t n, int64_t cutoff) {
  // Orthonormal rfft then irfft of the kept bins k: L[t][s] = (1/n) sum_k w_k cos(2 pi k (t - s) / n),
  // with w_k = 2 for the bins that stand for a conjugate pair and 1 for bin 0 and the Nyquist bin.
  const int64_t bins = std::min(cutoff / 2 + 1, n / 2 + 1);
  auto L = torch::zeros({n, n}, torch::kFloat64);
  auto a = L.accessor<double, 2>();
  const double pi = std::acos(-1.0);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t s = 0; s < n; ++s) {
      double v = 0;
      for (int64_t k = 0; k < bins; ++k) {
        double w = (k == 0 || 2 * k == n) ? 1.0 : 2.0;
        v += w * std::cos(2 * pi * static_cast<double>(k * (t - s)) / static_cast<double>(n));
      }
      a[t][s] = v / static_cast<double>(n);
    }
  return L.to(torch::kFloat32);
}

torch::Tensor additive_causal_mask(const torch::Tensor& valid) {
  const int64_t W = valid.size(1);
  auto allowed_past = torch::tril(torch::ones({W, W}, valid.options().dtype(torch::kFloat32)));
  auto allowed = valid.to(torch::kFloat32).unsqueeze(1).unsqueeze(2) * allowed_past.unsqueeze(0).unsqueeze(0);
  return (1.0 - allowed) * -10000.0;
}

namespace {
torch::nn::LayerNorm post_norm(int64_t dim) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-12));
}
}  // namespace

FrequencyMixBlockImpl::FrequencyMixBlockImpl(const FrequencyMixOptions& o)
    : heads_(o.heads), head_dim_(o.dim / o.heads), alpha_(o.alpha) {
  low_pass_ = register_buffer("low_pass", low_pass_matrix(o.window, o.cutoff));
  sqrt_beta_ = register_parameter("sqrt_beta", torch::randn({o.dim}));
  freq_ln_ = register_module("freq_ln", post_norm(o.dim));
  attn_ln_ = register_module("attn_ln", post_norm(o.dim));
  ff_ln_ = register_module("ff_ln", post_norm(o.dim));
  query_ = register_module("query", torch::nn::Linear(o.dim, o.dim));
  key_value_ = register_module("key_value", torch::nn::Linear(o.dim, 2 * o.dim));
  attn_out_ = register_module("attn_out", torch::nn::Linear(o.dim, o.dim));
  ff1_ = register_module("ff1", torch::nn::Linear(o.dim, 4 * o.dim));
  ff2_ = register_module("ff2", torch::nn::Linear(4 * o.dim, o.dim));
  drop_ = register_module("drop", torch::nn::Dropout(o.dropout));
  attn_drop_ = register_module("attn_drop", torch::nn::Dropout(o.attn_dropout));
}

torch::Tensor FrequencyMixBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& mask,
                                             const torch::Tensor& valid, bool last_only) {
  using torch::indexing::Slice;
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2), W = low_pass_.size(0);
  if (T > W) throw_error("frequency mix: {} positions exceed the window of {}", T, W);
  const int64_t Q = last_only ? 1 : T;
  auto rows = last_only ? Slice(T - 1, T) : Slice();
  auto xq = x.index({Slice(), rows});  // [B, Q, D]

  // Frequency branch: low band + beta^2 * the rest. The window's padding is zero, so its DFT is the
  // matrix's corner over the positions present.
  auto corner = low_pass_.index({Slice(W - T, W), Slice(W - T, W)});
  auto low = torch::matmul(corner.index({rows}), x);  // [Q, T] x [B, T, D] -> [B, Q, D]
  auto freq = freq_ln_(drop_(low + sqrt_beta_.square() * (xq - low)) + xq);

  // Attention branch.
  auto q = query_(xq).view({B, Q, heads_, head_dim_}).transpose(1, 2);                   // [B, H, Q, Dh]
  auto kv = key_value_(x).view({B, T, 2, heads_, head_dim_}).permute({2, 0, 3, 1, 4});  // [2, B, H, T, Dh]
  auto scores = torch::matmul(q, kv[0].transpose(-2, -1)) / std::sqrt(static_cast<double>(head_dim_));
  scores = scores + mask.index({torch::indexing::Slice(), torch::indexing::Slice(), rows});
  auto ctx = torch::matmul(attn_drop_(torch::softmax(scores, -1)), kv[1]).transpose(1, 2).reshape({B, Q, D});
  auto attn = attn_ln_(drop_(attn_out_(ctx)) + xq);

  auto h = alpha_ * freq + (1 - alpha_) * attn;
  return ff_ln_(drop_(ff2_(torch::gelu(ff1_(h)))) + h) * valid.index({Slice(), rows});
}

FrequencyMixStackImpl::FrequencyMixStackImpl(const FrequencyMixOptions& o) {
  o.validate();
  for (int64_t i = 0; i < o.layers; ++i)
    blocks_.push_back(register_module("block" + std::to_string(i), FrequencyMixBlock(o)));
}

torch::Tensor FrequencyMixStackImpl::forward(const torch::Tensor& x, const torch::Tensor& valid) {
  auto mask = additive_causal_mask(valid);
  auto valid_f = valid.to(x.dtype()).unsqueeze(-1);
  torch::Tensor h = x * valid_f;
  // Only the last position is read, so the last block computes it alone.
  for (size_t i = 0; i < blocks_.size(); ++i) h = blocks_[i](h, mask, valid_f, i + 1 == blocks_.size());
  return h.squeeze(1);
}

}  // namespace twistar
