// The agent loop: an episode of at most `max_calls` tool calls written in a JSON grammar
//   {"tool":"fast_rec","arguments":{"k":50}}      {"tool":"rank_candidates","arguments":{"m":50,"n":10}}
//   {"tool":"think_and_rec","arguments":{"j":10}}  {"tool":"finish","arguments":{}}
// A policy picks each call from what it has observed so far. Invalid calls (rank before any fast_rec,
// an unknown tool, bad arguments, finish with nothing to return) are recorded and penalised, never
// fatal; think_and_rec ends the episode; an episode that ends with no list falls back to fast_rec.
//
// The same state machine (EpisodeState, step_episode) drives both the live loop, which runs the real
// tools, and the planner's training simulator, which replays each user's recorded tool outcomes: what
// a policy sees during training is exactly what it sees when serving.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/beta_controller.h"
#include "agent/tool.h"
#include "data/recommender.h"

namespace twistar {

/// A parsed tool call.
struct ToolCall {
  /// fast_rec, rank_candidates, think_and_rec or finish.
  std::string tool;
  ToolArgs args;
};

/// Parses one call of the grammar. Returns nullopt and sets `error` (which names the field) on an
/// unknown tool, malformed JSON, a missing or non-integer argument, or one out of [1, 1000].
std::optional<ToolCall> parse_tool_call(const std::string& text, std::string* error);
std::string format_tool_call(const ToolCall& call);

/// The policy's menu: the calls a learned planner chooses between. k is the request's list length.
enum Action : int { kFastK = 0, kFastWide, kRank, kThink, kFinish, kNumActions };
/// The call of a menu entry as JSON text (`wide` is fast_rec's and rank_candidates' candidate count).
std::string action_call(int action, int k, int wide);
const char* action_name(int action);

/// The canonical plans: fast_only = fast_rec(k); fast_rank = fast_rec(wide) + rank_candidates(wide, k);
/// slow = think_and_rec(k); fast_rank_slow = fast_rank, then think_and_rec(k) over the ranked list
/// (its thought combined with the ranking by Tool::after_ranking, kListThinkRankWide).
enum Plan : int { kPlanFastOnly = 0, kPlanFastRank, kPlanSlow, kPlanRankSlow, kNumPlans };
/// The canonical plan whose cost a sequence of valid calls (Action values, finish left out) resembles,
/// for a random router's mix: fast_rank_slow when think_and_rec came right after rank_candidates, slow
/// when it came otherwise, fast_rank when the calls ranked without thinking, fast_only for the rest.
int plan_mix(const std::vector<int>& valid_calls);

/// A deterministic per-call cost (ms): the planner trains against it so that training reproduces,
/// while evaluation measures real wall time. Built by timing each call on real requests.
struct CostModel {
  std::array<double, kNumActions> ms{1.0, 2.0, 1.0, 15.0, 0.0};
  /// The policy's own decision, charged once per call.
  double decision_ms = 0.05;
  double of(int action) const { return ms.at(action) + decision_ms; }
  /// `share` of think_and_rec's cost: the planner's latency cap and the served latency target.
  double think_share(double share) const { return share * of(kThink); }
  nlohmann::json to_json() const;
  static CostModel from_json(const nlohmann::json& j, const std::string& where);
};

/// Summary statistics of one tool observation, the signal the policy reads: the top score, the gap
/// to the second and the normalised entropy of the softmax over the returned scores.
struct ObservationStats {
  float top = 0, margin = 0, entropy = 0;
};
ObservationStats observation_stats(const Ranking& items);

/// What the source of the episode's current list is. think_and_rec called right after rank_candidates
/// returns its list combined with the ranked candidates (Tool::after_ranking): kListThinkRankFast and
/// kListThinkRankWide, after ranking fast_rec(k)'s or fast_rec(wide)'s candidates.
enum ListSource : int {
  kNoList = -1,
  kListFast = 0,
  kListWide,
  kListRankFast,
  kListRankWide,
  kListThink,
  kListThinkRankFast,
  kListThinkRankWide
};
constexpr int kNumListSources = 7;

struct EpisodeState {
  int calls = 0;
  int invalid = 0;
  bool done = false;
  int list = kNoList;
  /// Candidates came from fast_rec(k) (kListFast) or fast_rec(wide) (kListWide); -1 before any.
  int candidates = kNoList;
  bool ranked = false;
  ObservationStats fast, rank;
  /// Cost so far under the cost model (call_cost).
  double cost_ms = 0;
  /// Actions taken, in order (invalid ones included).
  std::vector<int> actions;
};

/// The list think_and_rec produces in `state`: its own (kListThink), or combined with the ranked
/// candidates when the state's candidates are ranked.
int think_list(const EpisodeState& state);

/// Why `action` is invalid in `state` (empty when valid).
std::string invalid_reason(const EpisodeState& state, int action);

/// Applies a valid action's outcome to the state: the list it produced (for tools) and its stats.
/// An invalid action only counts the call. Ends the episode on think_and_rec, finish, or
/// `max_calls` calls.
void step_episode(EpisodeState& state, int action, const ObservationStats& stats, double cost_ms,
                  int max_calls);

/// Per-request context the policy reads besides the episode: the request's own features, the
/// accuracy/latency trade-off β (NDCG per second of latency) and the latency budget (ms, 0 = none).
struct RequestFeatures {
  float log_length = 0, diversity = 0, mean_log_pop = 0, last_log_pop = 0;
};
constexpr int kNumFeatures = 21;
/// The observation statistics' entries in the feature vector (fast_rec's and the ranker's top, margin,
/// entropy): 0 there means "not observed yet", every other entry's 0 is a value.
constexpr int kFirstObservationFeature = 10, kEndObservationFeature = 16;
/// β as the policy reads it: log(1 + 100·β) / 5, which spreads the small β that price a slow call
/// (think_and_rec costs ~25 ms on one thread: β = 0.05 charges it 0.00125 NDCG) as well as the large ones.
float beta_feature(double beta);
/// The policy's input vector for one decision (kNumFeatures entries).
std::vector<float> feature_vector(const RequestFeatures& request, const EpisodeState& state, double beta,
                                  double budget_ms, const CostModel& costs);

/// What a call costs under the cost model in `state`: the tool's cost when it runs, the decision alone
/// for finish and invalid calls. The live loop and the training replay both charge this, so the
/// policy sees the same state in both (measured wall time is reported beside it).
double call_cost(const EpisodeState& state, int action, const CostModel& costs);

/// True when the action fits the remaining budget under the cost model (finish always does).
bool affordable(const EpisodeState& state, int action, double budget_ms, const CostModel& costs);

/// The three tools the agent calls.
struct Toolbox {
  std::shared_ptr<const Tool> fast, rank, think;
  /// Candidates fast_rec gathers for the ranker (fast_rec(wide), rank_candidates(wide, k)).
  int wide = 50;
  /// Throws InputError naming a missing tool.
  void check() const;
};

/// Decides the next action for a batch of live episodes.
class Policy {
 public:
  virtual ~Policy() = default;
  virtual std::string name() const = 0;
  /// One action per episode (index into the menu).
  virtual std::vector<int> decide(const std::vector<const Sequence*>& histories,
                                  const std::vector<EpisodeState>& states, double beta, double budget_ms) const = 0;
};

struct AgentOptions {
  int max_calls = 4;
  double beta = 1.0;
  /// Mean cost per request (cost model, ms) that AgentRecommender holds by moving β (BetaController);
  /// 0 = β stays fixed.
  double target_ms = 0;
  /// How fast β moves towards the target (BetaController's step).
  double target_step = kLatencyTargetStep;
  /// Per-request latency budget in ms (0 = none); calls the cost model says would exceed it are not
  /// made.
  double budget_ms = 0;
};

/// One request's episode.
struct AgentAnswer {
  Ranking items;
  /// Valid calls joined by "+" (e.g. "fast_rec+rank_candidates"); "fallback" marks a forced fast_rec.
  std::string plan;
  /// The calls as the grammar wrote them, invalid ones included with their error.
  nlohmann::json trace = nlohmann::json::array();
  std::string rationale;
  /// The calls that ran (Action values; finish and invalid calls left out, a forced fast_rec included).
  std::vector<int> calls;
  /// Wall time per tool and for the policy's decisions, ms.
  std::map<std::string, double> tool_ms;
  int invalid = 0;
  /// The episode's cost under the cost model (a fallback fast_rec included).
  double cost_ms = 0;
};

/// Runs episodes for a batch of requests with the real tools: each round the policy decides for every
/// open episode, the calls are parsed from the grammar and run batched per tool. `k` is each list's
/// length.
std::vector<AgentAnswer> run_agent(const Toolbox& tools, const Policy& policy, std::vector<RequestState>& requests,
                                   int k, const AgentOptions& options, const CostModel& costs);

/// A policy in the agent loop as a Recommender for `twistar eval`; counts the plans it ran.
class AgentRecommender : public Recommender {
 public:
  AgentRecommender(Toolbox tools, std::shared_ptr<const Policy> policy, AgentOptions options, CostModel costs,
                   std::string name);
  std::string name() const override { return name_; }
  std::vector<Ranking> recommend(const std::vector<Sequence>& histories, const RecommendOptions& options) const override;
  size_t preferred_batch_size() const override { return 256; }
  bool adapts_to_traffic() const override { return beta_->target_ms() > 0; }
  /// Share of episodes per plan ("fast_rec+rank_candidates", ...), and of episodes calling think_and_rec.
  std::map<std::string, double> plan_shares() const;
  double slow_rate() const;
  /// Share of episodes per canonical plan their calls resemble (plan_mix): a random router's mix.
  std::array<double, kNumPlans> mix_shares() const;
  /// Each tool's (and the planner's) time on single-request calls.
  std::map<std::string, std::vector<double>> single_request_costs() const;
  /// Serves at a fixed β (target_ms 0) or holds the mean cost at target_ms starting from β.
  void set_beta(double beta, double target_ms = 0);
  const BetaController& beta_control() const { return *beta_; }
  void reset_counts();
  const Policy& policy() const { return *policy_; }

 private:
  Toolbox tools_;
  std::shared_ptr<const Policy> policy_;
  AgentOptions options_;
  CostModel costs_;
  std::string name_;
  std::unique_ptr<BetaController> beta_;
  mutable std::mutex mutex_;
  mutable std::map<std::string, int64_t> plans_;
  mutable std::array<int64_t, kNumPlans> mix_{};
  mutable int64_t total_ = 0;
  mutable std::map<std::string, std::vector<double>> costs_ms_;
};

}  // namespace twistar
