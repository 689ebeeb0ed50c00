#include "agent/agent_loop.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace twistar {

namespace {

constexpr const char* kActionNames[kNumActions] = {"fast_rec", "fast_rec_wide", "rank_candidates", "think_and_rec",
                                                   "finish"};

/// The integer argument `key` of a call, in [1, 1000].
std::optional<int> int_argument(const nlohmann::json& args, const char* key, const std::string& tool,
                                std::string* error) {
  if (!args.contains(key)) {
    *error = fmt::format("{}: missing argument '{}'", tool, key);
    return std::nullopt;
  }
  const auto& v = args.at(key);
  if (!v.is_number_integer()) {
    *error = fmt::format("{}: argument '{}' must be an integer, got {}", tool, key, v.dump());
    return std::nullopt;
  }
  const auto n = v.get<int64_t>();
  if (n < 1 || n > 1000) {
    *error = fmt::format("{}: argument '{}' = {} is out of range [1, 1000]", tool, key, n);
    return std::nullopt;
  }
  return static_cast<int>(n);
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

std::optional<ToolCall> parse_tool_call(const std::string& text, std::string* error) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    *error = fmt::format("tool call is not JSON: {}", e.what());
    return std::nullopt;
  }
  if (!j.is_object() || !j.contains("tool") || !j.at("tool").is_string()) {
    *error = "tool call: needs a string field 'tool'";
    return std::nullopt;
  }
  ToolCall call;
  call.tool = j.at("tool").get<std::string>();
  const nlohmann::json args = j.value("arguments", nlohmann::json::object());
  if (!args.is_object()) {
    *error = fmt::format("{}: 'arguments' must be an object", call.tool);
    return std::nullopt;
  }
  auto need = [&](const char* key, int& out) {
    auto v = int_argument(args, key, call.tool, error);
    if (v) out = *v;
    return v.has_value();
  };
  if (call.tool == "fast_rec") {
    if (!need("k", call.args.k)) return std::nullopt;
  } else if (call.tool == "rank_candidates") {
    if (!need("m", call.args.m) || !need("n", call.args.k)) return std::nullopt;
    if (call.args.k > call.args.m) {
      *error = fmt::format("rank_candidates: n = {} is larger than m = {}", call.args.k, call.args.m);
      return std::nullopt;
    }
  } else if (call.tool == "think_and_rec") {
    if (!need("j", call.args.k)) return std::nullopt;
  } else if (call.tool != "finish") {
    *error = fmt::format("unknown tool '{}' (fast_rec, rank_candidates, think_and_rec, finish)", call.tool);
    return std::nullopt;
  }
  return call;
}

std::string format_tool_call(const ToolCall& call) {
  nlohmann::json args = nlohmann::json::object();
  if (call.tool == "fast_rec") args["k"] = call.args.k;
  if (call.tool == "rank_candidates") args = {{"m", call.args.m}, {"n", call.args.k}};
  if (call.tool == "think_and_rec") args["j"] = call.args.k;
  return nlohmann::json{{"tool", call.tool}, {"arguments", args}}.dump();
}

std::string action_call(int action, int k, int wide) {
  switch (action) {
    case kFastK: return format_tool_call({"fast_rec", {k, 0}});
    case kFastWide: return format_tool_call({"fast_rec", {wide, 0}});
    case kRank: return format_tool_call({"rank_candidates", {k, wide}});
    case kThink: return format_tool_call({"think_and_rec", {k, 0}});
    case kFinish: return format_tool_call({"finish", {}});
    default: throw Error(fmt::format("action {} is not on the menu", action));
  }
}

const char* action_name(int action) { return kActionNames[action]; }

int plan_mix(const std::vector<int>& valid_calls) {
  bool think = false, ranked = false;
  for (size_t i = 0; i < valid_calls.size(); ++i) {
    if (valid_calls[i] == kThink && i > 0 && valid_calls[i - 1] == kRank) return kPlanRankSlow;
    think = think || valid_calls[i] == kThink;
    ranked = ranked || valid_calls[i] == kRank;
  }
  return think ? kPlanSlow : ranked ? kPlanFastRank : kPlanFastOnly;
}

nlohmann::json CostModel::to_json() const {
  nlohmann::json j = {{"decision_ms", decision_ms}};
  for (int a = 0; a < kNumActions; ++a) j["ms"][kActionNames[a]] = ms[a];
  return j;
}

