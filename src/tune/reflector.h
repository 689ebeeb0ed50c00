// The built-in rule-based reflector: reads a finished trial's learning curve and its delta against
// the parent configuration, and writes one short heuristic rule with its evidence.
//
// Diagnoses (from the curve and the training loss):
//   divergence    a training loss is NaN/inf, or the last loss exceeds the first by half again;
//   overfitting   validation peaks before the last evaluation and falls >= 2% below the peak while
//                 the training loss keeps dropping;
//   underfitting  validation is best at the last evaluation and training stopped on the budget or
//                 the epoch limit (it was still improving);
//   converged     otherwise (early stopping after a plateau).
// Verdict against the parent: helped / hurt when the relative change in validation NDCG@10 is
// beyond +-kNeutralBand, neutral inside it.
#pragma once

#include "tune/trial.h"

namespace twistar {

/// Relative validation changes within +-1% count as noise.
constexpr double kNeutralBand = 0.01;

/// The diagnosis of one trial's curve (see above).
std::string diagnose(const TrialOutcome& outcome);

/// Fills `trial.reflection` from its outcome and `parent` (nullptr for a trial with no parent).
Reflection reflect(const TrialRecord& trial, const TrialRecord* parent);

}  // namespace twistar
