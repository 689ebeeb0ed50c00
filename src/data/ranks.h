// Where a single held-out target lands in a ranking, and its NDCG (one relevant item, IDCG = 1).
// Every layer that scores lists against targets (training validation, the planner's episodes, the
// evaluation harness) uses these, so the metric has one definition.
#pragma once

#include "data/recommender.h"

namespace twistar {

/// 1-based rank of `target` in `ranking`, 0 when absent.
int rank_of(const Ranking& ranking, ItemIndex target);

/// NDCG@k of a single 1-based rank (0 = missed): 1 / log2(rank + 1) for rank <= k.
double ndcg_at(int rank, int k);

}  // namespace twistar
