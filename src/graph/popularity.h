// Item popularity counted over training parts only (see data/split.h).
#pragma once

#include <vector>

#include "data/dataset.h"

namespace twistar {

/// Interaction count of every item over the given sequences.
std::vector<float> item_popularity(const std::vector<Sequence>& sequences, int32_t num_items);

}  // namespace twistar
