#include "data/recommender.h"

#include <algorithm>
#include <unordered_set>

namespace twistar {

Ranking top_k_scores(const float* scores, int32_t num_items, const Sequence& history,
                     const RecommendOptions& options) {
  std::unordered_set<ItemIndex> seen;
  if (options.exclude_history) seen.insert(history.begin(), history.end());
  auto better = [](const ScoredItem& a, const ScoredItem& b) {
    return a.score > b.score || (a.score == b.score && a.item < b.item);
  };
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
