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

/// The confidence-threshold router: fast_rec(wide), then rank_candidates when fast_rec's top score is
/// at least the threshold and think_and_rec otherwise.
class ThresholdRouter : public Policy {
 public:
  explicit ThresholdRouter(double threshold) : threshold_(threshold) {}
  std::string name() const override { return "router_threshold"; }
  std::vector<int> decide(const std::vector<const Sequence*>& histories, const std::vector<EpisodeState>& states,
                          double beta, double budget_ms) const override;
  double threshold() const { return threshold_; }

 private:
  double threshold_;
};

/// Tunes the threshold on the table's users at β: the best mean reward over thresholds at the
/// quantiles of fast_rec(wide)'s top score (so slow rates from 0 to 100%).
double tune_threshold(const EpisodeTable& table, const std::vector<size_t>& users, double beta, int max_calls,
                      double invalid_penalty);

/// A fixed plan per request, drawn at random with the given shares (seeded by the history, so a
/// request always gets the same plan).
class RandomRouter : public Policy {
 public:
  RandomRouter(std::array<double, kNumPlans> shares, uint64_t seed);
  std::string name() const override { return "router_random"; }
  std::vector<int> decide(const std::vector<const Sequence*>& histories, const std::vector<EpisodeState>& states,
                          double beta, double budget_ms) const override;

 private:
  std::array<double, kNumPlans> shares_;
  uint64_t seed_;
};

}  // namespace twistar
