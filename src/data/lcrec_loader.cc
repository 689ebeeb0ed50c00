// Format B (../shared/data/README.md): LC-Rec's `X.inter.json` ({"user": [item, ...]},
// chronological) and optional `X.item.json` ({"item": {title, description, brand, categories}}).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "core/json_depth.h"
#include "core/error.h"
#include "data/loader.h"
#include "data/text_io.h"

namespace twistar {
namespace fs = std::filesystem;

namespace {

// ordered_json keeps the file's key order, which is the user order when keys are not integers.
using OrderedJson = nlohmann::ordered_json;

/// Parses a whole JSON file; syntax errors name the line the parser stopped on.
OrderedJson read_json_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_input_error("{}: cannot open file", path.string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  if (auto at = json_too_deep(text)) {
    size_t line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(*at), '\n');
    throw InputError(at_line(path.string(), line, fmt::format("JSON nested deeper than {} levels", kMaxJsonDepth)));
  }
  try {
    return OrderedJson::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    size_t end = std::min(e.byte, text.size());
    size_t line = 1 + std::count(text.begin(), text.begin() + end, '\n');
    throw InputError(at_line(path.string(), line, std::string("not valid JSON: ") + e.what()));
  }
}

/// The single `*.inter.json` in `dir`.
fs::path find_inter_file(const fs::path& dir) {
  std::vector<fs::path> found;
  if (!fs::is_directory(dir)) throw_input_error("{}: not a directory", dir.string());
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 11 && name.compare(name.size() - 11, 11, ".inter.json") == 0)
      found.push_back(entry.path());
  }
  if (found.empty()) throw_input_error("{}: no *.inter.json file", dir.string());
  if (found.size() > 1) {
    std::sort(found.begin(), found.end());
    throw_input_error("{}: several *.inter.json files ({}, {}, ...); keep one per directory",
                      dir.string(), found[0].filename().string(), found[1].filename().string());
  }
  return found[0];
}

/// An item reference from a sequence: an integer or a string, as the raw id string.
std::string item_key(const OrderedJson& value, const std::string& file, const std::string& user,
                     size_t pos) {
  if (value.is_number_integer()) return std::to_string(value.get<int64_t>());
  if (value.is_string() && !value.get_ref<const std::string&>().empty())
    return value.get<std::string>();
  throw_input_error(
      "{}: user '{}', position {}: expected an item id (integer or non-empty string), got {}", file,
      user, pos, value.dump());
}

/// True if every key is a base-10 integer; then users are ordered numerically, not as text.
bool all_integer_keys(const OrderedJson& obj) {
  for (const auto& [key, value] : obj.items()) {
    int64_t v = 0;
    if (!parse_int64(key, v)) return false;
  }
  return true;
}

struct RawSequences {
  std::vector<std::string> users;
  std::vector<std::vector<std::string>> items;
};

RawSequences read_sequences(const fs::path& path) {
  const std::string file = path.string();
  const OrderedJson root = read_json_file(path);
  if (!root.is_object())
    throw_input_error("{}: expected an object {{\"user\": [item, ...]}}", file);
  std::vector<std::pair<std::string, const OrderedJson*>> users;
  for (auto it = root.begin(); it != root.end(); ++it) users.emplace_back(it.key(), &it.value());
  if (all_integer_keys(root)) {
    // Text order would put "10" before "2"; numeric order matches how LC-Rec numbered the users.
    std::stable_sort(users.begin(), users.end(), [](const auto& a, const auto& b) {
      int64_t x = 0, y = 0;
      parse_int64(a.first, x);
      parse_int64(b.first, y);
      return x < y;
    });
  }
  RawSequences out;
  for (const auto& [user, list] : users) {
    if (!list->is_array()) throw_input_error("{}: user '{}': expected a list of items", file, user);
    if (list->empty()) continue;  // a user with no interactions has nothing to train or test on
    std::vector<std::string> seq;
    seq.reserve(list->size());
    for (size_t k = 0; k < list->size(); ++k) seq.push_back(item_key((*list)[k], file, user, k));
    out.users.push_back(user);
    out.items.push_back(std::move(seq));
  }
  return out;
}