CostModel CostModel::from_json(const nlohmann::json& j, const std::string& where) {
  CostModel c;
  try {
    c.decision_ms = j.at("decision_ms").get<double>();
    for (int a = 0; a < kNumActions; ++a) c.ms[a] = j.at("ms").at(kActionNames[a]).get<double>();
  } catch (const nlohmann::json::exception& e) {
    throw_input_error("{}: bad cost model: {}", where, e.what());
  }
  for (double v : c.ms)
    if (!(v >= 0)) throw_input_error("{}: cost model has a negative or NaN cost", where);
  return c;
}

ObservationStats observation_stats(const Ranking& items) {
  ObservationStats s;
  if (items.empty()) return s;
  s.top = items[0].score;
  s.margin = items.size() > 1 ? items[0].score - items[1].score : 0.0f;
  if (items.size() > 1) {
    double mx = -std::numeric_limits<double>::infinity();
    for (const auto& it : items) mx = std::max(mx, static_cast<double>(it.score));
    double z = 0, h = 0;
    for (const auto& it : items) z += std::exp(it.score - mx);
    for (const auto& it : items) {
      const double p = std::exp(it.score - mx) / z;
      if (p > 0) h -= p * std::log(p);
    }
    s.entropy = static_cast<float>(h / std::log(static_cast<double>(items.size())));
  }
  if (!std::isfinite(s.top)) s.top = -100.0f;
  if (!std::isfinite(s.margin)) s.margin = 0.0f;
  return s;
}

std::string invalid_reason(const EpisodeState& state, int action) {
  if (action < 0 || action >= kNumActions) return fmt::format("action {} is not on the menu", action);
  if (state.done) return "the episode has ended";
  if (action == kRank) {
    if (state.candidates == kNoList) return "rank_candidates needs a prior fast_rec";
    if (state.ranked) return "rank_candidates: these candidates are already ranked";
  }
  if (action == kFinish && state.list == kNoList) return "finish: no list to return yet";
  return "";
}

int think_list(const EpisodeState& state) {
  if (!state.ranked) return kListThink;
  return state.candidates == kListFast ? kListThinkRankFast : kListThinkRankWide;
}

void step_episode(EpisodeState& state, int action, const ObservationStats& stats, double cost_ms, int max_calls) {
  state.actions.push_back(action);
  ++state.calls;
  state.cost_ms += cost_ms;
  if (!invalid_reason(state, action).empty()) {
    ++state.invalid;
  } else {
    switch (action) {
      case kFastK:
      case kFastWide:
        state.list = state.candidates = action == kFastK ? kListFast : kListWide;
        state.ranked = false;
        state.fast = stats;
        state.rank = {};
        break;
      case kRank:
        state.list = state.candidates == kListFast ? kListRankFast : kListRankWide;
        state.ranked = true;
        state.rank = stats;
        break;
      case kThink:
        state.list = think_list(state);
        state.done = true;
        break;
      case kFinish: state.done = true; break;
    }
  }
  if (state.calls >= max_calls) state.done = true;
}

double call_cost(const EpisodeState& state, int action, const CostModel& costs) {
  return invalid_reason(state, action).empty() && action != kFinish ? costs.of(action) : costs.decision_ms;
}

bool affordable(const EpisodeState& state, int action, double budget_ms, const CostModel& costs) {
  if (budget_ms <= 0 || action == kFinish) return true;
  return state.cost_ms + costs.of(action) <= budget_ms;
}

float beta_feature(double beta) { return static_cast<float>(std::log1p(100.0 * std::max(beta, 0.0)) / 5.0); }

std::vector<float> feature_vector(const RequestFeatures& request, const EpisodeState& state, double beta,
                                  double budget_ms, const CostModel& costs) {
  const double think = std::max(costs.of(kThink), 1e-3);
  const double remaining = budget_ms > 0 ? std::clamp((budget_ms - state.cost_ms) / think, 0.0, 2.0) : 2.0;
  std::vector<float> f = {
      request.log_length,
      request.diversity,
      request.mean_log_pop,
      request.last_log_pop,
      static_cast<float>(state.calls) / 4.0f,
      state.invalid > 0 ? 1.0f : 0.0f,
      state.list != kNoList ? 1.0f : 0.0f,
      state.candidates == kListFast ? 1.0f : 0.0f,
      state.candidates == kListWide ? 1.0f : 0.0f,
      state.ranked ? 1.0f : 0.0f,
      std::clamp(state.fast.top / 10.0f, -3.0f, 3.0f),
      std::min(state.fast.margin, 5.0f) / 5.0f,
      state.fast.entropy,
      std::clamp(state.rank.top / 10.0f, -3.0f, 3.0f),
      std::min(state.rank.margin, 5.0f) / 5.0f,
      state.rank.entropy,
      beta_feature(beta),
      budget_ms > 0 ? 1.0f : 0.0f,
      static_cast<float>(remaining),
      static_cast<float>(std::min(state.cost_ms / think, 3.0)),
      affordable(state, kThink, budget_ms, costs) ? 1.0f : 0.0f,
  };
  return f;
}

