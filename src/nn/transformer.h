// Pre-LayerNorm transformer blocks shared by every model (SASRec, the SID generator, the reasoning LM,
// the planner). Attention is written out (not torch::nn::MultiheadAttention) so that decoding can keep
// a KV cache and reorder it by a gather.
//
// Vocabulary: B batch, L query length, T key length (cached + new), D model width, H heads.
// Masks are boolean with true = "may not attend".
#pragma once

#include <torch/torch.h>

#include <vector>

namespace twistar {

struct TransformerOptions {
  /// Model width D.
  int64_t dim = 64;
  /// Attention heads (must divide dim).
  int64_t heads = 1;
  /// Blocks.
  int64_t layers = 2;
  /// Feed-forward width (0 = 4 * dim).
  int64_t ffn_dim = 0;
  /// Dropout on residual branches and embeddings.
  double dropout = 0.1;
  /// Dropout on attention weights.
  double attn_dropout = 0.1;

  void validate() const;
};

/// Keys and values of earlier positions, one entry per block, each [B, H, T, D/H].
struct KVCache {
  std::vector<torch::Tensor> keys, values;
  int64_t length() const { return keys.empty() || !keys[0].defined() ? 0 : keys[0].size(2); }
  /// Keeps rows `index` (a beam reorder or a batch shrink).
  void select(const torch::Tensor& index);
};

class MultiHeadAttentionImpl : public torch::nn::Module {
 public:
  explicit MultiHeadAttentionImpl(const TransformerOptions& options);
  /// x [B, L, D]; blocked [B or 1, 1 or H, L, T] (T includes cached positions). When `cache` and
  /// `layer` are given, this call's keys/values are appended to the cache.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& blocked, KVCache* cache = nullptr,
                        int layer = 0);

 private:
  int64_t heads_, head_dim_;
  torch::nn::Linear qkv_{nullptr}, out_{nullptr};
  torch::nn::Dropout attn_drop_{nullptr};
};
TORCH_MODULE(MultiHeadAttention);

class TransformerBlockImpl : public torch::nn::Module {
 public:
  explicit TransformerBlockImpl(const TransformerOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& blocked, KVCache* cache = nullptr,
                        int layer = 0);

 private:
  torch::nn::LayerNorm ln1_{nullptr}, ln2_{nullptr};
  MultiHeadAttention attn_{nullptr};
  torch::nn::Linear ff1_{nullptr}, ff2_{nullptr};
  torch::nn::Dropout drop_{nullptr};
};
TORCH_MODULE(TransformerBlock);

/// A stack of blocks with a final LayerNorm.
class TransformerStackImpl : public torch::nn::Module {
 public:
  explicit TransformerStackImpl(const TransformerOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& blocked, KVCache* cache = nullptr);
  size_t num_layers() const { return blocks_.size(); }

 private:
  std::vector<TransformerBlock> blocks_;
  torch::nn::LayerNorm final_ln_{nullptr};
};
TORCH_MODULE(TransformerStack);

/// Causal + key-padding mask: [B, 1, L, L], true where query i may not see key j (j > i or j is pad).
/// `valid` is [B, L] bool (true = real token).
torch::Tensor causal_padding_mask(const torch::Tensor& valid);

}  // namespace twistar
