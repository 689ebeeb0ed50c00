// The leave-one-out protocol of ARCHITECTURE.md. For a user sequence s of length n:
//   test:       target s[n-1], history s[:n-1]
//   validation: target s[n-2], history s[:n-2]
//   training:   targets inside s[:n-2] only (the "training part").
// Every statistic (popularity, Swing, transitions, explanations) reads training parts only.
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"

namespace twistar {

enum class Split { kValid, kTest };

Split parse_split(const std::string& name);
std::string split_name(Split split);

/// One evaluation request: the user's (truncated) history and the held-out target.
struct Example {
  int32_t user = 0;
  Sequence history;
  ItemIndex target = 0;
};

struct SplitOptions {
  /// Keep only the last `max_history` items of each history (0 = keep all).
  size_t max_history = 50;
};

/// Evaluation examples for every user long enough for the split (test: n >= 2, validation: n >= 3).
std::vector<Example> make_examples(const Dataset& data, Split split, const SplitOptions& options = {});

/// The training part s[:n-2] of every user (empty for users shorter than 3).
std::vector<Sequence> training_parts(const Dataset& data);

/// `data` with each user's last item dropped. Its validation target is the user's last training
/// item s[n-3] and its training part s[:n-3], so models trained on it (early-stopped on its
/// validation split) never read the real validation or test targets, nor s[n-3]: their candidates
/// for s[:n-3] look like the real models' candidates for unseen targets (the ranker's held-out
/// training lists). Named "<name>+heldout".
Dataset without_last_items(const Dataset& data);

/// Keeps the last `max_history` items (0 = all).
Sequence truncate_history(const Sequence& history, size_t max_history);

}  // namespace twistar
