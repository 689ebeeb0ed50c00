#include "data/recommender.h"

#include <algorithm>
#include <unordered_set>

namespace twistar {

void sort_best_first(Ranking& ranking, size_t k) {
  if (ranking.size() > k) {
    std::partial_sort(ranking.begin(), ranking.begin() + static_cast<std::ptrdiff_t>(k), ranking.end(), better_scored);
    ranking.resize(k);
  } else {
    std::sort(ranking.begin(), ranking.end(), better_scored);
  }
}

Ranking top_k_scores(const float* scores, int32_t num_items, const Sequence& history,
                     const RecommendOptions& options) {
  std::unordered_set<ItemIndex> seen;
  if (options.exclude_history) seen.insert(history.begin(), history.end());
  const auto better = better_scored;
  // A bounded heap keeps this O(n log k) without touching the score array twice.
  Ranking heap;
  heap.reserve(options.k + 1);
  for (int32_t i = 0; i < num_items; ++i) {
    if (!seen.empty() && seen.count(i)) continue;
    ScoredItem cand{i, scores[i]};
    if (static_cast<int>(heap.size()) < options.k) {
      heap.push_back(cand);
      std::push_heap(heap.begin(), heap.end(), better);
    } else if (options.k > 0 && better(cand, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), better);
      heap.back() = cand;
      std::push_heap(heap.begin(), heap.end(), better);
    }
  }
  std::sort(heap.begin(), heap.end(), better);
  return heap;
}

}  // namespace twistar
