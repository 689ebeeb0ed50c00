// Execution: trains one configuration of a model with the existing trainers, early-stopped on
// validation NDCG@10 under a per-trial budget, and evaluates a chosen trial on the test split.
//
// Two runners: `sasrec` (models/sasrec_trainer.h) and `fast_rec` (the SID generator of
// models/sid_generator_trainer.h, scored by fast_rec's beam search; it needs the SIDs of
// run/sid, made by `twistar sid`). Each trial trains in its own directory, so an interrupted
// trial resumes from the trainer's checkpoint there.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <string>

#include "core/context.h"
#include "data/dataset.h"
#include "tune/search_space.h"
#include "tune/trial.h"

namespace twistar {

/// The budget every trial of a tuning run gets.
struct TrialBudget {
  /// Training minutes per trial (0 = no limit).
  double minutes = 5;
  /// Maximum epochs per trial.
  int epochs = 50;
  /// Early stopping: validations without improvement.
  int patience = 3;

  void validate() const;
  nlohmann::json to_json() const;
};

class TrialRunner {
 public:
  virtual ~TrialRunner() = default;
  virtual const SearchSpace& space() const = 0;
  /// Trains `params` in `dir` (resuming a checkpoint there). `stop_after_epochs` > 0 stops as if
  /// killed after that many epochs (for tests); the outcome then has finished = false.
  virtual TrialOutcome train(const ParamSet& params, const std::filesystem::path& dir,
                             int stop_after_epochs) = 0;
  /// Test-split metrics (recall@k, ndcg@k, ...) of the finished trial in `dir`.
  virtual nlohmann::json test(const std::filesystem::path& dir) = 0;
};

/// A runner for `model` (sasrec | fast_rec) on `data`. fast_rec reads the SIDs of run_dir/sid and
/// throws InputError (saying to run `twistar sid` first) when they are missing.
std::unique_ptr<TrialRunner> make_trial_runner(const std::string& model, const Dataset& data,
                                               const Context& ctx, const std::filesystem::path& run_dir,
                                               const TrialBudget& budget, bool progress);

}  // namespace twistar
