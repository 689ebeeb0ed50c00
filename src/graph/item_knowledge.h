// Item-to-item knowledge: what the training data says about strongly linked item pairs, the facts
// that explanations (text/explanations.h) are written from.
//
// Vocabulary: a *strong pair* is an unordered pair {a, b} where one item is among the other's top-k
// Swing neighbours and at least `min_co_users` users took both. For it we record
//   co_users            users whose training part holds both items;
//   a_first / b_first   of those, how many took a (resp. b) first (first occurrences compared, so
//                       a_first + b_first == co_users);
//   a_then_b / b_then_a users who took b immediately after a (resp. a after b) at least once;
//   shared_categories   length of the common prefix of the two category paths;
//   same_brand          both have a brand and it is the same (trimmed, case-insensitive).
// Pairs are oriented so that a_first >= b_first (ties: a < b).
//
// Everything is computed from training parts s[:n-2] only (data/split.h): validation and test
// targets never contribute, so a pair linked only through them gets no knowledge.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "graph/swing.h"

namespace twistar {

struct KnowledgeOptions {
  /// Swing settings; swing.top_k is how many neighbours of each item become candidate pairs.
  SwingOptions swing = default_swing();
  /// A candidate is kept when at least this many users took both items.
  int min_co_users = 2;

  /// Throws InputError naming the bad field.
  void validate() const;
  nlohmann::json to_json() const;

 private:
  static SwingOptions default_swing() {
    SwingOptions s;
    s.top_k = 10;
    return s;
  }
};

struct PairKnowledge {
  ItemIndex a = 0;
  ItemIndex b = 0;
  /// Swing similarity of the pair.
  float swing = 0.0f;
  int32_t co_users = 0;
  int32_t a_first = 0;
  int32_t b_first = 0;
  int32_t a_then_b = 0;
  int32_t b_then_a = 0;
  int32_t shared_categories = 0;
  bool same_brand = false;

  bool operator==(const PairKnowledge& o) const;
};

struct ItemKnowledge {
  /// Strong pairs sorted by (min(a, b), max(a, b)).
  std::vector<PairKnowledge> pairs;
  /// Candidate pairs from Swing before the co-user filter.
  int64_t candidates = 0;
};

/// Strong pairs of `data` from its training parts (see the header comment).
ItemKnowledge build_item_knowledge(const Dataset& data, const KnowledgeOptions& options = {});

/// Common prefix length of two category paths (names compared after trimming).
int32_t shared_category_depth(const ItemMeta& x, const ItemMeta& y);
/// True when both items have a brand and it is the same (trimmed, case-insensitive).
bool same_brand(const ItemMeta& x, const ItemMeta& y);

/// TSV with a header: a b a_id b_id swing co_users a_first b_first a_then_b b_then_a
/// shared_categories same_brand (indices are item indices, ids the raw ids). Written atomically.
void save_item_knowledge(const std::filesystem::path& path, const ItemKnowledge& knowledge,
                         const std::vector<std::string>& item_ids);
/// Reads save_item_knowledge's file; throws InputError naming file, line and field.
ItemKnowledge load_item_knowledge(const std::filesystem::path& path);

}  // namespace twistar
