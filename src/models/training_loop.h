// The epoch loop every trained model shares: early stopping on a validation metric (higher is
// better), learning-rate decay on plateaus, a wall-time budget, a checkpoint after every epoch and
// resume from it.
//
// Stage directory layout: checkpoint-e<N>.{model,optim}.pt + state.json (the last finished epoch and
// the identity it belongs to), best.pt (best weights so far). The caller writes model.pt and the
// manifest once the loop reports `finished`.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/context.h"
#include "data/batching.h"

namespace twistar {

/// How a model is trained: AdamW, batches, and the epoch loop's stopping rules. Embedded in each
/// model's options; its JSON fields sit flat beside the model's own.
struct TrainOptions {
  /// AdamW learning rate (the starting one: it decays on plateaus).
  double lr = 3e-3;
  /// AdamW weight decay.
  double weight_decay = 0.0;
  /// Sequences per training batch.
  int64_t batch_size = 128;
  /// Maximum epochs.
  int epochs = 200;
  /// Stop after this many evaluations without a better validation metric.
  int patience = 6;
  /// Multiply the learning rate by `lr_decay` after every `lr_patience` evaluations without
  /// improvement (1 = constant learning rate).
  double lr_decay = 0.5;
  int lr_patience = 2;
  /// Stop once training has used this many minutes (0 = no limit); the best epoch is kept.
  double max_minutes = 0;
  /// Validate every this many epochs (and after the last).
  int eval_every = 1;

  /// Throws InputError naming the bad field.
  void validate() const;
  /// Adds the fields to `j` (flat).
  void add_to(nlohmann::json& j) const;
  /// Reads the fields present in `j`, keeping the others.
  void read(const nlohmann::json& j);
};

struct TrainControl {
  /// Show progress bars.
  bool progress = true;
  /// Stop (as if killed) after this many epochs in this call; 0 = run to the end. For resume tests.
  int stop_after_epochs = 0;
};

struct LoopResult {
  double best = 0.0;
  int best_epoch = 0;
  int epochs_run = 0;
  /// Training wall time over all calls (resumed runs included).
  double seconds = 0.0;
  bool resumed = false;
  /// False when stopped early by `stop_after_epochs`.
  bool finished = false;
  /// The validation metric per evaluated epoch (the learning curve).
  std::vector<double> curve;
  /// The mean training loss of every epoch (NaN when training diverged).
  std::vector<double> losses;
};

struct LoopCallbacks {
  /// Trains one epoch (1-based) and returns its mean loss. Must seed its own randomness from the
  /// epoch number so that "k epochs, resume, k more" equals "2k epochs".
  std::function<double(int epoch)> train_epoch;
  /// The validation metric of the current weights (higher is better).
  std::function<double()> validate;
};

/// Runs the loop in `dir` for `model` and `optimizer` (an AdamW whose learning rate the loop sets;
/// make_adamw builds it from the options).
/// `identity` (config, seed, data sizes) decides whether a checkpoint in `dir` may be resumed.
/// `name` prefixes log lines. On return the model holds the best weights.
LoopResult run_training_loop(const std::string& name, const std::filesystem::path& dir,
                             const std::shared_ptr<torch::nn::Module>& model,
                             torch::optim::AdamW& optimizer, const nlohmann::json& identity,
                             const TrainOptions& options, const LoopCallbacks& callbacks,
                             const TrainControl& control);

/// A content hash of a module's parameters and buffers: caches built from a model's outputs are
/// rebuilt when the model changes.
std::string module_fingerprint(const torch::nn::Module& module);

torch::optim::AdamW make_adamw(torch::nn::Module& model, const TrainOptions& options);

/// Writes a finished stage: model.pt (a copy of best.pt) and the manifest with `config` and the
/// loop's metrics (valid metric under `metric_name`, best epoch, epochs, curve) and wall time.
void finish_training_stage(const std::filesystem::path& dir, const std::string& stage,
                           const nlohmann::json& config, const std::string& metric_name,
                           const LoopResult& result);

/// Right-padded [B, T] tensor of each history's last `max_len` items (item + `offset`, `pad` after a
/// history ends) and the lengths [B] (an empty history gets length 1 and one padding token).
void pack_last_items(const std::vector<Sequence>& histories, int64_t max_len, int64_t offset,
                     int64_t pad, torch::Tensor& items, torch::Tensor& lengths);

/// Computes a batch's loss from right-padded inputs and targets [B, T] (see train_next_item_epoch).
using NextItemLoss = std::function<torch::Tensor(const torch::Tensor& inputs, const torch::Tensor& targets)>;

/// The loss of one batch (indices into the caller's examples).
using EpochBatchLoss = std::function<torch::Tensor(const std::vector<size_t>& batch)>;

/// One pass over `batches`: an optimiser step on each batch's loss; returns the mean loss. `label`
/// names the progress bar.
double step_batches(const std::string& label, torch::optim::Optimizer& optimizer,
                    const std::vector<std::vector<size_t>>& batches, bool progress, const EpochBatchLoss& loss);

/// One epoch of next-item training over `seqs` in length-bucketed batches, seeded from ctx.seed and
/// the epoch number. Tensors hold item + `offset`, `pad` where a sequence has ended; they are moved
/// to ctx's device. Returns the mean batch loss. `name` labels the progress bar.
double train_next_item_epoch(const std::string& name, torch::nn::Module& model,
                             torch::optim::Optimizer& optimizer,
                             const std::vector<NextItemSequence>& seqs, int64_t batch_size,
                             int64_t offset, int64_t pad, const Context& ctx, int epoch,
                             bool progress, const NextItemLoss& loss);

}  // namespace twistar
