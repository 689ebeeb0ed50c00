// One decision's inputs for a batch of episodes (replayed from the episode table or live) and the
// policy's log-probabilities over them, unaffordable calls masked: what replay, serving, warm-up and
// GRPO (agent/planner_grpo.h) share.
#pragma once

#include <torch/torch.h>

#include <array>
#include <vector>

#include "agent/agent_loop.h"
#include "agent/episodes.h"
#include "models/planner_policy.h"

namespace twistar {

struct DecisionBatch {
  std::vector<const Sequence*> histories;
  std::vector<std::vector<float>> features;
  /// 1 where the action is affordable under the budget.
  std::vector<std::array<float, kNumActions>> allowed;
};

/// Adds one decision: the history (kept by pointer), its request features and the episode so far.
void add_decision(DecisionBatch& b, const Sequence& history, const RequestFeatures& request, const EpisodeState& s,
                  double beta, double budget, const CostModel& costs);
/// The same for a user of the episode table.
inline void add_decision(DecisionBatch& b, const UserEpisode& u, const EpisodeState& s, double beta, double budget,
                         const CostModel& costs) {
  add_decision(b, u.history, u.request, s, beta, budget, costs);
}

/// Log-probabilities [B, A] over the affordable actions.
torch::Tensor masked_log_probs(PlannerPolicy& policy, const DecisionBatch& b);

/// One optimiser step on `loss`; returns its value.
double descend(torch::optim::Optimizer& optimizer, const torch::Tensor& loss);

}  // namespace twistar