void Toolbox::check() const {
  if (!fast) throw_input_error("agent: no fast_rec tool");
  if (!rank) throw_input_error("agent: no rank_candidates tool");
  if (!think) throw_input_error("agent: no think_and_rec tool");
  if (wide < 1) throw_input_error("agent: wide = {} must be positive", wide);
}

namespace {

/// Runs one tool call as a batch over the requests at `indices` (moved into the batch and back).
std::vector<Observation> run_tool_on(const Tool& tool, const ToolArgs& args, std::vector<RequestState>& requests,
                                     const std::vector<size_t>& indices) {
  std::vector<RequestState> batch;
  batch.reserve(indices.size());
  for (size_t i : indices) batch.push_back(std::move(requests[i]));
  auto obs = tool.run(batch, args);
  for (size_t g = 0; g < indices.size(); ++g) requests[indices[g]] = std::move(batch[g]);
  return obs;
}

}  // namespace

std::vector<AgentAnswer> run_agent(const Toolbox& tools, const Policy& policy, std::vector<RequestState>& requests,
                                   int k, const AgentOptions& options, const CostModel& costs) {
  tools.check();
  // rank_candidates(m, n) needs n <= m: a request for more items than `wide` widens the candidates.
  const int wide = std::max(tools.wide, k);
  const size_t n = requests.size();
  std::vector<AgentAnswer> answers(n);
  std::vector<EpisodeState> states(n);
  std::vector<Ranking> lists(n);
  for (int round = 0; round < options.max_calls; ++round) {
    std::vector<size_t> open;
    for (size_t i = 0; i < n; ++i)
      if (!states[i].done) open.push_back(i);
    if (open.empty()) break;
    std::vector<const Sequence*> histories;
    std::vector<EpisodeState> view;
    for (size_t i : open) {
      histories.push_back(&requests[i].history);
      view.push_back(states[i]);
    }
    auto t0 = std::chrono::steady_clock::now();
    auto actions = policy.decide(histories, view, options.beta, options.budget_ms);
    const double decide_ms = ms_since(t0) / static_cast<double>(open.size());
    // Calls that would exceed the budget become finish (or, with nothing to return, the cheapest list).
    std::array<std::vector<size_t>, kNumActions> groups;
    for (size_t g = 0; g < open.size(); ++g) {
      const size_t i = open[g];
      answers[i].tool_ms["planner"] += decide_ms;
      requests[i].cost_ms += decide_ms;
      int a = actions[g];
      if (!affordable(view[g], a, options.budget_ms, costs))
        a = states[i].list != kNoList ? kFinish : kFastK;
      const std::string text = action_call(std::clamp(a, 0, kNumActions - 1), k, wide);
      std::string error;
      auto call = parse_tool_call(text, &error);
      if (error.empty()) error = invalid_reason(states[i], a);
      nlohmann::json entry = nlohmann::json::parse(text);
      if (!error.empty()) {
        entry["error"] = error;
        answers[i].trace.push_back(entry);
        ++answers[i].invalid;
        step_episode(states[i], a, {}, call_cost(states[i], a, costs), options.max_calls);
        continue;
      }
      answers[i].trace.push_back(entry);
      if (a == kFinish) {
        step_episode(states[i], a, {}, call_cost(states[i], a, costs), options.max_calls);
        continue;
      }
      groups[a].push_back(i);
    }
    for (int a = 0; a < kNumActions; ++a) {
      if (groups[a].empty()) continue;
      const Tool& tool = a == kRank ? *tools.rank : a == kThink ? *tools.think : *tools.fast;
      ToolArgs args = a == kFastK ? ToolArgs{k, 0} : a == kFastWide ? ToolArgs{wide, 0}
                                                   : a == kRank     ? ToolArgs{k, wide}
                                                                    : ToolArgs{k, 0};
      auto obs = run_tool_on(tool, args, requests, groups[a]);
      for (size_t g = 0; g < groups[a].size(); ++g) {
        const size_t i = groups[a][g];
        answers[i].tool_ms[tool.name()] += obs[g].cost_ms;
        if (!obs[g].error.empty()) {
          answers[i].trace.back()["error"] = obs[g].error;
          ++answers[i].invalid;
          // A tool's own refusal counts as an invalid call; the state keeps its list.
          states[i].actions.push_back(a);
          states[i].cost_ms += costs.decision_ms;
          ++states[i].invalid;
          if (++states[i].calls >= options.max_calls) states[i].done = true;
          continue;
        }
        if (!obs[g].rationale.empty()) answers[i].rationale = obs[g].rationale;
        answers[i].calls.push_back(a);
        lists[i] = obs[g].items;
        step_episode(states[i], a, observation_stats(obs[g].items), call_cost(states[i], a, costs), options.max_calls);
      }
    }
  }
  // Episodes that ended with no list get fast_rec(k), stated in the plan.
  std::vector<size_t> empty;
  for (size_t i = 0; i < n; ++i)
    if (states[i].list == kNoList) empty.push_back(i);
  if (!empty.empty()) {
    auto obs = run_tool_on(*tools.fast, {k, 0}, requests, empty);
    for (size_t g = 0; g < empty.size(); ++g) {
      const size_t i = empty[g];
      answers[i].tool_ms[tools.fast->name()] += obs[g].cost_ms;
      lists[i] = obs[g].items;
      states[i].list = kListFast;
      answers[i].calls.push_back(kFastK);
      answers[i].plan = "fallback";
      states[i].cost_ms += costs.of(kFastK);
    }
  }
  for (size_t i = 0; i < n; ++i) {
    std::string plan;
    for (const auto& call : answers[i].trace) {
      if (call.contains("error") || call.at("tool") == "finish") continue;
      if (!plan.empty()) plan += "+";
      plan += call.at("tool").get<std::string>();
    }
    if (answers[i].plan == "fallback") plan = plan.empty() ? "fallback" : plan + "+fallback";
    answers[i].plan = plan;
    answers[i].cost_ms = states[i].cost_ms;
    if (lists[i].size() > static_cast<size_t>(k)) lists[i].resize(static_cast<size_t>(k));
    answers[i].items = std::move(lists[i]);
  }
  return answers;
}

