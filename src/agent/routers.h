// The routers the planner must beat, run in the same agent loop as policies: a confidence-threshold
// router tuned on validation episodes, and a random router at a given plan mix.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/agent_loop.h"
#include "agent/episodes.h"

namespace twistar {

/// The confidence-threshold router's rule: think when fast_rec(wide)'s top score is below `threshold`;
/// with `after_rank`, rank the candidates first and think over the ranking (fast_rank_slow),
/// otherwise think instead of ranking (slow).
struct ThresholdRule {
  double threshold = 0;
  bool after_rank = false;
};

/// The confidence-threshold router: fast_rec(wide), then rank_candidates when fast_rec's top score is
/// at least the threshold and think_and_rec otherwise (after rank_candidates when the rule says so).
class ThresholdRouter : public Policy {
 public:
  explicit ThresholdRouter(ThresholdRule rule) : rule_(rule) {}
  std::string name() const override { return "router_threshold"; }
  std::vector<int> decide(const std::vector<const Sequence*>& histories, const std::vector<EpisodeState>& states,
                          double beta, double budget_ms) const override;
  const ThresholdRule& rule() const { return rule_; }

 private:
  ThresholdRule rule_;
};

/// A threshold rule and its replay on users of the table (its reward: β = 0, no penalty, so NDCG@10).
struct ThresholdOutcome : SimSummary {
  ThresholdRule rule;
};

/// Replays the rule on `users` of the table.
ThresholdOutcome replay_threshold(const EpisodeTable& table, const std::vector<size_t>& users, ThresholdRule rule,
                                  int max_calls);

/// Tunes the rule on the table's users under the planner's own selection rule: the most accurate
/// (mean NDCG@10) over both arms and thresholds at the quantiles of fast_rec(wide)'s top score (slow
/// rates from 0 to 100%) whose mean cost is within max_cost_ms; ties keep the first found (lower
/// thresholds, the arm without ranking). When no rule fits, the cheapest.
ThresholdOutcome tune_threshold(const EpisodeTable& table, const std::vector<size_t>& users, double max_cost_ms,
                                int max_calls);

/// A fixed plan per request, drawn at random with the given shares (seeded by the history, so a
/// request always gets the same plan).
class RandomRouter : public Policy {
 public:
  RandomRouter(std::array<double, kNumPlans> shares, uint64_t seed);
  std::string name() const override { return "router_random"; }
  std::vector<int> decide(const std::vector<const Sequence*>& histories, const std::vector<EpisodeState>& states,
                          double beta, double budget_ms) const override;
  /// The plan shares it draws from (normalised).
  const std::array<double, kNumPlans>& shares() const { return shares_; }

 private:
  std::array<double, kNumPlans> shares_;
  uint64_t seed_;
};

}  // namespace twistar
