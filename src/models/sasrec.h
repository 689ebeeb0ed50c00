// SASRec (Kang & McAuley, 2018): a causal transformer over the item history, trained with full-softmax
// cross-entropy over all items at every position (Klenitskiy & Vasilev, 2023), which is markedly
// stronger than the original sampled binary loss.
//
// Token convention: item index i is token i + 1; token 0 is padding. Sequences are right-padded and
// positions count from the first item, so a training prefix sees exactly the positions it would see at
// inference.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <memory>

#include "data/recommender.h"
#include "models/training_loop.h"
#include "nn/transformer.h"

namespace twistar {

struct SasrecOptions {
  /// Embedding and model width.
  int64_t dim = 64;
  /// Transformer blocks.
  int64_t layers = 2;
  /// Attention heads.
  int64_t heads = 1;
  /// Dropout on embeddings and residual branches.
  double dropout = 0.5;
  /// Dropout on attention weights.
  double attn_dropout = 0.2;
  /// History length the model reads (longer histories keep their last items).
  int64_t max_len = 50;
  /// Optimiser, batches and stopping rules.
  TrainOptions train;

  void validate() const;
  nlohmann::json to_json() const;
  static SasrecOptions from_json(const nlohmann::json& j);
};

class SasrecImpl : public torch::nn::Module {
 public:
  SasrecImpl(int64_t num_items, const SasrecOptions& options);
  /// tokens [B, L] (0 = pad, right-padded) -> hidden states [B, L, D].
  torch::Tensor encode(const torch::Tensor& tokens);
  /// Output item embeddings [num_items, D] (tied with the input table, padding row excluded).
  torch::Tensor item_weights();
  /// Hidden state at each history's last position: [B, D].
  torch::Tensor last_hidden(const torch::Tensor& tokens, const torch::Tensor& lengths);
  /// Scores of every item after each history's last position: [B, num_items].
  torch::Tensor score_last(const torch::Tensor& tokens, const torch::Tensor& lengths);
  /// Scores of given items only (items [B, M], item indices): [B, M], equal to score_last's
  /// columns without scoring the whole catalogue (rank_candidates' hot path).
  torch::Tensor score_items(const torch::Tensor& tokens, const torch::Tensor& lengths,
                            const torch::Tensor& items);
  int64_t num_items() const { return num_items_; }
  int64_t max_len() const { return max_len_; }

 private:
  int64_t num_items_, max_len_, dim_;
  torch::nn::Embedding item_emb_{nullptr}, pos_emb_{nullptr};
  torch::nn::Dropout emb_drop_{nullptr};
  TransformerStack encoder_{nullptr};
};
TORCH_MODULE(Sasrec);

/// Builds right-padded token and length tensors from histories (each truncated to its last max_len).
void pack_histories(const std::vector<Sequence>& histories, int64_t max_len, torch::Tensor& tokens,
                    torch::Tensor& lengths);

/// Serves a trained SASRec (inference mode, thread-safe).
class SasrecRecommender : public Recommender {
 public:
  explicit SasrecRecommender(Sasrec model);
  std::string name() const override { return "sasrec"; }
  std::vector<Ranking> recommend(const std::vector<Sequence>& histories,
                                 const RecommendOptions& options) const override;
  size_t preferred_batch_size() const override { return 512; }

 private:
  // Forward passes do not change the module; libtorch just has no const forward.
  mutable Sasrec model_;
};

}  // namespace twistar
