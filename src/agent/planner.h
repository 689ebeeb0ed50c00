// The planner: per request, how much thinking it deserves. A small policy (models/planner_policy.h)
// runs the agent loop (agent/agent_loop.h) over the three tools. It is trained on validation episodes,
// on which no tool was trained:
//
// 1. Episodes (agent/episodes.h): every validation user's recorded tool outcomes and a timed cost
//    model; replaying the table is the training environment.
// 2. Supervised warm-up. Each user is labelled with the cheapest canonical plan (fast_only,
//    fast_rank, slow) that reaches the best NDCG@10 of the three; a share `explore` of the users gets
//    a random plan instead, so the warm-up policy keeps some mass on every plan for RL to explore.
// 3. GRPO. For each user, G trajectories are sampled from the current policy under a β drawn from the
//    grid (and sometimes a latency budget); reward = NDCG@10 − β·latency(s) − penalty·invalid calls;
//    advantages are centred within the group (and scaled by the batch's spread; agent/planner_grpo.h);
//    clipped ratios; exact KL to the warm-up policy.
//    β and the budget are inputs of the policy, so one model covers the accuracy/latency curve.
// A held-out part of the validation users selects checkpoints (mean reward over the β grid) and the
// served β (the most accurate β whose mean cost stays within `latency_share` of think_and_rec's).
//
// The baselines it must beat (a confidence-threshold router tuned on validation, a random router at a
// given plan mix) are in agent/routers.h; AgentRecommender (agent/agent_loop.h) runs any of them, or
// the learned policy, as a Recommender.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <random>

#include "agent/agent_loop.h"
#include "agent/episodes.h"
#include "agent/routers.h"
#include "core/context.h"
#include "data/dataset.h"
#include "data/recommender.h"
#include "data/split.h"
#include "models/planner_policy.h"
#include "models/training_loop.h"
#include "sid/sid_map.h"

namespace twistar {

class ThinkMemo;

struct PlannerOptions {
  PlannerPolicyOptions policy;
  /// The β grid (NDCG per second of latency) GRPO samples from and the sweep reports.
  /// Small β price think_and_rec's ~25 ms (β = 0.05: 0.00125 NDCG), large ones fast_rec's few ms.
  std::vector<double> betas = {0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20};
  /// The served β: < 0 selects it on the holdout users (see latency_share).
  double beta = -1;
  /// β selection: the most accurate β whose holdout mean cost is within this share of think_and_rec's.
  double latency_share = 0.3;
  /// Share of validation users held out for selection.
  double holdout = 0.2;
  /// Validation users used (evenly spaced; 0 = all).
  int64_t users = 0;
  /// Requests timed one at a time for the cost model.
  size_t cost_requests = 300;
  /// fast_rec's candidates for the ranker.
  int wide = 50;
  int max_calls = 4;
  double invalid_penalty = 0.1;
  /// Warm-up: share of users relabelled with a random plan.
  double explore = 0.1;
  TrainOptions sft = default_sft();
  /// GRPO: users per update, trajectories per user, PPO epochs per batch, clip, KL weight.
  TrainOptions grpo = default_grpo();
  int group = 8;
  /// GRPO's group per user: "sample" draws `group` trajectories from the policy; "plans" takes every
  /// canonical plan, weighted by its probability under the policy (exact expected reward, from the
  /// episode table's recorded outcomes).
  std::string group_mode = "sample";
  int ppo_epochs = 2;
  /// GRPO: share of each sampled decision drawn uniformly from the affordable calls (exploration
  /// beside a confident warm-up policy; the ratio is taken against this behaviour policy).
  double sample_explore = 0.1;
  double clip = 0.2;
  double kl = 0.005;
  /// Share of GRPO episodes that draw a latency budget (from budgets_ms).
  double budget_share = 0.25;
  std::vector<double> budgets_ms = {3, 6, 12, 25};
  /// The reasoner the slow tool reads (run/<reasoner>).
  std::string reasoner = "reasoner";

  nlohmann::json to_json() const;
  void read(const nlohmann::json& j);
  void validate() const;

