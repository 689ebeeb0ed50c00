// Training batches for next-item models: every training part becomes one sequence whose target at
// position t is the item after t, and batches group sequences of similar length so that padding
// stays small (the mean Amazon history is ~9 items, not the 50 a batch would pad to otherwise).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "data/dataset.h"

namespace twistar {

struct NextItemSequence {
  /// inputs[t] is followed by targets[t] (= inputs[t + 1] for t + 1 < size).
  Sequence inputs, targets;
};

/// One sequence per training part of 2+ items, keeping its last `max_len` transitions. Training
/// parts only: validation and test targets never appear.
std::vector<NextItemSequence> next_item_sequences(const Dataset& data, size_t max_len);

/// Shuffled batches of indices into `seqs`: shuffle, sort blocks of 50 batches by length, cut, and
/// shuffle the batches. Deterministic for a given rng state.
std::vector<std::vector<size_t>> length_bucketed_batches(const std::vector<NextItemSequence>& seqs,
                                                         size_t batch_size, std::mt19937_64& rng);
/// The same over any items of the given lengths.
std::vector<std::vector<size_t>> length_bucketed_batches(const std::vector<size_t>& lengths,
                                                         size_t batch_size, std::mt19937_64& rng);

}  // namespace twistar
