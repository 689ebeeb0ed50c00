// Tree-structured Parzen Estimator (Bergstra et al., 2011) over a SearchSpace, and random search.
//
// TPE splits the finished trials by score into the best ceil(gamma * n) ("good") and the rest
// ("bad"), fits one density per axis to each group (l for good, g for bad), draws candidates from
// l and returns the one with the largest l(x) / g(x) (the expected improvement is monotone in it).
// Per axis: choices get smoothed frequencies; uniform axes a Parzen mixture of truncated
// Gaussians, one per observation plus a wide prior component; log axes the same in log space.
// Axes are modelled independently (the "tree" has no conditional branches here).
#pragma once

#include <random>
#include <vector>

#include "tune/search_space.h"

namespace twistar {

struct TpeOptions {
  /// Share of the trials that count as good.
  double gamma = 0.25;
  /// Candidates drawn from l per proposal.
  int candidates = 24;
  /// Trials before TPE takes over from random sampling.
  int startup = 4;
  /// Weight of the prior component of each density (in observations).
  double prior_weight = 1.0;

  /// Throws InputError naming the bad field.
  void validate() const;
};

struct ScoredParams {
  ParamSet params;
  /// Higher is better.
  double score = 0;
};

/// The next configuration after `history`: random while history has fewer than `startup` trials.
ParamSet tpe_propose(const SearchSpace& space, const std::vector<ScoredParams>& history,
                     const TpeOptions& options, std::mt19937_64& rng);

/// log l(x) - log g(x) of a configuration under densities fitted to `history` (exposed for tests).
double tpe_log_ratio(const SearchSpace& space, const std::vector<ScoredParams>& history,
                     const TpeOptions& options, const ParamSet& x);

}  // namespace twistar
