#include "serve/item_table.h"

#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/manifest.h"
#include "data/loader.h"
#include "data/split.h"
#include "data/text_io.h"
#include "graph/popularity.h"

namespace twistar {
namespace fs = std::filesystem;

namespace {
constexpr const char* kHeader = "index\tid\ttrain_count";
}

ItemTable::ItemTable(std::vector<std::string> ids, std::vector<float> counts)
    : ids_(std::move(ids)), counts_(std::move(counts)) {
  lookup_.reserve(ids_.size());
  for (size_t i = 0; i < ids_.size(); ++i) lookup_.emplace(ids_[i], static_cast<ItemIndex>(i));
}

ItemTable ItemTable::from_dataset(const Dataset& data) {
  return ItemTable(data.item_ids, item_popularity(training_parts(data), data.num_items()));
}

ItemTable ItemTable::load(const fs::path& path) {
  LineReader reader(path.string());
  std::string line;
  if (!reader.next(line) || line != kHeader)
    reader.fail(fmt::format("expected the header '{}'", kHeader));
  std::vector<std::string> ids;
  std::vector<float> counts;
  while (reader.next(line)) {
    auto fields = split_exact(line, '\t');
    int64_t index = 0, count = 0;
    if (fields.size() != 3) reader.fail("expected 'index<TAB>id<TAB>train_count'");
    if (!parse_int64(fields[0], index) || index != static_cast<int64_t>(ids.size()))
      reader.fail(fmt::format("index: expected {}", ids.size()));
    if (fields[1].empty()) reader.fail("id: empty");
    if (!parse_int64(fields[2], count) || count < 0)
      reader.fail("train_count: expected a count >= 0");
    ids.emplace_back(fields[1]);
    counts.push_back(static_cast<float>(count));
  }
  if (ids.empty()) reader.fail("no items");
  return ItemTable(std::move(ids), std::move(counts));
}

void ItemTable::save(const fs::path& path) const {
  write_file_atomic(path, [&](std::ostream& out) {
    out << kHeader << '\n';
    for (size_t i = 0; i < ids_.size(); ++i)
      out << i << '\t' << ids_[i] << '\t' << static_cast<int64_t>(counts_[i]) << '\n';
  });
}

std::optional<ItemIndex> ItemTable::find(const std::string& raw_id) const {
  auto it = lookup_.find(raw_id);
  if (it == lookup_.end()) return std::nullopt;
  return it->second;
}

Ranking ItemTable::most_popular(const Sequence& history, const RecommendOptions& options) const {
  return top_k_scores(counts_.data(), num_items(), history, options);
}

fs::path item_table_path(const fs::path& run_dir) { return run_dir / "items.tsv"; }

ItemTable load_item_table(const fs::path& run_dir, const std::string& data_dir) {
  fs::path path = item_table_path(run_dir);
  if (fs::exists(path)) return ItemTable::load(path);
  if (data_dir.empty())
    throw_input_error(
        "{}: missing (the sidgen stage writes it); rerun `twistar train sidgen --run {}` or give "
        "--data with the dataset the run was trained on",
        path.string(), run_dir.string());
  Dataset data = load_dataset(data_dir);
  auto manifest = Manifest::load(run_dir / "sidgen");
  if (!manifest || !manifest->inputs.count("data"))
    throw_input_error("{}: no finished sidgen stage to check --data {} against",
                      (run_dir / "sidgen").string(), data_dir);
  if (manifest->inputs.at("data") != data.fingerprint())
    throw_input_error("--data {}: not the dataset {} was trained on (fingerprint {} != {})",
                      data_dir, (run_dir / "sidgen").string(), data.fingerprint(),
                      manifest->inputs.at("data"));
  return ItemTable::from_dataset(data);
}

}  // namespace twistar