  static TrainOptions default_sft() {
    TrainOptions t;
    t.lr = 3e-3;
    t.batch_size = 256;
    t.epochs = 30;
    t.patience = 4;
    return t;
  }
  static TrainOptions default_grpo() {
    TrainOptions t;
    t.lr = 1e-3;
    t.batch_size = 512;
    t.epochs = 30;
    t.patience = 8;
    t.lr_patience = 100;
    return t;
  }
};

/// The learned policy's greedy episodes for `users` of the table at β (and a budget, 0 = none).
std::vector<EpisodeState> replay_policy(PlannerPolicy& policy, const EpisodeTable& table,
                                       const std::vector<size_t>& users, double beta, double budget_ms,
                                       const PlannerOptions& options);
/// Replays the learned policy greedily over `users` of the table at β (and a budget, 0 = none).
SimSummary simulate_policy(PlannerPolicy& policy, const EpisodeTable& table, const std::vector<size_t>& users,
                           double beta, double budget_ms, const PlannerOptions& options);

/// The learned planner as a policy (greedy over the affordable calls).
class LearnedPolicy : public Policy {
 public:
  LearnedPolicy(PlannerPolicy model, CostModel costs, std::string name);
  std::string name() const override { return name_; }
  std::vector<int> decide(const std::vector<const Sequence*>& histories, const std::vector<EpisodeState>& states,
                          double beta, double budget_ms) const override;

 private:
  mutable PlannerPolicy model_;
  CostModel costs_;
  std::string name_;
};

struct PlannerTrainResult {
  double sft_holdout_reward = 0, grpo_holdout_reward = 0;
  double beta = 0;
  ThresholdRule threshold;
  /// Holdout replay per β: {"sft": [...], "grpo": [...]} with ndcg10, cost_ms, slow_rate.
  nlohmann::json sweep;
  CostModel costs;
  double episode_seconds = 0, sft_seconds = 0, grpo_seconds = 0;
  bool finished = false;
};

/// Trains the planner into `dir` from the tools: episode table (cached in dir/episodes.json),
/// warm-up (dir/sft, then sft.pt), GRPO (dir/grpo, then model.pt), the β and threshold choices
/// (dir/planner.json). Both trainings resume. `tools_key` identifies the tools' weights (the episode
/// cache is rebuilt when it changes). dir's parent is the run directory (its sid/sid_map.json).
PlannerTrainResult train_planner(const Dataset& data, const Toolbox& tools, const PlannerOptions& options,
                                 const Context& ctx, const std::filesystem::path& dir, const std::string& tools_key,
                                 const TrainControl& control = {});

/// The training steps after the episode table (warm-up, GRPO, β and threshold choice) on a given table:
/// for tables built elsewhere or with a fixed cost model. `key` names the table in the checkpoints'
/// identity.
PlannerTrainResult train_planner_on_table(const EpisodeTable& table, const SidMap& sids,
                                          const std::vector<int64_t>& popularity, const PlannerOptions& options,
                                          const Context& ctx, const std::filesystem::path& dir, const std::string& key,
                                          const TrainControl& control = {});

/// What serving and evaluation need from run/planner.
struct PlannerAssets {
  Toolbox tools;
  CostModel costs;
  double beta = 0;
  ThresholdRule threshold;
  std::array<double, kNumPlans> holdout_shares{};
  std::shared_ptr<LearnedPolicy> sft, grpo;
};

/// Loads run/planner with the run's tools (run/sidgen, run/ranker, run/<reasoner>). Throws InputError
/// naming what to run when something is missing.
PlannerAssets load_planner(const std::filesystem::path& run_dir, const Context& ctx,
                           std::shared_ptr<ThinkMemo> memo = nullptr);

/// The three tools from a run directory; think_and_rec re-ranks with the toolbox's fast_rec and ranker
/// after rank_candidates (ThinkAndRec::set_reranker).
Toolbox load_toolbox(const std::filesystem::path& run_dir, const Context& ctx, const std::string& reasoner, int wide,
                     std::shared_ptr<ThinkMemo> memo = nullptr);

}  // namespace twistar