// ---- a policy in the loop as a Recommender ----

AgentRecommender::AgentRecommender(Toolbox tools, std::shared_ptr<const Policy> policy, AgentOptions options,
                                   CostModel costs, std::string name)
    : tools_(std::move(tools)),
      policy_(std::move(policy)),
      options_(options),
      costs_(costs),
      name_(std::move(name)),
      beta_(std::make_unique<BetaController>(options.beta, options.target_ms, options.target_step)) {
  tools_.check();
  if (!policy_) throw InputError(fmt::format("{}: no policy", name_));
}

void AgentRecommender::set_beta(double beta, double target_ms) {
  beta_ = std::make_unique<BetaController>(beta, target_ms, options_.target_step);
}

std::vector<Ranking> AgentRecommender::recommend(const std::vector<Sequence>& histories,
                                                 const RecommendOptions& options) const {
  auto requests = request_states(histories, options);
  AgentOptions agent = options_;
  agent.beta = beta_->beta();  // the controller, not options_, holds the served β
  auto answers = run_agent(tools_, *policy_, requests, options.k, agent, costs_);
  std::vector<double> costs;
  costs.reserve(answers.size());
  for (const auto& a : answers) costs.push_back(a.cost_ms);
  beta_->observe(costs);
  std::vector<Ranking> out;
  out.reserve(answers.size());
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& a : answers) {
    ++plans_[a.plan];
    ++mix_[plan_mix(a.calls)];
    ++total_;
    if (answers.size() == 1)
      for (const auto& [tool, ms] : a.tool_ms) costs_ms_[tool].push_back(ms);
    out.push_back(std::move(a.items));
  }
  return out;
}

std::map<std::string, double> AgentRecommender::plan_shares() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::map<std::string, double> out;
  for (const auto& [plan, n] : plans_) out[plan] = total_ > 0 ? static_cast<double>(n) / total_ : 0.0;
  return out;
}

std::array<double, kNumPlans> AgentRecommender::mix_shares() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::array<double, kNumPlans> out{};
  for (int p = 0; p < kNumPlans; ++p) out[p] = total_ > 0 ? static_cast<double>(mix_[p]) / total_ : 0.0;
  return out;
}

double AgentRecommender::slow_rate() const {
  std::lock_guard<std::mutex> lock(mutex_);
  // plan_mix puts every episode that called think_and_rec in slow or fast_rank_slow.
  return total_ > 0 ? static_cast<double>(mix_[kPlanSlow] + mix_[kPlanRankSlow]) / total_ : 0.0;
}

std::map<std::string, std::vector<double>> AgentRecommender::single_request_costs() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return costs_ms_;
}

void AgentRecommender::reset_counts() {
  std::lock_guard<std::mutex> lock(mutex_);
  plans_.clear();
  mix_.fill(0);
  total_ = 0;
  costs_ms_.clear();
}

}  // namespace twistar
