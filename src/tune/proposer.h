// Where the next trial's configuration comes from.
//
// `tune` (the rule-based engineer) tests one hypothesis per trial: it changes one axis (or a
// related pair) of the best configuration so far, in the direction the memory suggests, in this
// order of preference:
//   0. (tuner.cc) the first trial of a new run on a dataset the memory already knows: the best
//      remembered configuration, retrained in this run;
//   1. first trial on a dataset: the defaults, or, when heuristics from other datasets exist,
//      the defaults with every transferable heuristic learnt from a default value applied
//      (transfer);
//   2. diagnosis of the best trial: overfitting -> more dropout / weight decay / a smaller model;
//      underfitting -> a larger learning rate / less dropout / a larger model, or, when the time
//      budget stopped it, a larger learning rate / fewer blocks / shorter histories (more epochs
//      fit); divergence of the latest trial -> a smaller learning rate;
//   3. momentum: the change that produced the best trial, once more in the same direction;
//   4. lessons of this dataset that helped, then heuristics from other datasets (each only where
//      it was learnt: from the best configuration's current value of that axis);
//   5. coverage: an axis never changed on this dataset (first, when neither of the last two
//      trials tried a new axis);
//   6. any remaining single step that is not known to hurt, then related pairs, then the rest;
//   7. a random two-axis perturbation of the best (when every neighbour has been tried).
// A configuration that was already tried is never proposed again, and a change that hurt from the
// best configuration's value of that axis is not repeated while anything else is left.
// `random` samples the space uniformly; `tpe` runs a TPE over the trials so far (tune/tpe.h). All
// methods start from the defaults, so their curves share the first point.
#pragma once

#include <random>
#include <vector>

#include "tune/memory.h"
#include "tune/tpe.h"

namespace twistar {

struct Proposal {
  ParamSet params;
  Hypothesis hypothesis;
};

/// Everything a proposer may read.
struct ProposalContext {
  const SearchSpace* space = nullptr;
  /// The finished trials to build on, in log order: for `tune` this dataset's trials of this model
  /// from every run in the memory, for random and tpe this run's.
  std::vector<TrialRecord> trials;
  /// Heuristics learnt on other datasets (the current one's own entries excluded).
  std::vector<Heuristic> heuristics;
};

Proposal propose_by_rules(const ProposalContext& ctx, std::mt19937_64& rng);
Proposal propose_random(const ProposalContext& ctx, std::mt19937_64& rng);
Proposal propose_tpe(const ProposalContext& ctx, const TpeOptions& options, std::mt19937_64& rng);

/// Heuristics that some other dataset supports for `model` (support > against), strongest first.
std::vector<Heuristic> transferable(const std::vector<Heuristic>& heuristics, const std::string& model,
                                    const std::string& dataset_key);

}  // namespace twistar
