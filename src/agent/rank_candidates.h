// rank_candidates(m, n): the middle path. Re-scores a pool with the ranker (DIN or gradient-boosted
// trees, models/ranker.h) and returns the best n: the first m candidates of the request's prior
// fast_rec call, joined by the other cheap retrievers the run has (the backbone's top items, the
// items Swing links most to the recent history; RankerOptions::pool_*), each candidate carrying
// which retrievers proposed it. Without a prior fast_rec the call is invalid: the observation
// carries the error and the request is left as it was.
//
// Training (train_ranker): by default (lists = "heldout") the run's generators are trained again
// without each user's last training item (run/heldout, apps/pipeline.h) and their pools for that
// item are the training lists, so the ranker learns from candidates whose target the generators
// never saw, as at validation and test time; with lists = "prefixes" the run's own fast_rec(m) runs
// on each user's last `lists_per_user` training prefixes (targets it was trained on). The true next
// item is the positive and the other candidates are the negatives (lists whose pool missed the
// target are dropped unless add_missed_positive). Validation lists come from the run's own
// generators on the validation histories; their targets only score the early stopping.
//
// Run directory: run/ranker/{sources.pt, model.pt | gbdt.json, manifest.json} beside run/sid,
// run/sidgen, run/heldout and (when the ranker reads SASRec) run/sasrec.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>

#include "agent/fast_rec.h"
#include "agent/rank_features.h"
#include "agent/tool.h"
#include "models/gbdt_ranker.h"
#include "models/ranker.h"
#include "models/sasrec.h"

namespace twistar {

/// Everything a ranker reads besides its own weights.
struct RankInputs {
  std::shared_ptr<const RankSources> sources;
  /// Null when the ranker does not read SASRec (the run's backbone).
  Sasrec sasrec{nullptr};
  int64_t history = 20;
  /// The backbone's (when `sasrec` is set) and Swing's shares of the pool.
  int64_t pool_backbone = 0, pool_swing = 0;

  /// Slots of a list: m fast_rec candidates and the other retrievers' shares.
  int64_t pool_width(int64_t m) const { return m + (sasrec ? pool_backbone : 0) + pool_swing; }
};

/// Candidate lists for histories: the pool of the first m candidates and the other retrievers' items
/// (best first by fast_rec's score), their features and the slot of each target (targets may be
/// empty: labels are then -1).
RankLists make_rank_lists(const RankInputs& inputs, const std::vector<Sequence>& histories,
                          const std::vector<Ranking>& candidates, const std::vector<ItemIndex>& targets,
                          int64_t m);

class RankCandidates : public Tool {
 public:
  RankCandidates(RankInputs inputs, Ranker din, int64_t default_m);
  RankCandidates(RankInputs inputs, std::shared_ptr<const GbdtRanker> gbdt, int64_t default_m);
  std::string name() const override { return "rank_candidates"; }
  std::vector<Observation> run(std::vector<RequestState>& requests,
                               const ToolArgs& args) const override;
  size_t preferred_batch_size() const override { return 256; }
  /// m when a call does not give one (the list length the ranker was trained on).
  int64_t default_m() const { return default_m_; }
  /// Scores [N, M] of candidate lists.
  torch::Tensor score(const RankLists& lists) const;
  /// The best n of each history's pool (its first m candidates and the other retrievers' items) by
  /// the ranker's score (the call's core).
  std::vector<Ranking> rank(const std::vector<Sequence>& histories, const std::vector<Ranking>& candidates,
                            int64_t m, int64_t n) const;

 private:
  RankInputs inputs_;
  mutable Ranker din_{nullptr};
  std::shared_ptr<const GbdtRanker> gbdt_;
  int64_t default_m_;
};

/// The ranker over each request's fast_rec candidates (`retrieved`, with their SID log-probabilities)
/// joined by another tool's items (`extra`, e.g. think_and_rec's): items fast_rec did not return get
/// the SID log-probability its generator gives them (FastRec::log_probs), so every candidate carries
/// the features the ranker was trained on; the pool is ordered by that score, as fast_rec orders its
/// own, and the best k come back with the ranker's scores.
std::vector<Ranking> rank_union(const FastRec& fast, const RankCandidates& ranker,
                                const std::vector<Sequence>& histories, const std::vector<Ranking>& retrieved,
                                const std::vector<Ranking>& extra, int64_t k);

struct RankerTrainResult {
  double best_valid_ndcg10 = 0;
  /// fast_rec(m)'s validation NDCG@10 on the same lists (the order the ranker must beat).
  double fast_valid_ndcg10 = 0;
  int best_epoch = 0;
  std::vector<double> curve;
  int64_t train_lists = 0, valid_lists = 0;
  /// Share of training / validation lists whose target fast_rec(m) found.
  double train_hit_rate = 0, valid_hit_rate = 0;
  /// Building the candidate lists (when they were cached: the time it took to build them).
  double list_seconds = 0, train_seconds = 0;
  bool finished = false;
};

struct RankerFit {
  double best = 0;
  /// DIN: the best epoch; gbdt: the boosting rounds kept.
  int best_epoch = 0;
  std::vector<double> curve;
  double seconds = 0;
  bool finished = false;
};

/// Fits the ranker of `options.kind` on candidate lists, early-stopped on the validation lists'
/// NDCG@10, and writes it into `dir` (model.pt or gbdt.json, and a manifest with `config`). A DIN
/// training resumes from its checkpoint; `item_init` [num_items, dim] (may be undefined) seeds
/// the item embeddings.
RankerFit fit_ranker(const RankLists& train, const RankLists& valid, int64_t num_items,
                     const RankerOptions& options, const Context& ctx, const std::filesystem::path& dir,
                     const nlohmann::json& config, const torch::Tensor& item_init,
                     const TrainControl& control = {});

/// The generators retrained on without_last_items(data) (run/heldout): they propose the training
/// lists when options.training_lists is "heldout". `sasrec` is null when the run has no backbone.
struct HeldoutGenerators {
  std::shared_ptr<const FastRec> fast;
  Sasrec sasrec{nullptr};
};

/// Trains the ranker into `dir` (resuming a DIN training; the candidate lists are cached in `dir`).
/// `sasrec` is the run's SASRec or null; it is read only when options.use_sasrec. `heldout` is
/// required when options.training_lists is "heldout": the training lists are then its candidates for each
/// user's last training item (one list per user), the validation lists the run's own.
RankerTrainResult train_ranker(const Dataset& data, const FastRec& fast, Sasrec sasrec,
                               const RankerOptions& options, const Context& ctx,
                               const std::filesystem::path& dir, const TrainControl& control = {},
                               const HeldoutGenerators* heldout = nullptr);

/// rank_candidates from a run directory (run/ranker, and run/sasrec when the ranker reads it).
std::shared_ptr<RankCandidates> load_rank_candidates(const std::filesystem::path& run_dir,
                                                     const Context& ctx);

}  // namespace twistar
