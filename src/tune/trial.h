// One tuning trial as the memory records it: the configuration, the hypothesis it tested, what
// training measured, and the reflection on it. One TrialRecord is one line of trials.jsonl.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "tune/search_space.h"

namespace twistar {

/// What training one configuration measured (validation only; the test split is never read).
struct TrialOutcome {
  /// Best validation NDCG@10 (the selection metric).
  double valid = 0;
  int best_epoch = 0;
  int epochs = 0;
  /// Validation NDCG@10 per evaluated epoch, and the mean training loss per epoch (NaN = diverged).
  std::vector<double> curve;
  std::vector<double> losses;
  double seconds = 0;
  int64_t parameters = 0;
  /// patience | budget | epochs: what ended training.
  std::string stop;
  /// Continued from a checkpoint left by an interrupted run.
  bool resumed = false;
  /// False when training was interrupted (then nothing is recorded).
  bool finished = true;
};

/// The one idea a trial tests.
struct Hypothesis {
  /// baseline | transfer | diagnosis | momentum | lesson | heuristic | coverage | explore | random |
  /// tpe | llm.
  std::string source;
  std::string text;
  /// The trial (id) whose configuration was changed; 0 = none.
  int parent = 0;
  /// The axes changed from the parent.
  std::vector<std::string> axes;
};

struct AxisChange {
  std::string axis;
  double from = 0, to = 0;
  /// +1 up, -1 down.
  int direction = 0;
};

/// The reflector's reading of a finished trial against its parent.
struct Reflection {
  /// converged | overfitting | underfitting | divergence.
  std::string diagnosis;
  /// helped | hurt | neutral | baseline (no parent).
  std::string verdict;
  std::vector<AxisChange> changes;
  /// Validation NDCG@10 minus the parent's, absolute and relative.
  double delta = 0, rel_delta = 0;
  /// One short heuristic rule in words, with its evidence.
  std::string rule;
  nlohmann::json evidence = nlohmann::json::object();
  /// Who wrote it: rules | llm.
  std::string author = "rules";
};

struct TrialRecord {
  /// Unique within the dataset's trial log (1-based, in order of finishing).
  int id = 0;
  /// The run directory that ran it and the trial's number within that run (1-based).
  std::string run;
  int index = 0;
  std::string method;
  uint64_t seed = 0;
  std::string model;
  std::string dataset;
  /// The trial budget it ran under (epochs, patience, minutes).
  nlohmann::json budget = nlohmann::json::object();
  ParamSet params;
  Hypothesis hypothesis;
  TrialOutcome outcome;
  Reflection reflection;
  std::string finished_at;

  nlohmann::json to_json() const;
  /// Throws InputError naming `where` and the missing or mistyped field.
  static TrialRecord from_json(const nlohmann::json& j, const std::string& where);
};

}  // namespace twistar
