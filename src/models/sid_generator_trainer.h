// Training the SID generator: teacher forcing on every target of every training part (the SID of
// item t+1 after items <= t), early stopping on a validation metric, a checkpoint after every epoch
// and resume from it (models/training_loop.h).
//
// Stage directory layout: the training loop's checkpoints, and when finished model.pt +
// manifest.json (config, seed, num_items, levels, level_sizes, metrics).
#pragma once

#include <filesystem>
#include <functional>

#include "core/context.h"
#include "data/dataset.h"
#include "models/sid_generator.h"
#include "models/training_loop.h"

namespace twistar {

struct SidGeneratorTrainResult {
  SidGenerator model{nullptr};
  LoopResult loop;
};

/// Scores the current weights on validation (higher is better); the model is in eval mode and
/// gradients are off when it is called. The search layer provides the beam-search NDCG@10.
using SidGeneratorValidator = std::function<double(SidGenerator&)>;

/// Trains on `data` (training parts only) with item SIDs `sids` [num_items x L] into `dir`.
/// A compatible checkpoint in `dir` is resumed. Throws InputError when the SIDs do not cover the
/// dataset's items or no user has a training part of 2+ items.
SidGeneratorTrainResult train_sid_generator(const Dataset& data, const CodeMatrix& sids,
                                            const std::vector<int32_t>& level_sizes,
                                            const SidGeneratorOptions& options, const Context& ctx,
                                            const std::filesystem::path& dir,
                                            const SidGeneratorValidator& validate,
                                            const TrainControl& control = {});

/// Loads the finished model of a stage directory (eval mode, on ctx's device) for the SIDs it was
/// trained on. Throws InputError when `sids` are not those SIDs.
SidGenerator load_sid_generator(const std::filesystem::path& dir, const CodeMatrix& sids,
                                const std::vector<int32_t>& level_sizes, const Context& ctx);

}  // namespace twistar
