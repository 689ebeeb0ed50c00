// Training SASRec: full-softmax cross-entropy at every position of the training parts, early stopping
// on validation NDCG@10, a checkpoint after every epoch and resume from it.
//
// Stage directory layout: the training loop's checkpoints (models/training_loop.h), and when finished
// model.pt + manifest.json.
#pragma once

#include <filesystem>
#include <functional>

#include "core/context.h"
#include "data/dataset.h"
#include "models/sasrec.h"
#include "models/training_loop.h"

namespace twistar {

struct SasrecTrainResult {
  Sasrec model{nullptr};
  double best_valid_ndcg10 = 0.0;
  int best_epoch = 0;
  int epochs_run = 0;
  double train_seconds = 0.0;
  bool resumed = false;
  /// False when stopped early by `stop_after_epochs`.
  bool finished = false;
  /// Validation NDCG@10 per evaluated epoch (the learning curve).
  std::vector<double> curve;
  /// The training loop's full result (with the training loss per epoch).
  LoopResult loop;
};

/// Trains on `data` (training parts only; validation targets only for early stopping) into `dir`.
/// A compatible checkpoint in `dir` is resumed.
SasrecTrainResult train_sasrec(const Dataset& data, const SasrecOptions& options, const Context& ctx,
                               const std::filesystem::path& dir, const TrainControl& control = {});

/// The run's sequential backbone, which SID embeddings and the ranker's features read: run/bsarec
/// when it holds a finished model, else run/sasrec.
std::filesystem::path backbone_dir(const std::filesystem::path& run_dir);

/// Loads the finished model of a stage directory (sasrec or bsarec).
Sasrec load_sasrec(const std::filesystem::path& dir, const Context& ctx);

/// Validation NDCG@10 of a model over the validation split (history items excluded).
double sasrec_valid_ndcg10(Sasrec& model, const Dataset& data, const Context& ctx);

}  // namespace twistar
