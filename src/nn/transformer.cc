#include "nn/transformer.h"

#include <cmath>

#include "core/error.h"

namespace twistar {

void TransformerOptions::validate() const {
  if (dim < 1) throw_input_error("dim: must be >= 1, got {}", dim);
  if (heads < 1 || dim % heads != 0)
    throw_input_error("heads: must divide dim ({}), got {}", dim, heads);
  if (layers < 1) throw_input_error("layers: must be >= 1, got {}", layers);
  if (ffn_dim < 0) throw_input_error("ffn_dim: must be >= 0, got {}", ffn_dim);
  if (dropout < 0 || dropout >= 1) throw_input_error("dropout: must be in [0, 1), got {}", dropout);
  if (attn_dropout < 0 || attn_dropout >= 1)
    throw_input_error("attn_dropout: must be in [0, 1), got {}", attn_dropout);
}

void KVCache::select(const torch::Tensor& index) {
  for (auto& k : keys)
    if (k.defined()) k = k.index_select(0, index);
  for (auto& v : values)
    if (v.defined()) v = v.index_select(0, index);
}

MultiHeadAttentionImpl::MultiHeadAttentionImpl(const TransformerOptions& o)
    : heads_(o.heads), head_dim_(o.dim / o.heads) {
  qkv_ = register_module("qkv", torch::nn::Linear(o.dim, 3 * o.dim));
  out_ = register_module("out", torch::nn::Linear(o.dim, o.dim));
  attn_drop_ = register_module("attn_drop", torch::nn::Dropout(o.attn_dropout));
}

torch::Tensor MultiHeadAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& blocked,
                                              KVCache* cache, int layer) {
  const int64_t B = x.size(0), L = x.size(1);
  auto qkv = qkv_(x).view({B, L, 3, heads_, head_dim_}).permute({2, 0, 3, 1, 4});
  torch::Tensor q = qkv[0], k = qkv[1], v = qkv[2];  // [B, H, L, Dh]
  if (cache) {
    if (static_cast<int>(cache->keys.size()) <= layer) {
      cache->keys.resize(layer + 1);
      cache->values.resize(layer + 1);
    }
    auto& ck = cache->keys[layer];
    auto& cv = cache->values[layer];
    ck = ck.defined() ? torch::cat({ck, k}, 2) : k;
    cv = cv.defined() ? torch::cat({cv, v}, 2) : v;
    k = ck;
    v = cv;
  }
  auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(head_dim_));
  if (blocked.defined()) scores = scores.masked_fill(blocked, -1e9);
  auto attn = attn_drop_(torch::softmax(scores, -1));
  auto y = torch::matmul(attn, v).transpose(1, 2).reshape({B, L, heads_ * head_dim_});
  return out_(y);
}

TransformerBlockImpl::TransformerBlockImpl(const TransformerOptions& o) {
  int64_t ffn = o.ffn_dim > 0 ? o.ffn_dim : 4 * o.dim;
  ln1_ = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim})));
  attn_ = register_module("attn", MultiHeadAttention(o));
  ln2_ = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim})));
  ff1_ = register_module("ff1", torch::nn::Linear(o.dim, ffn));
  ff2_ = register_module("ff2", torch::nn::Linear(ffn, o.dim));
  drop_ = register_module("drop", torch::nn::Dropout(o.dropout));
}

torch::Tensor TransformerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& blocked,
                                            KVCache* cache, int layer) {
  auto h = x + drop_(attn_(ln1_(x), blocked, cache, layer));
  return h + drop_(ff2_(drop_(torch::gelu(ff1_(ln2_(h))))));
}

TransformerStackImpl::TransformerStackImpl(const TransformerOptions& o) {
  o.validate();
  for (int64_t i = 0; i < o.layers; ++i)
    blocks_.push_back(register_module("block" + std::to_string(i), TransformerBlock(o)));
  final_ln_ = register_module("final_ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim})));
}

torch::Tensor TransformerStackImpl::forward(const torch::Tensor& x, const torch::Tensor& blocked,
                                            KVCache* cache) {
  torch::Tensor h = x;
  for (size_t i = 0; i < blocks_.size(); ++i) h = blocks_[i](h, blocked, cache, static_cast<int>(i));
  return final_ln_(h);
}

torch::Tensor causal_padding_mask(const torch::Tensor& valid) {
  const int64_t L = valid.size(1);
  auto future = torch::triu(torch::ones({L, L}, torch::TensorOptions().dtype(torch::kBool).device(valid.device())), 1);
  auto pad_key = valid.logical_not().unsqueeze(1).unsqueeze(2);  // [B, 1, 1, L]
  return future.unsqueeze(0).unsqueeze(0) | pad_key;
}

}  // namespace twistar
