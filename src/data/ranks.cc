#include "data/ranks.h"

#include <cmath>

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

}  // namespace twistar
