// The side features rank_candidates reads for each (history, candidate) pair, and the item
// statistics they come from. Every statistic is built from training parts only; a ranker trained on
// training prefixes reads statistics built from the sequences *before* those prefixes' targets, so
// that its features look at training time as they will look at validation and test time (a Swing
// score that already counts the very transition being predicted would teach the ranker to trust
// Swing more than it deserves).
//
// Features per candidate (kRankFeatureNames lists them in order):
//   fast_rec: beam log-probability, its gap to the best candidate, log(1 + rank);
//   Swing similarity to the last `history_window` history items: sum, max, and to the last item;
//   log(1 + training popularity);
//   the share of recent history items with the candidate's brand, leaf category and top category;
//   SASRec (when the run has one): the candidate's logit, its gap to the best candidate's, and
//   log(1 + its rank among the candidates by that logit);
//   which retrievers put it in the pool: fast_rec, the backbone's top items, Swing's (0 or 1 each).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/recommender.h"
#include "graph/swing.h"

namespace twistar {

inline constexpr int kNumRankFeatures = 16;
extern const char* const kRankFeatureNames[kNumRankFeatures];
/// Index of the first SASRec feature (zero when the run has no SASRec).
inline constexpr int kFirstSasrecFeature = 10;

/// The retrievers behind a pool candidate, as bits.
enum PoolSource : uint8_t { kFromFastRec = 1, kFromBackbone = 2, kFromSwing = 4 };

/// The item statistics behind the features.
struct RankSources {
  ItemGraph swing;
  /// log(1 + interactions) per item.
  std::vector<float> log_popularity;
  /// Per item: dense ids of its brand, leaf category and top category; -1 when missing.
  std::vector<int32_t> brand, leaf_category, top_category;

  int32_t num_items() const { return static_cast<int32_t>(log_popularity.size()); }
  /// Binary file (atomic write); load throws InputError naming the file when it is not one.
  void save(const std::filesystem::path& path) const;
  static RankSources load(const std::filesystem::path& path);
};

/// Statistics over `sequences` (training parts, or shorter prefixes of them) with `data`'s metadata.
RankSources build_rank_sources(const Dataset& data, const std::vector<Sequence>& sequences,
                               const SwingOptions& swing);

/// Features of the first `m` candidates for one request into out[m * kNumRankFeatures] (row per
/// candidate). `sasrec_logits` holds one logit per candidate, or is null (features then zero);
/// `from` one PoolSource mask per candidate, or is null (all from fast_rec).
void rank_features(const RankSources& sources, const Sequence& history, int history_window,
                   const Ranking& candidates, size_t m, const float* sasrec_logits, float* out,
                   const uint8_t* from = nullptr);

}  // namespace twistar
