#include "graph/popularity.h"

namespace twistar {

std::vector<float> item_popularity(const std::vector<Sequence>& sequences, int32_t num_items) {
  std::vector<float> counts(num_items, 0.0f);
  for (const auto& s : sequences)
    for (ItemIndex i : s) counts[i] += 1.0f;
  return counts;
}

}  // namespace twistar
