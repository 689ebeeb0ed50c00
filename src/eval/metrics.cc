#include "eval/metrics.h"

#include <cmath>

#include <fmt/format.h>

namespace twistar {

int rank_of(const Ranking& ranking, ItemIndex target) {
  for (size_t r = 0; r < ranking.size(); ++r)
    if (ranking[r].item == target) return static_cast<int>(r) + 1;
  return 0;
}

double ndcg_at(int rank, int k) {
  if (rank <= 0 || rank > k) return 0.0;
  return 1.0 / std::log2(rank + 1.0);
}

void MetricAccumulator::add_rank(int rank) { ranks_.push_back(rank); }

std::map<std::string, double> MetricAccumulator::summary() const {
  std::map<std::string, double> out;
  double n = ranks_.empty() ? 1.0 : static_cast<double>(ranks_.size());
  for (int k : kMetricCutoffs) {
    double hits = 0, ndcg = 0;
    for (int r : ranks_) {
      if (r > 0 && r <= k) hits += 1;
      ndcg += ndcg_at(r, k);
    }
    out[fmt::format("recall@{}", k)] = hits / n;
    if (k > 1) out[fmt::format("ndcg@{}", k)] = ndcg / n;
  }
  double mrr = 0;
  for (int r : ranks_)
    if (r > 0 && r <= 20) mrr += 1.0 / r;
  out["mrr@20"] = mrr / n;
  return out;
}

}  // namespace twistar
