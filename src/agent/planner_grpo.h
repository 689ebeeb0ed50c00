// GRPO for the planner (agent/planner.h, step 3). Per batch of training users, a group per user: G
// trajectories sampled under one β (and sometimes a latency budget) drawn for that user, or with
// group_mode "plans" every canonical plan weighted by its probability (the exact expected reward from
// the episode table). Rewards NDCG@10 − β·latency − penalty·invalid calls; advantages centred within
// the group and scaled by the batch's spread; clipped ratios against the behaviour policy; exact KL to
// the warm-up policy. The loop checkpoints and resumes (models/training_loop.h).
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <vector>

#include "agent/episodes.h"
#include "agent/planner.h"
#include "core/context.h"
#include "models/planner_policy.h"
#include "models/training_loop.h"

namespace twistar {

/// Trains `policy` from the warm-up policy `reference` (frozen here) on `train` users of the table;
/// `validate` scores a checkpoint (higher is better).
LoopResult train_grpo(PlannerPolicy& policy, PlannerPolicy& reference, const EpisodeTable& table,
                      const std::vector<size_t>& train, const PlannerOptions& o, const Context& ctx,
                      const std::filesystem::path& dir, const nlohmann::json& identity, const TrainControl& control,
                      const std::function<double()>& validate);

}  // namespace twistar
