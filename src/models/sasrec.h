// SASRec (Kang & McAuley, 2018): a causal transformer over the item history, trained with full-softmax
// cross-entropy over all items at every position (Klenitskiy & Vasilev, 2023), which is markedly
// stronger than the original sampled binary loss.
//
// Two architectures share the class, its scoring interface and its serving:
//   sasrec  a causal pre-LN transformer, trained at every position of a training part at once.
//   bsarec  BSARec (nn/frequency_mix.h): attention beside a frequency branch, post-LN, over a
//           left-padded window of max_len positions (so a position counts back from the newest
//           item), trained on every prefix with the cross-entropy of its next item.
//
// Token convention: item index i is token i + 1; token 0 is padding. Callers pass right-padded
// tokens and lengths; for sasrec positions count from the first item, so a training prefix sees
// exactly the positions it would see at inference.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <memory>

#include "data/recommender.h"
#include "models/training_loop.h"
#include "nn/frequency_mix.h"
#include "nn/transformer.h"

namespace twistar {

struct SasrecOptions {
  /// "sasrec" or "bsarec" (see the file comment).
  std::string arch = "sasrec";
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
  /// bsarec: weight of the frequency branch against attention.
  double alpha = 0.7;
  /// bsarec: the low band keeps DFT bins [0, freq_cutoff / 2 + 1) of the window.
  int64_t freq_cutoff = 5;
  /// Optimiser, batches and stopping rules.
  TrainOptions train;

  /// BSARec's published configuration (its Beauty log): dropout 0.5 on both, AdamW at 5e-4 on
  /// batches of 256, patience 10, alpha 0.7, cutoff 5.
  static SasrecOptions bsarec();

  bool is_bsarec() const { return arch == "bsarec"; }
  void validate() const;
  nlohmann::json to_json() const;
  static SasrecOptions from_json(const nlohmann::json& j);
};

class SasrecImpl : public torch::nn::Module {
 public:
  SasrecImpl(int64_t num_items, const SasrecOptions& options);
  /// sasrec only: tokens [B, L] (0 = pad, right-padded) -> hidden states [B, L, D].
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
  bool is_bsarec() const { return !encoder_; }

 private:
  /// bsarec: right-padded tokens -> the last position's state through the left-padded window.
  torch::Tensor bsarec_last_hidden(const torch::Tensor& tokens, const torch::Tensor& lengths);

  int64_t num_items_, max_len_, dim_;
  torch::nn::Embedding item_emb_{nullptr}, pos_emb_{nullptr};
  torch::nn::Dropout emb_drop_{nullptr};
  TransformerStack encoder_{nullptr};
  torch::nn::LayerNorm emb_ln_{nullptr};
  FrequencyMixStack mix_{nullptr};
};
TORCH_MODULE(Sasrec);

/// Builds right-padded token and length tensors from histories (each truncated to its last max_len).
void pack_histories(const std::vector<Sequence>& histories, int64_t max_len, torch::Tensor& tokens,
                    torch::Tensor& lengths);

/// Serves a trained SASRec (inference mode, thread-safe).
class SasrecRecommender : public Recommender {
 public:
  explicit SasrecRecommender(Sasrec model, std::string name = "sasrec");
  std::string name() const override { return name_; }
  std::vector<Ranking> recommend(const std::vector<Sequence>& histories,
                                 const RecommendOptions& options) const override;
  size_t preferred_batch_size() const override { return 512; }

 private:
  // Forward passes do not change the module; libtorch just has no const forward.
  mutable Sasrec model_;
  std::string name_;
};

}  // namespace twistar
