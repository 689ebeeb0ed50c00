// Format A (../shared/data/README.md): sequences.txt with 1-based item indices, optional id maps and
// item_meta.jsonl. Item index i (0-based) is the file's item id i+1.
#include <nlohmann/json.hpp>

#include <filesystem>

#include "core/json_depth.h"
#include "core/error.h"
#include "data/loader.h"
#include "data/text_io.h"

namespace twistar {
namespace fs = std::filesystem;

namespace {

/// Reads `idx<TAB>raw id` lines into a map.
std::unordered_map<int64_t, std::string> read_id_map(const fs::path& path) {
  std::unordered_map<int64_t, std::string> out;
  if (!fs::exists(path)) return out;
  LineReader reader(path.string());
  std::string line;
  while (reader.next(line)) {
    if (trim(line).empty()) continue;
    auto fields = split_exact(line, '\t');
    int64_t idx = 0;
    if (fields.size() < 2) reader.fail("expected 'idx<TAB>raw id'");
    // A header row ("item_idx<TAB>asin") is allowed on the first line.
    if (reader.line_number() == 1 && !parse_int64(trim(fields[0]), idx)) continue;
    if (!parse_int64(trim(fields[0]), idx) || idx < 1)
      reader.fail(fmt::format("idx '{}' is not a positive integer", fields[0]));
    if (!out.emplace(idx, std::string(trim(fields[1]))).second)
      reader.fail(fmt::format("idx {} appears twice", idx));
  }
  return out;
}

std::string json_string(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

void read_item_meta(const fs::path& path, std::vector<ItemMeta>& items) {
  if (!fs::exists(path)) return;
  LineReader reader(path.string());
  std::string line;
  while (reader.next(line)) {
    if (trim(line).empty()) continue;
    nlohmann::json obj;
    if (auto at = json_too_deep(line))
      reader.fail(fmt::format("JSON nested deeper than {} levels at byte {}", kMaxJsonDepth, *at + 1));
    try {
      obj = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      reader.fail(std::string("not valid JSON: ") + e.what());
    }
    if (!obj.is_object()) reader.fail("expected a JSON object");
    auto idx_it = obj.find("item_idx");
    if (idx_it == obj.end() || !idx_it->is_number_integer())
      reader.fail("field 'item_idx': missing or not an integer");
    int64_t idx = idx_it->get<int64_t>();
    if (idx < 1 || idx > static_cast<int64_t>(items.size()))
      reader.fail(fmt::format("field 'item_idx': {} is outside 1..{}", idx, items.size()));
    ItemMeta& m = items[idx - 1];
    m.title = json_string(obj, "title");
    m.brand = json_string(obj, "brand");
    m.description = json_string(obj, "description");
    m.short_text = json_string(obj, "short_text");
    auto cats = obj.find("categories");
    if (cats != obj.end() && !cats->is_null()) {
      if (!cats->is_array()) reader.fail("field 'categories': expected a list of strings");
      for (const auto& c : *cats) {
        if (!c.is_string()) reader.fail("field 'categories': expected a list of strings");
        m.categories.push_back(c.get<std::string>());
      }
    }
  }
}

}  // namespace

Dataset load_sequences_dir(const std::string& dir) {
  fs::path root(dir);
  auto item_map = read_id_map(root / "item_map.tsv");
  auto user_map = read_id_map(root / "user_map.tsv");

  Dataset d;
  d.name = root.filename().string();
  if (d.name.empty()) d.name = root.parent_path().filename().string();
  LineReader reader((root / "sequences.txt").string());
  std::string line;
  int64_t max_item = 0;
  while (reader.next(line)) {
    auto fields = split_ws(line);
    if (fields.empty()) continue;
    int64_t user = 0;
    if (!parse_int64(fields[0], user))
      reader.fail(fmt::format("user id '{}' is not an integer", fields[0]));
    if (fields.size() < 2) reader.fail(fmt::format("user {} has no items", user));
    Sequence seq;
    seq.reserve(fields.size() - 1);
    for (size_t k = 1; k < fields.size(); ++k) {
      int64_t item = 0;
      if (!parse_int64(fields[k], item))
        reader.fail(fmt::format("item id '{}' (field {}) is not an integer", fields[k], k + 1));
      if (item < 1) reader.fail(fmt::format("item id {} (field {}) must be >= 1", item, k + 1));
      if (item > 100000000) reader.fail(fmt::format("item id {} (field {}) is implausibly large", item, k + 1));
      max_item = std::max(max_item, item);
      seq.push_back(static_cast<ItemIndex>(item - 1));
    }
    auto mapped = user_map.find(user);
    d.user_ids.push_back(mapped == user_map.end() ? std::to_string(user) : mapped->second);
    d.sequences.push_back(std::move(seq));
  }
  int64_t num_items = max_item;
  for (const auto& [idx, raw] : item_map) num_items = std::max(num_items, idx);
  d.item_ids.resize(num_items);
  for (int64_t i = 0; i < num_items; ++i) {
    auto it = item_map.find(i + 1);
    d.item_ids[i] = it == item_map.end() ? std::to_string(i + 1) : it->second;
  }
  d.items.resize(num_items);
  read_item_meta(root / "item_meta.jsonl", d.items);
  d.reindex();
  d.validate();
  return d;
}

}  // namespace twistar
