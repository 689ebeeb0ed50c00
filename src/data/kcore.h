// Interaction logs (CSV, RecBole, raw Amazon reviews) become datasets the same way: optional iterative
// k-core filtering, then per-user chronological sequences (ties keep file order).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/dataset.h"

namespace twistar {

struct Interaction {
  std::string user;
  std::string item;
  /// Any monotone time value (seconds, or the line number when the source has none).
  int64_t time = 0;
};

/// Repeatedly drops users and items with fewer than `k` interactions until none remain (k <= 1: no-op).
void kcore_filter(std::vector<Interaction>& interactions, int k);

/// Groups interactions per user, sorted by time with ties in input order. Users appear in order of
/// their first interaction in the input; items are numbered in order of first appearance.
Dataset dataset_from_interactions(std::string name, std::vector<Interaction> interactions, int kcore,
                                  const std::unordered_map<std::string, ItemMeta>& meta = {});

}  // namespace twistar
