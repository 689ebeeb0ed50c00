// Swing item-to-item similarity (Yang et al., "Large Scale Product Graph Construction for
// Recommendation in E-commerce"): two items are similar when pairs of users who both took them have
// little else in common. For users u, v who both interacted with i and j:
//   swing(i, j) += w_u * w_v / (alpha + |I_u ∩ I_v|),   w_u = (|I_u| + 5)^-user_weight_power.
// Built from training parts only.
#pragma once

#include <vector>

#include "data/dataset.h"

namespace twistar {

struct Neighbor {
  ItemIndex item = 0;
  float score = 0.0f;
};

struct SwingOptions {
  /// Smoothing in the pair weight 1 / (alpha + overlap).
  double alpha = 1.0;
  /// Exponent of the user activity down-weighting (0 disables it).
  double user_weight_power = 0.35;
  /// Neighbours kept per item.
  int top_k = 200;
  /// Users per item considered (the most recent ones); bounds the quadratic pair loop.
  int max_users_per_item = 1000;
  /// Threads for the per-item loop (0 = all cores).
  int threads = 0;

  void validate() const;
};

/// Sparse top-k neighbour lists, one per item, best first.
class ItemGraph {
 public:
  ItemGraph() = default;
  explicit ItemGraph(std::vector<std::vector<Neighbor>> rows) : rows_(std::move(rows)) {}
  const std::vector<Neighbor>& neighbors(ItemIndex item) const { return rows_[item]; }
  int32_t num_items() const { return static_cast<int32_t>(rows_.size()); }
  /// Similarity of a pair, 0 when j is not among i's kept neighbours.
  float similarity(ItemIndex i, ItemIndex j) const;

 private:
  std::vector<std::vector<Neighbor>> rows_;
};

ItemGraph build_swing(const std::vector<Sequence>& sequences, int32_t num_items,
                      const SwingOptions& options = {});

}  // namespace twistar
