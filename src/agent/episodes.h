// Validation episodes: the planner's training environment. Every validation user runs each tool
// outcome once (fast_rec(k), fast_rec(wide), rank_candidates after each, think_and_rec(k)); the table
// keeps each list's NDCG@10 and the observation statistics. Each call is also timed one request at a
// time on one thread, which gives the deterministic cost model training uses. Replaying the table is
// the training environment: the tools are deterministic, so a replayed episode is the live episode.
//
// Beside the table: the canonical plans (fast_only, fast_rank, slow) and the replay of one call.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "agent/agent_loop.h"
#include "data/split.h"

namespace twistar {

/// One validation user's recorded outcomes. The lists after ranking (kListThinkRank*) are
/// think_and_rec's own list combined with each ranked request by the tool's after_ranking, as the live
/// tool does.
struct UserEpisode {
  Sequence history;
  RequestFeatures request;
  /// NDCG@10 of the list from each source (ListSource order).
  std::array<float, kNumListSources> ndcg{};
  /// The observation statistics of the call that produced each list.
  std::array<ObservationStats, kNumListSources> stats{};
};

struct EpisodeTable {
  std::vector<UserEpisode> users;
  CostModel costs;
  nlohmann::json to_json() const;
  static EpisodeTable from_json(const nlohmann::json& j, const std::string& where);
};

/// Runs every tool outcome on the examples (batched, in chunks spread over `threads` request threads:
/// for_each_task) and times `cost_requests` of them one request at a time. `features` gives each
/// history's request features; it must be safe to call concurrently.
EpisodeTable build_episode_table(const Toolbox& tools, const std::vector<Example>& examples, int k,
                                 size_t cost_requests, const std::function<RequestFeatures(const Sequence&)>& features,
                                 bool progress, size_t threads = 1);

/// The canonical plans (enum Plan, agent/agent_loop.h).
const char* plan_name(int plan);
/// The plan's calls, finish included.
std::vector<int> plan_actions(int plan);
/// The list a plan ends with.
int plan_list(int plan);

/// The cheapest plan with the best NDCG@10 for one user.
int best_plan(const UserEpisode& user, const CostModel& costs);

/// Each plan's expected reward at β over `users`: mean NDCG@10 − β·cost (the prior a warm-up label
/// falls back on when the user's own outcomes do not decide).
std::array<double, kNumPlans> plan_prior(const EpisodeTable& table, const std::vector<size_t>& users, double beta);

/// The warm-up label of one user at β: a plan with the best NDCG@10 for this user; among those that
/// tie, the one with the best prior reward at β. At β = 0 a user every plan misses gets the plan most
/// accurate on average (the policy cannot tell such users apart before the calls); at large β it gets
/// the cheapest, as in best_plan.
int warmup_plan(const UserEpisode& user, const std::array<double, kNumPlans>& prior);

/// The cost of a plan's calls under the cost model (finish charges a decision).
double plan_cost(int plan, const CostModel& costs);
/// The canonical plan an episode's valid calls make, kNumPlans for any other.
int plan_of(const EpisodeState& s);
/// True when the episode called think_and_rec.
bool calls_think(const EpisodeState& s);

/// NDCG@10 and cost of a finished replayed episode; an episode with no list falls back to fast_rec(k).
std::pair<double, double> episode_outcome(const UserEpisode& u, const EpisodeState& s, const CostModel& costs);
/// NDCG@10 − β·latency(s) − invalid_penalty·(invalid calls + a fallback to fast_rec).
double episode_reward(const UserEpisode& u, const EpisodeState& s, double beta, double invalid_penalty,
                      const CostModel& costs);
/// Applies an action to a replayed episode: its recorded outcome and the cost model's cost.
void replay_step(const UserEpisode& u, EpisodeState& s, int action, const CostModel& costs, int max_calls);

/// Means over finished replayed episodes (a policy's or a router's) of users of the table.
struct SimSummary {
  double ndcg10 = 0, cost_ms = 0, reward = 0, invalid = 0;
  std::array<double, kNumPlans + 1> plan_shares{};  // fast_only, fast_rank, slow, fast_rank_slow, other
  /// Share of episodes that called think_and_rec.
  double slow_rate = 0;
  nlohmann::json to_json() const;
};

/// Summarises the finished episodes `states` of `users` (reward at β).
SimSummary summarise_episodes(const EpisodeTable& table, const std::vector<size_t>& users,
                              const std::vector<EpisodeState>& states, double beta, double invalid_penalty);

/// Whether routing can pay on this data: over `users`, the gain of thinking after ranking
/// (fast_rank_slow's NDCG@10 − fast_rank's), how many users it changes, and the Pearson correlation of
/// the gain with each observation a router has before that call (fast_rec(wide)'s and the ranker's
/// top score, margin and entropy; the request features). A router picks whom to think for by these;
/// with n users, |r| below 2/√n (`noise`) is noise, and where every observation is, routers tie.
struct ThinkSignal {
  size_t users = 0;
  double mean_gain = 0;
  /// Shares of users whose NDCG@10 thinking raises and lowers.
  double raised = 0, lowered = 0;
  std::vector<std::pair<std::string, double>> correlation;
  double noise = 0;
  /// The observation with the largest |r|.
  std::pair<std::string, double> strongest() const;
  nlohmann::json to_json() const;
};
ThinkSignal think_signal(const EpisodeTable& table, const std::vector<size_t>& users);

}  // namespace twistar
