// fast_rec(k): the fast path. The SID generator reads the history once, then trie-constrained beam
// search writes the next item's SID; the k best distinct items come back with their SID
// log-probabilities (kept in the request's `retrieved` pool). Batched requests are sorted by history
// length and encoded in chunks, so a chunk pads only to its own longest history.
#pragma once

#include <filesystem>
#include <memory>

#include "agent/tool.h"
#include "core/context.h"
#include "data/dataset.h"
#include "data/split.h"
#include "models/sid_generator.h"
#include "search/beam_search.h"
#include "sid/sid_map.h"

namespace twistar {

struct FastRecOptions {
  /// Beam width (raised to k when a call asks for more items than this).
  int64_t beam = 20;
  /// Requests encoded and searched together.
  int64_t chunk = 64;

  void validate() const;
};

class FastRec : public Tool {
 public:
  /// Throws InputError when the model was trained on other SIDs than `sids`.
  FastRec(SidGenerator model, std::shared_ptr<const SidMap> sids, FastRecOptions options = {});
  std::string name() const override { return "fast_rec"; }
  std::vector<Observation> run(std::vector<RequestState>& requests,
                               const ToolArgs& args) const override;
  size_t preferred_batch_size() const override { return 256; }
  const FastRecOptions& options() const { return options_; }
  /// The SID log-probability of given items after each history (teacher forced, the score fast_rec's
  /// beam gives an item it finds): items[i] are scored after histories[i].
  std::vector<std::vector<float>> log_probs(const std::vector<Sequence>& histories,
                                            const std::vector<std::vector<ItemIndex>>& items) const;
  /// A content hash of the model's weights.
  std::string fingerprint() const;

 private:
  // Inference does not change the module; libtorch just has no const forward.
  mutable SidGenerator model_;
  std::shared_ptr<const SidMap> sids_;
  FastRecOptions options_;
};

/// Beam-search rankings for histories (the core of fast_rec, used by training-time validation).
std::vector<Ranking> sid_generator_recommend(SidGenerator& model, const PrefixTrie& trie,
                                             const std::vector<Sequence>& histories,
                                             const BeamSearchOptions& search, bool exclude_history,
                                             int64_t chunk);

/// `users` validation examples evenly spaced over the users (0 = all), histories cut to max_history.
std::vector<Example> spaced_valid_examples(const Dataset& data, int64_t users, size_t max_history);
/// Mean NDCG@10 of rankings against the examples' targets (same order).
double mean_ndcg10(const std::vector<Ranking>& rankings, const std::vector<Example>& examples);
/// NDCG@10 of fast_rec(10) over `users` evenly spaced validation users (0 = all), history excluded:
/// the SID generator's early-stopping metric. Uses validation targets only as labels.
double fast_rec_valid_ndcg10(SidGenerator& model, const PrefixTrie& trie, const Dataset& data,
                             int64_t users, int64_t beam);

/// fast_rec from a run directory: run/sidgen (the model) and run/sid/sid_map.json. Throws
/// InputError naming whatever is missing or inconsistent.
std::shared_ptr<FastRec> load_fast_rec(const std::filesystem::path& run_dir, const Context& ctx,
                                       FastRecOptions options = {});

}  // namespace twistar
