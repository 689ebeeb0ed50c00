// The one in-memory form of every dataset, whatever file format it came from.
//
// Vocabulary: an *item index* is a dense 0-based id (0..num_items-1) used by every model; the *raw id*
// is what the source files call the item (an ASIN, a business id, a 1-based index). Sequences are
// chronological lists of item indices, one per user.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace twistar {

using ItemIndex = int32_t;
using Sequence = std::vector<ItemIndex>;

/// Text and attributes of one item; every field may be empty.
struct ItemMeta {
  std::string title;
  std::string brand;
  std::string description;
  /// A short phrase describing the item (amazon2014's `short_text`).
  std::string short_text;
  /// Most general first ("Makeup", "Nails", "Nail Polish").
  std::vector<std::string> categories;

  bool empty() const;
  /// All text fields joined into one line, for embeddings and prompts.
  std::string text() const;
};

class Dataset {
 public:
  std::string name;
  /// Raw id of each item index.
  std::vector<std::string> item_ids;
  /// Raw id of each user (same order as `sequences`).
  std::vector<std::string> user_ids;
  /// One chronological sequence per user.
  std::vector<Sequence> sequences;
  /// Metadata per item index (same size as `item_ids`).
  std::vector<ItemMeta> items;

  int32_t num_items() const { return static_cast<int32_t>(item_ids.size()); }
  int32_t num_users() const { return static_cast<int32_t>(sequences.size()); }
  size_t num_interactions() const;

  /// Item index of a raw id, or nullopt.
  std::optional<ItemIndex> find_item(const std::string& raw_id) const;

  /// Checks internal consistency (sizes match, indices in range); throws Error naming the problem.
  void validate() const;

  /// Rebuilds the raw-id lookup; call after changing `item_ids` by hand.
  void reindex();

  /// A content hash of the sequences and item ids: stages trained on other data are not reused.
  std::string fingerprint() const;

  /// Summary numbers (users, items, interactions, avg/min/max length).
  std::string summary() const;

 private:
  std::unordered_map<std::string, ItemIndex> item_lookup_;
};

/// Builds a Dataset from per-user chronological raw-id sequences. Item indices are assigned in order
/// of first appearance unless `item_order` is given (then that order, and unknown items are an error).
/// `meta` maps raw item id -> metadata and may be partial.
Dataset build_dataset(std::string name, std::vector<std::string> user_ids,
                      const std::vector<std::vector<std::string>>& raw_sequences,
                      const std::unordered_map<std::string, ItemMeta>& meta = {});

}  // namespace twistar
