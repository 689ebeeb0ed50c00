#include "eval/metrics.h"


#include <fmt/format.h>

namespace twistar {

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