std::string text_field(const OrderedJson& obj, const char* field, const std::string& file,
                       const std::string& item) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number()) return it->dump();
  throw_input_error("{}: item '{}', field '{}': expected a string, got {}", file, item, field,
                    it->dump());
}

/// "a,b,c" (LC-Rec's form) or a JSON list of strings.
std::vector<std::string> categories_field(const OrderedJson& obj, const std::string& file,
                                          const std::string& item) {
  std::vector<std::string> out;
  auto it = obj.find("categories");
  if (it == obj.end() || it->is_null()) return out;
  if (it->is_string()) {
    for (auto part : split_exact(it->get_ref<const std::string&>(), ','))
      if (!trim(part).empty()) out.emplace_back(trim(part));
    return out;
  }
  if (it->is_array()) {
    for (const auto& c : *it) {
      if (!c.is_string())
        throw_input_error("{}: item '{}', field 'categories': expected strings, got {}", file, item,
                          c.dump());
      out.push_back(c.get<std::string>());
    }
    return out;
  }
  throw_input_error("{}: item '{}', field 'categories': expected a comma-separated string, got {}",
                    file, item, it->dump());
}

std::unordered_map<std::string, ItemMeta> read_item_meta(const fs::path& path) {
  const std::string file = path.string();
  const OrderedJson root = read_json_file(path);
  if (!root.is_object()) throw_input_error("{}: expected an object {{\"item\": {{...}}}}", file);
  std::unordered_map<std::string, ItemMeta> meta;
  meta.reserve(root.size());
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string& item = it.key();
    const OrderedJson& obj = it.value();
    if (!obj.is_object()) throw_input_error("{}: item '{}': expected an object", file, item);
    ItemMeta m;
    m.title = text_field(obj, "title", file, item);
    m.description = text_field(obj, "description", file, item);
    m.brand = text_field(obj, "brand", file, item);
    m.categories = categories_field(obj, file, item);
    meta[item] = std::move(m);
  }
  return meta;
}

/// When the items are exactly "0".."n-1" (LC-Rec's own numbering), item index = file id, so indices
/// line up with LC-Rec / TIGER artefacts; otherwise nullopt and items go by first appearance.
std::optional<Dataset> build_with_file_ids(std::string name, const RawSequences& raw,
                                           const std::unordered_map<std::string, ItemMeta>& meta) {
  std::unordered_map<std::string, ItemIndex> ids;
  for (const auto& seq : raw.items) {
    for (const auto& item : seq) {
      int64_t v = 0;
      if (!parse_int64(item, v) || v < 0 || std::to_string(v) != item) return std::nullopt;
      ids.emplace(item, static_cast<ItemIndex>(v));
    }
  }
  for (const auto& [item, v] : ids)
    if (v >= static_cast<int64_t>(ids.size())) return std::nullopt;
  Dataset d;
  d.name = std::move(name);
  d.user_ids = raw.users;
  d.item_ids.resize(ids.size());
  d.items.resize(ids.size());
  for (const auto& [item, v] : ids) {
    d.item_ids[v] = item;
    auto m = meta.find(item);
    if (m != meta.end()) d.items[v] = m->second;
  }
  for (const auto& seq : raw.items) {
    Sequence s;
    s.reserve(seq.size());
    for (const auto& item : seq) s.push_back(ids.at(item));
    d.sequences.push_back(std::move(s));
  }
  d.reindex();
  d.validate();
  return d;
}

}  // namespace

Dataset load_lcrec_dir(const std::string& dir) {
  const fs::path root(dir);
  const fs::path inter = find_inter_file(root);
  const std::string file_name = inter.filename().string();
  const std::string stem =
      file_name.substr(0, file_name.size() - std::string(".inter.json").size());
  const fs::path item_file = root / (stem + ".item.json");

  RawSequences raw = read_sequences(inter);
  std::unordered_map<std::string, ItemMeta> meta;
  if (fs::exists(item_file)) meta = read_item_meta(item_file);
  std::string name = root.filename().string();
  if (name.empty()) name = root.parent_path().filename().string();
  if (auto d = build_with_file_ids(name, raw, meta)) return std::move(*d);
  return build_dataset(std::move(name), std::move(raw.users), raw.items, meta);
}

}  // namespace twistar
