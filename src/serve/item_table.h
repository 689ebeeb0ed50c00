// What serving needs to know about items besides the models: the raw id of every item index (to
// read requests and write answers) and each item's interaction count over the training parts (the
// popularity fallback for an empty history). The `sidgen` stage writes it as run/items.tsv, so a
// run directory alone is enough to serve:
//
//   index<TAB>id<TAB>train_count      (header line, then one line per item index, 0-based, in
//   order)
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/dataset.h"
#include "data/recommender.h"

namespace twistar {

class ItemTable {
 public:
  /// Raw ids from the dataset, counts from its training parts only (data/split.h).
  static ItemTable from_dataset(const Dataset& data);
  /// Reads run/items.tsv; throws InputError naming the file and line of a malformed row.
  static ItemTable load(const std::filesystem::path& path);
  /// Writes the table atomically.
  void save(const std::filesystem::path& path) const;

  int32_t num_items() const { return static_cast<int32_t>(ids_.size()); }
  const std::string& id(ItemIndex index) const { return ids_.at(static_cast<size_t>(index)); }
  /// Item index of a raw id, or nullopt.
  std::optional<ItemIndex> find(const std::string& raw_id) const;
  /// The k most frequent training items, ties to the lower index; scores are the counts.
  Ranking most_popular(const Sequence& history, const RecommendOptions& options) const;

 private:
  ItemTable(std::vector<std::string> ids, std::vector<float> counts);

  std::vector<std::string> ids_;
  std::vector<float> counts_;
  std::unordered_map<std::string, ItemIndex> lookup_;
};

/// The path of the table inside a run directory.
std::filesystem::path item_table_path(const std::filesystem::path& run_dir);

/// run/items.tsv when present. Otherwise, for run directories made before the sidgen stage wrote
/// it, the table is rebuilt from `data_dir` after checking that the dataset is the one run/sidgen
/// was trained on (its manifest's data fingerprint). Throws InputError saying which is missing.
ItemTable load_item_table(const std::filesystem::path& run_dir, const std::string& data_dir = "");

}  // namespace twistar
