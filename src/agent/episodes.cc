#include "agent/episodes.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>

#include "core/compute_threads.h"
#include "core/error.h"
#include "core/progress.h"
#include "data/ranks.h"

namespace twistar {

namespace {

constexpr const char* kPlanNames[kNumPlans] = {"fast_only", "fast_rank", "slow", "fast_rank_slow"};

nlohmann::json stats_json(const ObservationStats& s) { return {s.top, s.margin, s.entropy}; }

/// Times each call one request at a time on one thread (after a warm-up), on `n` spaced examples.
CostModel measure_costs(const Toolbox& tools, const std::vector<Example>& examples, int k, size_t n) {
  CostModel costs;
  if (examples.empty() || n == 0) return costs;
  n = std::min(n, examples.size());
  const ComputeThreadsGuard one_thread(1);
  std::array<double, kNumActions> total{};
  for (size_t r = 0; r <= n; ++r) {  // r == 0 is the warm-up
    const Example& ex = examples[(r == 0 ? 0 : r - 1) * examples.size() / n];
    auto run = [&](const Tool& tool, RequestState& state, ToolArgs args) {
      auto t0 = std::chrono::steady_clock::now();
      tool.run_one(state, args);
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    };
    RequestState a, b;
    a.history = b.history = ex.history;
    std::array<double, kNumActions> t{};
    t[kFastK] = run(*tools.fast, a, {k, 0});
    t[kFastWide] = run(*tools.fast, b, {tools.wide, 0});
    t[kRank] = run(*tools.rank, b, {k, tools.wide});
    // think_and_rec as the planner calls it, after ranking (its combination with the candidates included).
    t[kThink] = run(*tools.think, b, {k, 0});
    if (r > 0)
      for (int x = 0; x < kNumActions; ++x) total[x] += t[x];
  }
  for (int x = 0; x < kNumActions; ++x) costs.ms[x] = total[x] / static_cast<double>(n);
  return costs;
}

}  // namespace

int plan_of(const EpisodeState& s) {
  std::vector<int> valid;
  EpisodeState replay;
  for (int a : s.actions) {
    if (invalid_reason(replay, a).empty() && a != kFinish) valid.push_back(a);
    step_episode(replay, a, {}, 0.0, 1000);
  }
  if (valid == std::vector<int>{kFastK}) return kPlanFastOnly;
  if (valid == std::vector<int>{kFastWide, kRank}) return kPlanFastRank;
  if (valid == std::vector<int>{kThink}) return kPlanSlow;
  if (valid == std::vector<int>{kFastWide, kRank, kThink}) return kPlanRankSlow;
  return kNumPlans;
}

bool calls_think(const EpisodeState& s) {
  return std::find(s.actions.begin(), s.actions.end(), kThink) != s.actions.end();
}

/// NDCG@10 and cost of a finished replayed episode; an episode with no list falls back to fast_rec(k).
std::pair<double, double> episode_outcome(const UserEpisode& u, const EpisodeState& s, const CostModel& costs) {
  if (s.list == kNoList) return {u.ndcg[kListFast], s.cost_ms + costs.of(kFastK)};
  return {u.ndcg[s.list], s.cost_ms};
}

double episode_reward(const UserEpisode& u, const EpisodeState& s, double beta, double invalid_penalty,
                      const CostModel& costs) {
  auto [ndcg, cost] = episode_outcome(u, s, costs);
  const double fallback = s.list == kNoList ? 1.0 : 0.0;
  return ndcg - beta * cost / 1000.0 - invalid_penalty * (s.invalid + fallback);
}

/// Applies an action to a replayed episode: its recorded outcome and the cost model's cost.
void replay_step(const UserEpisode& u, EpisodeState& s, int action, const CostModel& costs, int max_calls) {
  const bool valid = invalid_reason(s, action).empty();
  ObservationStats stats;
  const double cost = call_cost(s, action, costs);
  if (valid && action != kFinish) {
    if (action == kFastK) stats = u.stats[kListFast];
    if (action == kFastWide) stats = u.stats[kListWide];
    if (action == kRank) stats = u.stats[s.candidates == kListFast ? kListRankFast : kListRankWide];
    if (action == kThink) stats = u.stats[think_list(s)];
  }
  step_episode(s, action, stats, cost, max_calls);
}

nlohmann::json EpisodeTable::to_json() const {
  nlohmann::json users_json = nlohmann::json::array();
  for (const auto& u : users) {
    nlohmann::json stats = nlohmann::json::array();
    for (const auto& s : u.stats) stats.push_back(stats_json(s));
    users_json.push_back({{"h", u.history},
                          {"f", {u.request.log_length, u.request.diversity, u.request.mean_log_pop, u.request.last_log_pop}},
                          {"ndcg", u.ndcg},
                          {"stats", stats}});
  }
  return {{"format", "twistar.episodes"}, {"version", 2}, {"costs", costs.to_json()}, {"users", users_json}};
}

EpisodeTable EpisodeTable::from_json(const nlohmann::json& j, const std::string& where) {
  EpisodeTable t;
  try {
    if (j.at("format") != "twistar.episodes" || j.at("version") != 2)
      throw_input_error("{}: not a twistar episode table of version 2 (delete it to rebuild)", where);
    t.costs = CostModel::from_json(j.at("costs"), where);
    for (const auto& uj : j.at("users")) {
      UserEpisode u;
      u.history = uj.at("h").get<Sequence>();
      auto f = uj.at("f").get<std::vector<float>>();
      if (f.size() != 4) throw_input_error("{}: user {}: 'f' needs 4 values", where, t.users.size());
      u.request = {f[0], f[1], f[2], f[3]};
      u.ndcg = uj.at("ndcg").get<std::array<float, kNumListSources>>();
      const auto& stats = uj.at("stats");
      if (stats.size() != kNumListSources) throw_input_error("{}: user {}: bad 'stats'", where, t.users.size());
      for (int s = 0; s < kNumListSources; ++s) {
        auto v = stats.at(s).get<std::vector<float>>();
        if (v.size() != 3) throw_input_error("{}: user {}: bad 'stats'", where, t.users.size());
        u.stats[s] = {v[0], v[1], v[2]};
      }
      t.users.push_back(std::move(u));
    }
  } catch (const nlohmann::json::exception& e) {
    throw_input_error("{}: bad episode table: {}", where, e.what());
  }
  return t;
}

EpisodeTable build_episode_table(const Toolbox& tools, const std::vector<Example>& examples, int k,
                                 size_t cost_requests, const std::function<RequestFeatures(const Sequence&)>& features,
                                 bool progress, size_t threads) {
  tools.check();
  EpisodeTable table;
  table.users.resize(examples.size());
  const size_t chunk = 256;
  Progress bar("planner episodes", examples.size(), progress);
  // Each chunk fills its own users' episodes.
  for_each_task((examples.size() + chunk - 1) / chunk, threads, [&](size_t c) {
    const size_t start = c * chunk, end = std::min(examples.size(), start + chunk);
    auto states = [&] {
      std::vector<RequestState> s(end - start);
      for (size_t i = start; i < end; ++i) s[i - start].history = examples[i].history;
      return s;
    };
    auto fast = states(), wide = states(), think = states();
    auto f = tools.fast->run(fast, {k, 0});
    auto w = tools.fast->run(wide, {tools.wide, 0});
    auto rf = tools.rank->run(fast, {k, tools.wide});
    auto rw = tools.rank->run(wide, {k, tools.wide});
    // think_and_rec's own lists as long as a call after ranking reads them (its answer alone is the head).
    auto th = tools.think->run(think, {tools.think->own_length(k), 0});
    std::vector<const RequestState*> after_fast, after_wide;
    std::vector<Ranking> own;
    for (size_t j = 0; j < end - start; ++j) {
      after_fast.push_back(&fast[j]);
      after_wide.push_back(&wide[j]);
      own.push_back(th[j].items);
    }
    // think_and_rec after each ranking: its own list combined as the live tool combines it.
    auto think_fast = tools.think->after_ranking(after_fast, own, k);
    auto think_wide = tools.think->after_ranking(after_wide, std::move(own), k);
    for (size_t i = start; i < end; ++i) {
      const size_t j = i - start;
      UserEpisode& u = table.users[i];
      u.history = examples[i].history;
      u.request = features(u.history);
      for (const auto* o : {&f[j], &w[j], &rf[j], &rw[j], &th[j]})
        if (!o->error.empty()) throw Error(fmt::format("planner episodes: {}", o->error));
      Ranking alone = th[j].items;
      if (static_cast<int>(alone.size()) > k) alone.resize(static_cast<size_t>(k));
      const std::array<Ranking, kNumListSources> lists = {f[j].items,  w[j].items,  rf[j].items,    rw[j].items,
                                                          alone,       think_fast[j], think_wide[j]};
      for (int s = 0; s < kNumListSources; ++s) {
        u.ndcg[s] = static_cast<float>(ndcg_at(rank_of(lists[s], examples[i].target), 10));
        u.stats[s] = observation_stats(lists[s]);
      }
    }
    bar.tick(end - start);
  });
  table.costs = measure_costs(tools, examples, k, cost_requests);
  return table;
}

nlohmann::json SimSummary::to_json() const {
  nlohmann::json shares;
  for (int p = 0; p <= kNumPlans; ++p) shares[plan_name(p)] = plan_shares[p];
  return {{"ndcg@10", ndcg10}, {"cost_ms", cost_ms}, {"reward", reward},
          {"invalid", invalid}, {"slow_rate", slow_rate}, {"plan_shares", shares}};
}

SimSummary summarise_episodes(const EpisodeTable& table, const std::vector<size_t>& users,
                              const std::vector<EpisodeState>& states, double beta, double invalid_penalty) {
  SimSummary s;
  for (size_t i = 0; i < users.size(); ++i) {
    const auto& u = table.users[users[i]];
    auto [ndcg, cost] = episode_outcome(u, states[i], table.costs);
    s.ndcg10 += ndcg;
    s.cost_ms += cost;
    s.reward += episode_reward(u, states[i], beta, invalid_penalty, table.costs);
    s.invalid += states[i].invalid;
    s.plan_shares[plan_of(states[i])] += 1;
    s.slow_rate += calls_think(states[i]);
  }
  const double n = std::max<double>(1.0, static_cast<double>(users.size()));
  s.ndcg10 /= n;
  s.cost_ms /= n;
  s.reward /= n;
  s.invalid /= n;
  s.slow_rate /= n;
  for (auto& v : s.plan_shares) v /= n;
  return s;
}

const char* plan_name(int plan) { return plan >= 0 && plan < kNumPlans ? kPlanNames[plan] : "other"; }

std::vector<int> plan_actions(int plan) {
  switch (plan) {
    case kPlanFastOnly: return {kFastK, kFinish};
    case kPlanFastRank: return {kFastWide, kRank, kFinish};
    case kPlanSlow: return {kThink};
    case kPlanRankSlow: return {kFastWide, kRank, kThink};
    default: throw Error(fmt::format("no plan {}", plan));
  }
}

int plan_list(int plan) {
  switch (plan) {
    case kPlanFastOnly: return kListFast;
    case kPlanFastRank: return kListRankWide;
    case kPlanSlow: return kListThink;
    case kPlanRankSlow: return kListThinkRankWide;
    default: throw Error(fmt::format("no plan {}", plan));
  }
}

double plan_cost(int plan, const CostModel& costs) {
  double c = 0;
  for (int a : plan_actions(plan)) c += a == kFinish ? costs.decision_ms : costs.of(a);
  return c;
}

int best_plan(const UserEpisode& user, const CostModel& costs) {
  int best = kPlanFastOnly;
  for (int p = 1; p < kNumPlans; ++p) {
    const float a = user.ndcg[plan_list(p)], b = user.ndcg[plan_list(best)];
    if (a > b + 1e-6f || (std::abs(a - b) <= 1e-6f && plan_cost(p, costs) < plan_cost(best, costs))) best = p;
  }
  return best;
}

std::array<double, kNumPlans> plan_prior(const EpisodeTable& table, const std::vector<size_t>& users, double beta) {
  std::array<double, kNumPlans> prior{};
  for (size_t i : users)
    for (int p = 0; p < kNumPlans; ++p) prior[p] += table.users.at(i).ndcg[plan_list(p)];
  for (int p = 0; p < kNumPlans; ++p)
    prior[p] = (users.empty() ? 0.0 : prior[p] / static_cast<double>(users.size())) -
               beta * plan_cost(p, table.costs) / 1000.0;
  return prior;
}

int warmup_plan(const UserEpisode& user, const std::array<double, kNumPlans>& prior) {
  int best = kPlanFastOnly;
  for (int p = 1; p < kNumPlans; ++p) {
    const float a = user.ndcg[plan_list(p)], b = user.ndcg[plan_list(best)];
    if (a > b + 1e-6f || (std::abs(a - b) <= 1e-6f && prior[p] > prior[best])) best = p;
  }
  return best;
}

std::pair<std::string, double> ThinkSignal::strongest() const {
  std::pair<std::string, double> best{"", 0.0};
  for (const auto& c : correlation)
    if (std::abs(c.second) > std::abs(best.second)) best = c;
  return best;
}

nlohmann::json ThinkSignal::to_json() const {
  nlohmann::json r = nlohmann::json::object();
  for (const auto& [name, value] : correlation) r[name] = value;
  return {{"users", users}, {"mean_gain", mean_gain}, {"raised", raised},
          {"lowered", lowered}, {"correlation", r}, {"noise", noise}};
}

ThinkSignal think_signal(const EpisodeTable& table, const std::vector<size_t>& users) {
  ThinkSignal out;
  out.users = users.size();
  if (users.size() < 3) return out;
  using Observation = std::function<double(const UserEpisode&)>;
  const std::vector<std::pair<std::string, Observation>> observations = {
      {"wide_top", [](const UserEpisode& u) { return u.stats[kListWide].top; }},
      {"wide_margin", [](const UserEpisode& u) { return u.stats[kListWide].margin; }},
      {"wide_entropy", [](const UserEpisode& u) { return u.stats[kListWide].entropy; }},
      {"rank_top", [](const UserEpisode& u) { return u.stats[kListRankWide].top; }},
      {"rank_margin", [](const UserEpisode& u) { return u.stats[kListRankWide].margin; }},
      {"rank_entropy", [](const UserEpisode& u) { return u.stats[kListRankWide].entropy; }},
      {"log_length", [](const UserEpisode& u) { return u.request.log_length; }},
      {"diversity", [](const UserEpisode& u) { return u.request.diversity; }},
      {"mean_log_pop", [](const UserEpisode& u) { return u.request.mean_log_pop; }},
      {"last_log_pop", [](const UserEpisode& u) { return u.request.last_log_pop; }}};
  const double n = static_cast<double>(users.size());
  std::vector<double> gain;
  for (size_t i : users) {
    const auto& u = table.users[i];
    const double g = static_cast<double>(u.ndcg[kListThinkRankWide]) - u.ndcg[kListRankWide];
    gain.push_back(g);
    out.mean_gain += g / n;
    out.raised += (g > 0) / n;
    out.lowered += (g < 0) / n;
  }
  double gain_var = 0;
  for (double g : gain) gain_var += (g - out.mean_gain) * (g - out.mean_gain);
  for (const auto& [name, observe] : observations) {
    std::vector<double> x;
    for (size_t i : users) x.push_back(observe(table.users[i]));
    double mean = 0;
    for (double v : x) mean += v / n;
    double cov = 0, var = 0;
    for (size_t j = 0; j < x.size(); ++j) {
      cov += (x[j] - mean) * (gain[j] - out.mean_gain);
      var += (x[j] - mean) * (x[j] - mean);
    }
    out.correlation.emplace_back(name, var > 0 && gain_var > 0 ? cov / std::sqrt(var * gain_var) : 0.0);
  }
  out.noise = 2.0 / std::sqrt(n);
  return out;
}

}  // namespace twistar
