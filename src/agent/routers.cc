#include "agent/routers.h"

#include <algorithm>
#include <optional>
#include <string_view>

#include "core/error.h"
#include "core/hash.h"

namespace twistar {

namespace {

/// Per-request plan for the fixed-plan routers: the next call of `plan` given the calls made.
int next_call_of_plan(int plan, const EpisodeState& s) {
  auto steps = plan_actions(plan);
  return s.calls < static_cast<int>(steps.size()) ? steps[s.calls] : kFinish;
}

}  // namespace

std::vector<int> ThresholdRouter::decide(const std::vector<const Sequence*>&, const std::vector<EpisodeState>& states,
                                         double, double) const {
  std::vector<int> out;
  for (const auto& s : states) {
    const bool sure = s.fast.top >= rule_.threshold;
    if (s.candidates == kNoList) out.push_back(kFastWide);
    else if (!s.ranked) out.push_back(sure || rule_.after_rank ? kRank : kThink);
    else out.push_back(rule_.after_rank && !sure ? kThink : kFinish);
  }
  return out;
}

ThresholdOutcome replay_threshold(const EpisodeTable& table, const std::vector<size_t>& users, ThresholdRule rule,
                                  int max_calls) {
  ThresholdRouter router(rule);
  std::vector<EpisodeState> states(users.size());
  for (size_t i = 0; i < users.size(); ++i)
    while (!states[i].done)
      replay_step(table.users[users[i]], states[i], router.decide({}, {states[i]}, 0.0, 0.0)[0], table.costs,
                  max_calls);
  ThresholdOutcome out;
  static_cast<SimSummary&>(out) = summarise_episodes(table, users, states, 0.0, 0.0);
  out.rule = rule;
  return out;
}

ThresholdOutcome tune_threshold(const EpisodeTable& table, const std::vector<size_t>& users, double max_cost_ms,
                                int max_calls) {
  std::vector<float> tops;
  for (size_t i : users) tops.push_back(table.users[i].stats[kListWide].top);
  if (tops.empty()) return {};
  std::sort(tops.begin(), tops.end());
  std::optional<ThresholdOutcome> best, cheapest;
  for (bool after_rank : {false, true}) {
    for (int q = 0; q <= 40; ++q) {
      // q = 0: never think (every top score passes); q = 40: always think.
      const double t = q == 0 ? -1e30 : q == 40 ? 1e30 : tops[(tops.size() - 1) * static_cast<size_t>(q) / 40];
      const auto o = replay_threshold(table, users, {t, after_rank}, max_calls);
      if (o.cost_ms <= max_cost_ms && (!best || o.ndcg10 > best->ndcg10 + 1e-12)) best = o;
      if (!cheapest || o.cost_ms < cheapest->cost_ms - 1e-12) cheapest = o;
    }
  }
  return best ? *best : *cheapest;
}

RandomRouter::RandomRouter(std::array<double, kNumPlans> shares, uint64_t seed) : shares_(shares), seed_(seed) {
  double total = 0;
  for (double s : shares_) {
    if (!(s >= 0)) throw InputError("router_random: plan shares must be >= 0");
    total += s;
  }
  if (!(total > 0)) throw InputError("router_random: plan shares sum to zero");
  for (double& s : shares_) s /= total;
}

std::vector<int> RandomRouter::decide(const std::vector<const Sequence*>& histories,
                                      const std::vector<EpisodeState>& states, double, double) const {
  std::vector<int> out;
  for (size_t i = 0; i < states.size(); ++i) {
    const auto& h = *histories[i];
    const uint64_t x = fnv1a64(std::string_view(reinterpret_cast<const char*>(h.data()), h.size() * sizeof(ItemIndex)),
                               seed_);
    const double u = static_cast<double>(x % 1000003) / 1000003.0;
    int plan = kNumPlans - 1;
    double acc = 0;
    for (int p = 0; p < kNumPlans; ++p) {
      acc += shares_[p];
      if (u < acc) {
        plan = p;
        break;
      }
    }
    out.push_back(next_call_of_plan(plan, states[i]));
  }
  return out;
}

}  // namespace twistar
