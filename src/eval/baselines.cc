#include "eval/baselines.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

namespace twistar {

MostPopRecommender::MostPopRecommender(std::vector<float> popularity)
    : popularity_(std::move(popularity)), order_(popularity_.size()) {
  std::iota(order_.begin(), order_.end(), 0);
  std::stable_sort(order_.begin(), order_.end(),
                   [&](ItemIndex a, ItemIndex b) { return popularity_[a] > popularity_[b]; });
}

std::vector<Ranking> MostPopRecommender::recommend(const std::vector<Sequence>& histories,
                                                   const RecommendOptions& options) const {
  std::vector<Ranking> out;
  out.reserve(histories.size());
  for (const auto& h : histories) {
    std::unordered_set<ItemIndex> seen;
    if (options.exclude_history) seen.insert(h.begin(), h.end());
    Ranking r;
    for (ItemIndex i : order_) {
      if (static_cast<int>(r.size()) >= options.k) break;
      if (!seen.count(i)) r.push_back({i, popularity_[i]});
    }
    out.push_back(std::move(r));
  }
  return out;
}

SwingRecommender::SwingRecommender(ItemGraph graph, std::vector<float> popularity,
                                   SwingRecommenderOptions options)
    : graph_(std::move(graph)), fallback_(std::move(popularity)), options_(options) {}

Ranking SwingRecommender::recommend_one(const Sequence& history,
                                        const RecommendOptions& options) const {
  std::unordered_map<ItemIndex, float> scores;
  std::unordered_set<ItemIndex> seen;
  if (options.exclude_history) seen.insert(history.begin(), history.end());
  int steps = std::min<int>(options_.window, static_cast<int>(history.size()));
  for (int d = 0; d < steps; ++d) {
    ItemIndex h = history[history.size() - 1 - d];
    float w = static_cast<float>(std::pow(options_.decay, d));
    for (const auto& n : graph_.neighbors(h))
      if (!seen.count(n.item)) scores[n.item] += w * n.score;
  }
  Ranking r;
  r.reserve(scores.size());
  for (const auto& [item, s] : scores) r.push_back({item, s});
  sort_best_first(r, static_cast<size_t>(std::max(options.k, 0)));
  if (static_cast<int>(r.size()) < options.k) {
    // Fill with popular items; their scores sit below every linked item.
    RecommendOptions more = options;
    more.k = options.k + static_cast<int>(r.size());
    std::unordered_set<ItemIndex> have;
    for (const auto& s : r) have.insert(s.item);
    auto popular = fallback_.recommend({history}, more);
    for (const auto& p : popular[0]) {
      if (static_cast<int>(r.size()) >= options.k) break;
      if (!have.count(p.item)) r.push_back({p.item, -1.0f / (1.0f + p.score)});
    }
  }
  return r;
}

std::vector<Ranking> SwingRecommender::recommend(const std::vector<Sequence>& histories,
                                                 const RecommendOptions& options) const {
  std::vector<Ranking> out;
  out.reserve(histories.size());
  for (const auto& h : histories) out.push_back(recommend_one(h, options));
  return out;
}

}  // namespace twistar
