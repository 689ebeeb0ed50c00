// The tuner's memory, in three levels under one directory:
//
//   datasets/<key>/trials.jsonl      (a) the trial log: one TrialRecord per finished trial,
//                                        append-only (every append rewrites the file atomically)
//   datasets/<key>/lessons.{md,json} (b) what the trials taught about this dataset: per axis and
//                                        direction the observed effects with their evidence,
//                                        the best configuration, the diagnoses
//   heuristics.{md,json}             (c) rules that transfer: per model, axis, direction and starting
//                                        value, on how many datasets the change helped (support) or
//                                        hurt (against)
//
// <key> is the dataset name plus the first 8 hex digits of its fingerprint. Lessons and heuristics
// are derived data: recomputed from the logs after every trial and written atomically; the logs
// are the source of truth.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "tune/trial.h"

namespace twistar {

/// The observed effect of moving an axis one way from one value (the effect of a step depends on
/// where it starts: raising the width from 64 may help where raising it from 256 hurts).
struct AxisLesson {
  std::string model, axis;
  /// +1 up, -1 down.
  int direction = 0;
  /// The value the change started from.
  double from = 0;
  int helped = 0, hurt = 0, neutral = 0;
  double mean_rel_delta = 0;
  /// {trial, parent, from, to, rel_delta} per observation.
  nlohmann::json evidence = nlohmann::json::array();

  int observations() const { return helped + hurt + neutral; }
  /// helped | hurt | neutral: the sign of the mean effect beyond the neutral band.
  std::string verdict() const;
};

struct Heuristic {
  std::string model, axis;
  int direction = 0;
  double from = 0;
  /// Datasets where the change helped / hurt on average.
  int support = 0, against = 0;
  std::vector<std::string> datasets;
  double mean_rel_delta = 0;
  std::string rule;
};

/// A string safe as a directory name: the dataset name and its fingerprint's first 8 digits.
std::string dataset_key(const std::string& name, const std::string& fingerprint);

class TuneMemory {
 public:
  TuneMemory(std::filesystem::path root, std::string dataset_key);

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path dataset_dir() const;
  const std::string& key() const { return key_; }

  /// The dataset's trial log (empty when there is none). Throws InputError naming the file and
  /// line of a malformed record.
  std::vector<TrialRecord> load_trials() const;
  /// Appends one record (atomically: the old log plus the new line replace the file).
  void append_trial(const TrialRecord& record) const;

  /// Recomputes and writes lessons.{json,md} of this dataset from `trials`.
  void write_lessons(const std::vector<TrialRecord>& trials) const;
  /// Recomputes heuristics.{json,md} from every dataset's lessons.json.
  void write_heuristics() const;
  /// heuristics.json (empty when absent). Throws InputError naming the file and field.
  std::vector<Heuristic> load_heuristics() const;

 private:
  std::filesystem::path root_;
  std::string key_;
};

/// The per-axis lessons of some trials (one entry per model, axis, direction and starting value
/// observed; only trials that changed one axis or a pair count, a pair's effect attributed to both).
std::vector<AxisLesson> axis_lessons(const std::vector<TrialRecord>& trials);

}  // namespace twistar
