// Ranking metrics with a single held-out target per request (IDCG = 1):
//   Recall@k = 1 if the target is in the top k;  NDCG@k = 1 / log2(rank + 1) for 1-based rank <= k.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "data/ranks.h"
#include "data/recommender.h"

namespace twistar {

/// The cut-offs every report carries (HR@1 is recall@1).
inline const std::vector<int> kMetricCutoffs = {1, 5, 10, 20};

class MetricAccumulator {
 public:
  void add_rank(int rank);
  void add(const Ranking& ranking, ItemIndex target) { add_rank(rank_of(ranking, target)); }
  size_t count() const { return ranks_.size(); }
  const std::vector<int>& ranks() const { return ranks_; }
  /// "recall@1", "recall@5", "recall@10", "recall@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr@20".
  std::map<std::string, double> summary() const;

 private:
  std::vector<int> ranks_;
};

}  // namespace twistar
