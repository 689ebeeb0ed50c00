// `twistar tune`: an automatic ML engineer for sequential recommenders. A closed loop of
//   execution   train a proposed configuration (tune/trial_runner.h), early-stopped on validation;
//   reflection  read its curve and its delta against the parent configuration (tune/reflector.h);
//   memory      append the trial to the dataset's log, rewrite the dataset's lessons and the
//               cross-dataset heuristics (tune/memory.h);
//   proposal    derive the next configuration from the memory (tune/proposer.h);
// then, after the last trial, the configuration with the best validation NDCG@10 is evaluated once
// on the test split and run/tune_report.{json,md} is written.
//
// Layer: `tune` comes after `eval` (it uses models, agent and eval) and before `apps`.
//
// Run directory: run/tune/trial-<n>/ (each trial's training, with its checkpoints),
// run/tune/pending.json (the proposal being trained, so a rerun trains the same one),
// run/tune_report.{json,md}. Interrupting loses nothing: finished trials are in the log and never
// rerun; the trial in progress resumes from its checkpoint.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

#include "data/dataset.h"
#include "tune/llm_advisor.h"
#include "tune/proposer.h"
#include "tune/trial_runner.h"

namespace twistar {

struct TuneOptions {
  /// Proposal method: tune (memory-driven rules) | random | tpe.
  std::string method = "tune";
  /// Trials of this run (a rerun continues up to this number).
  int trials = 12;
  /// Seed of the proposals (random and tpe sampling, rule-based exploration).
  uint64_t seed = 0;
  /// The memory directory (trial logs, lessons, heuristics).
  std::filesystem::path memory = "runs/tune-memory";
  /// The run directory (trial trainings and the report).
  std::filesystem::path run = "runs/tune";
  TpeOptions tpe;
  /// Optional chat endpoint that writes reflections and proposals (method tune only); the rules
  /// are the fallback.
  LlmOptions llm;
  /// Show progress bars.
  bool progress = true;
  /// Tests: stop (as if killed) after this many epochs of the next trial / this many trials in
  /// this call; 0 = off.
  int stop_after_epochs = 0;
  int stop_after_trials = 0;

  /// Throws InputError naming the bad field.
  void validate() const;
};

struct TuneResult {
  /// False when stopped by stop_after_* (rerun to continue).
  bool finished = false;
  /// This run's trials, in order.
  std::vector<TrialRecord> trials;
  /// The selected trial's id (best validation NDCG@10) and its test metrics (when finished).
  int best_id = 0;
  nlohmann::json test = nlohmann::json::object();
  nlohmann::json report;
};

TuneResult run_tune(const Dataset& data, TrialRunner& runner, const TrialBudget& budget,
                    const TuneOptions& options);

/// The trial (1-based position in `trials`) after which the best-so-far validation score first
/// reaches `fraction` x `target`; 0 when it never does.
int trials_to_reach(const std::vector<TrialRecord>& trials, double target, double fraction);

}  // namespace twistar
