// What constrained beam search needs from a model that writes a fixed-length code sequence (an item's
// semantic ID) one level at a time. Rows of the state are hypotheses; beam search reorders them.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "nn/transformer.h"

namespace twistar {

/// Per-hypothesis decoding state: the decoder's KV cache plus any per-row context tensors (first
/// dimension = rows), reordered together.
struct DecoderState {
  KVCache cache;
  std::vector<torch::Tensor> context;

  int64_t rows() const { return context.empty() ? 0 : context[0].size(0); }
  /// Keeps rows `index` (a beam reorder, a batch-to-beam expansion or a batch shrink).
  void select(const torch::Tensor& index) {
    cache.select(index);
    for (auto& c : context) c = c.index_select(0, index);
  }
};

class LevelDecoder {
 public:
  virtual ~LevelDecoder() = default;
  /// Length of every code sequence.
  virtual int64_t num_levels() const = 0;
  /// Codes available at `level` (the width of that step's scores).
  virtual int64_t level_size(int64_t level) const = 0;
  /// Log-probabilities [N, level_size(level)] of the code at `level` for the N rows of `state`, given
  /// each row's code at level - 1 (`previous` [N] long; undefined at level 0). Appends to the cache.
  virtual torch::Tensor step(int64_t level, const torch::Tensor& previous, DecoderState& state) = 0;
  /// True when the model was trained with each level's softmax restricted to the codes that continue
  /// a valid SID: search then renormalises the step's scores over those codes.
  virtual bool renormalize_over_valid() const { return false; }
};

}  // namespace twistar
