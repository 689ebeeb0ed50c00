// Non-neural baselines: MostPop and Swing item-to-item CF. Both are fitted on training parts only.
#pragma once

#include <vector>

#include "data/recommender.h"
#include "graph/swing.h"

namespace twistar {

/// Recommends the most popular items not in the history.
class MostPopRecommender : public Recommender {
 public:
  MostPopRecommender(std::vector<float> popularity);
  std::string name() const override { return "mostpop"; }
  std::vector<Ranking> recommend(const std::vector<Sequence>& histories,
                                 const RecommendOptions& options) const override;

 private:
  std::vector<float> popularity_;
  /// Items by decreasing popularity: a request only walks until it has k unseen items.
  std::vector<ItemIndex> order_;
};

struct SwingRecommenderOptions {
  /// History items considered, most recent first.
  int window = 20;
  /// Weight of the history item d steps from the end is decay^d.
  double decay = 0.8;
};

/// Scores candidates by recency-weighted Swing similarity to the history; items with no link rank by
/// popularity after every linked item.
class SwingRecommender : public Recommender {
 public:
  SwingRecommender(ItemGraph graph, std::vector<float> popularity,
                   SwingRecommenderOptions options = {});
  std::string name() const override { return "swing"; }
  std::vector<Ranking> recommend(const std::vector<Sequence>& histories,
                                 const RecommendOptions& options) const override;

 private:
  Ranking recommend_one(const Sequence& history, const RecommendOptions& options) const;

  ItemGraph graph_;
  MostPopRecommender fallback_;
  SwingRecommenderOptions options_;
};

}  // namespace twistar
