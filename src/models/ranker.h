// The rank_candidates model: re-scores a short candidate list (fast_rec's top m) for one history.
//
// DIN-style (Zhou et al., 2018): each candidate attends over the last `history` items of the
// history (an MLP over [h, c, h*c, h-c] gives each history item a weight; the weighted sum is the
// candidate's view of the history; computed without materialising the concatenation), and an MLP reads [candidate, that view, their product, the side
// features] into one score. A linear term on the side features sits beside the MLP (wide & deep), so
// "keep fast_rec's order" is one weight away. Trained listwise: softmax cross-entropy of the target
// among its list.
//
// The gradient-boosted alternative (models/gbdt_ranker.h) reads the same side features.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <string>

#include "models/training_loop.h"

namespace twistar {

struct RankerOptions {
  /// "gbdt" (XGBoost LambdaMART on the side features) or "din" (this model). gbdt is the default:
  /// on Beauty both reach validation NDCG@10 0.0620, and gbdt trains in minutes (docs/experiments/2026-11-26-rank-candidates.md).
  std::string kind = "gbdt";
  /// Item embedding width (taken from SASRec's item table when the run has one of this width).
  int64_t dim = 64;
  /// History items each candidate attends over.
  int64_t history = 20;
  /// Width of the attention MLP and of the scoring MLP.
  int64_t attention_hidden = 32;
  int64_t hidden = 128;
  double dropout = 0.2;
  /// Candidates per list (fast_rec's k when building lists; rank_candidates' default m).
  int64_t candidates = 50;
  /// The pool the ranker orders: fast_rec's first m candidates joined by the backbone's top
  /// `pool_backbone` items (when the ranker reads it) and the `pool_swing` items Swing links most
  /// to the recent history (0 = leave that retriever out). So the ranker's recall is the union's,
  /// not fast_rec's alone. On amazon2018_scientific validation with held-out lists: NDCG@10 0.1053
  /// with 50 + 20 against 0.0995 with fast_rec's 50 alone and 0.1047 with 100 + 50 (BSARec alone
  /// 0.0958; docs/RESULTS.md).
  int64_t pool_backbone = 50;
  int64_t pool_swing = 20;
  /// Where the training lists come from. "heldout": generators trained again without each user's
  /// last training item (run/heldout) propose candidates for it, so the lists look like the ones
  /// served at validation and test time (the run's own generators saw every training target and
  /// find it ~83% of the time, against ~20-30% on unseen targets). "prefixes": the run's own
  /// generators on each user's last `lists_per_user` training prefixes (no extra training).
  std::string training_lists = "heldout";
  /// Training lists per user: fast_rec on the user's last this-many training prefixes ("prefixes").
  int lists_per_user = 3;
  /// Read SASRec's logits as features when the run has a SASRec stage.
  bool use_sasrec = true;
  /// When the beam missed a training target: add it to its list (true) or drop the list (false).
  bool add_missed_positive = false;
  /// gbdt: boosting rounds (at most), tree depth, learning rate; validated every 10 rounds. Shallow
  /// trees won on held-out lists (validation NDCG@10, depth/eta 6/0.05 -> 3/0.1: Scientific 0.1052 ->
  /// 0.1074, Beauty 0.0788 -> 0.0803; docs/experiments/2026-12-08-ranker-heldout-lists.md).
  int gbdt_rounds = 600;
  int gbdt_depth = 3;
  double gbdt_eta = 0.1;
  /// The DIN model's optimiser and stopping rules (gbdt uses patience only).
  TrainOptions train;

  RankerOptions();
  void validate() const;
  nlohmann::json to_json() const;
  static RankerOptions from_json(const nlohmann::json& j);
};

/// Candidate lists as tensors, one row per request.
struct RankLists {
  /// [N, H] the last H history items + 1, right-aligned, 0 = padding.
  torch::Tensor history;
  /// [N, M] candidate items, -1 = empty slot.
  torch::Tensor items;
  /// [N, M, F] side features (agent/rank_features.h).
  torch::Tensor features;
  /// [N] slot of the target in the list, -1 when it is not there.
  torch::Tensor label;

  int64_t size() const { return items.defined() ? items.size(0) : 0; }
  RankLists select(const torch::Tensor& rows) const;
  static RankLists cat(const std::vector<RankLists>& parts);
};

class RankerImpl : public torch::nn::Module {
 public:
  RankerImpl(int64_t num_items, int64_t num_features, const RankerOptions& options);
  /// Scores [N, M]; empty slots get -inf.
  torch::Tensor forward(const torch::Tensor& history, const torch::Tensor& items,
                        const torch::Tensor& features);
  /// Standardises the side features with these per-feature statistics (kept in the checkpoint).
  void set_feature_scaling(const torch::Tensor& mean, const torch::Tensor& std);
  /// Copies an item table [num_items, dim] into the item embeddings.
  void init_items(const torch::Tensor& table);
  int64_t history_len() const { return history_; }

 private:
  int64_t history_;
  torch::nn::Embedding item_emb_{nullptr};
  // The attention unit's first layer on [h, c, h*c, h-c], split by input so the [N, M, H, 4D]
  // concatenation is never built: W[h; c; h*c; h-c] = (W1+W4) h + (W2-W4) c + W3 (h*c).
  torch::nn::Linear attn_h_{nullptr}, attn_c_{nullptr}, attn_out_{nullptr};
  torch::Tensor attn_hc_;
  torch::nn::Sequential mlp_{nullptr};
  torch::nn::Linear wide_{nullptr};
  torch::Tensor feat_mean_, feat_std_;
};
TORCH_MODULE(Ranker);

/// NDCG@10 of the scores [N, M] against the lists' labels (a missing target counts 0).
double rank_lists_ndcg10(const torch::Tensor& scores, const torch::Tensor& label);

}  // namespace twistar
