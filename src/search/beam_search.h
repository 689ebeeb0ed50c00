// Trie-constrained beam search over semantic IDs, batched and KV-cached (after CTranslate2's
// decoding): level 0 runs on the batch of B requests, then the state expands to B x beam rows; every
// level writes one mask from the prefix trie (only codes that continue a real SID stay finite),
// takes one flattened top-k over [B, beam x K_l] and reorders the decoder state with a gather. The
// model scores only the current level's codebook. All SIDs have the same length, so every
// hypothesis finishes at the last level and the result needs no length normalisation.
//
// Scores are sequence log-probabilities: the sum over levels of the model's log-softmax, either over
// the full codebook of that level with invalid codes masked afterwards (as in TIGER) or, for a model
// that `renormalize_over_valid()`, over the codes that continue a valid SID only.
#pragma once

#include <vector>

#include "data/recommender.h"
#include "nn/level_decoder.h"
#include "sid/prefix_trie.h"
#include "sid/sid_types.h"

namespace twistar {

struct BeamSearchOptions {
  /// Hypotheses kept per request at every level.
  int64_t beam = 20;
  /// Items returned per request (at most `beam`).
  int64_t k = 10;

  void validate() const;
};

/// Searches the SIDs of `trie` for each of the B requests whose start state is `state` (B rows;
/// consumed). `exclude` is empty or holds one item list per request: those items are masked at the
/// last level, so the beam ends on allowed items only. Returns per request up to k distinct items,
/// best first, with their SID log-probabilities. Throws when the trie's depth or level sizes do not
/// fit the model.
std::vector<Ranking> constrained_beam_search(LevelDecoder& model, DecoderState state,
                                             const PrefixTrie& trie, const BeamSearchOptions& options,
                                             const std::vector<Sequence>& exclude = {});

/// The brute-force reference: log P(SID of item i) for every item and request, [B, num_items],
/// by teacher-forcing every row of `sids` (row i = item i; `trie` is built from them and defines the
/// valid codes when the model renormalises over them). For tests and small catalogues.
torch::Tensor exhaustive_sid_log_probs(LevelDecoder& model, const DecoderState& state,
                                       const CodeMatrix& sids, const PrefixTrie& trie);

}  // namespace twistar
