// The interface every model, baseline and (later) the agent implements, so one evaluation harness and
// one server can drive them all. It lives in `data` because it speaks only of sequences and items.
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"

namespace twistar {

struct ScoredItem {
  ItemIndex item = 0;
  float score = 0.0f;
};
using Ranking = std::vector<ScoredItem>;

struct RecommendOptions {
  /// Length of each returned list.
  int k = 10;
  /// Drop items already in the history from the candidates (the protocol's default).
  bool exclude_history = true;
};

class Recommender {
 public:
  virtual ~Recommender() = default;
  virtual std::string name() const = 0;
  /// The best `options.k` items for each history, best first. Must be safe to call concurrently.
  virtual std::vector<Ranking> recommend(const std::vector<Sequence>& histories,
                                         const RecommendOptions& options) const = 0;
  /// How many histories one call should carry during offline evaluation.
  virtual size_t preferred_batch_size() const { return 256; }
  /// True when an answer depends on the requests served before it (a planner holding a latency
  /// target). The evaluator then serves the split in a seeded random order, as live traffic arrives:
  /// the datasets' user order drifts (later users have shorter histories), and a system that adapts to
  /// its traffic would otherwise be timed in the state the last users left it in.
  virtual bool adapts_to_traffic() const { return false; }
};

/// Best first: the higher score, ties to the lower item index (so results are deterministic).
inline bool better_scored(const ScoredItem& a, const ScoredItem& b) {
  return a.score > b.score || (a.score == b.score && a.item < b.item);
}
/// Sorts best first (better_scored) and keeps the best k.
void sort_best_first(Ranking& ranking, size_t k = static_cast<size_t>(-1));

/// Top-k of a dense score vector over all items, skipping history items when asked. Ties go to the
/// lower item index so results are deterministic.
Ranking top_k_scores(const float* scores, int32_t num_items, const Sequence& history,
                     const RecommendOptions& options);

}  // namespace twistar
