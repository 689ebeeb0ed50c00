// From per-item codes to unique semantic IDs, and back.
//
// A tokenizer gives each item L codes (its *code tuple*); several items may share a tuple. When any
// do, every SID gets one extra level: items in a group of size g take codes 0..g-1 there (in the
// order below) and items alone in their tuple take 0. Appending the level to all items rather than
// only to colliding ones keeps every SID the same length, so a decoder always runs the same number
// of steps and the trie needs no end-of-SID marker. Without collisions the SIDs are the L codes.
//
// Order inside a group: by descending popularity when a popularity vector is given (so the most
// common item gets the code a model sees most), ties and the no-popularity case by item index.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include "data/dataset.h"
#include "sid/prefix_trie.h"
#include "sid/sid_types.h"

namespace twistar {

/// How fully one level's codebook is used by the items.
struct LevelStats {
  /// K_l: the codes available at this level.
  int32_t codebook_size = 0;
  /// Distinct codes at least one item uses.
  int32_t used_codes = 0;
  /// used_codes / codebook_size.
  double utilisation = 0.0;
  /// exp(entropy) of the code distribution over items: the number of equally used codes it is
  /// worth; codebook_size when usage is perfectly uniform, 1 when one code takes everything.
  double perplexity = 0.0;
};

struct SidStats {
  int32_t num_items = 0;
  /// L: the tokenizer's levels.
  int32_t base_levels = 0;
  /// Length of every SID: L, or L + 1 when the collision level was needed.
  int32_t levels = 0;
  /// Distinct code tuples among the items.
  int32_t unique_tuples = 0;
  /// Items whose tuple is shared with at least one other item.
  int32_t colliding_items = 0;
  /// colliding_items / num_items: the collision rate before the extra level.
  double collision_rate = 0.0;
  /// Size of the largest group of items sharing a tuple (1 when there are no collisions).
  int32_t largest_collision_group = 0;
  /// One entry per base level.
  std::vector<LevelStats> per_level;

  nlohmann::json to_json() const;
};

class SidMap {
 public:
  static constexpr int kFormatVersion = 1;

  /// `codes` [items x L] from a tokenizer; `codebook_sizes` has L entries (K_l), or is empty to use
  /// 1 + the largest code seen per level. `popularity` is empty or one count per item. Throws
  /// InputError for codes outside [0, K_l) or mismatched sizes.
  static SidMap build(const CodeMatrix& codes, std::vector<int32_t> codebook_sizes = {},
                      const std::vector<int64_t>& popularity = {});

  int32_t num_items() const { return static_cast<int32_t>(sids_.rows()); }
  /// Length of every SID.
  int32_t levels() const { return static_cast<int32_t>(sids_.cols()); }
  int32_t base_levels() const { return stats_.base_levels; }
  /// Vocabulary size per SID level; the collision level's is the largest collision group.
  const std::vector<int32_t>& level_sizes() const { return level_sizes_; }

  /// The SID of an item index (throws for an index out of range).
  Sid sid(ItemIndex item) const;
  /// All SIDs, [items x levels()].
  const CodeMatrix& sids() const { return sids_; }
  /// The item a complete SID names, or nullopt.
  std::optional<ItemIndex> item(const Sid& sid) const { return trie_.item_at(sid); }
  /// The trie over all SIDs, for constrained decoding.
  const PrefixTrie& trie() const { return trie_; }
  const SidStats& stats() const { return stats_; }

  /// JSON: format tag and version, base levels, level sizes, then one SID per line (row = item
  /// index). Written atomically. Stats are recomputed on load.
  void save(const std::filesystem::path& path) const;
  /// Throws InputError naming the file for a malformed file, a newer version, or duplicate SIDs.
  static SidMap load(const std::filesystem::path& path);

 private:
  static SidMap from_sids(CodeMatrix sids, int32_t base_levels, std::vector<int32_t> level_sizes);

  CodeMatrix sids_;
  std::vector<int32_t> level_sizes_;
  PrefixTrie trie_;
  SidStats stats_;
};

/// Collision and codebook-usage statistics of code tuples [items x L] (exposed for reports on
/// codes that have no SidMap yet).
SidStats sid_stats(const CodeMatrix& codes, const std::vector<int32_t>& codebook_sizes);

}  // namespace twistar
