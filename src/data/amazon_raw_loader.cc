// The raw Amazon 2014 release (McAuley et al.): `reviews_<Category>_5.json.gz` has one JSON review
// per line; `meta_<Category>.json.gz` has one Python dict literal per line (the release was written
// with repr(), so it needs parse_python_literal rather than a JSON parser).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <unordered_set>

#include "core/json_depth.h"
#include "core/error.h"
#include "data/kcore.h"
#include "data/loader.h"
#include "data/pyliteral.h"
#include "data/text_io.h"

namespace twistar {
namespace fs = std::filesystem;

namespace {

bool has_suffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct RawFiles {
  fs::path reviews;
  fs::path meta;  // empty when the directory has none
  std::string category;
};

RawFiles find_raw_files(const fs::path& dir) {
  if (!fs::is_directory(dir)) throw_input_error("{}: not a directory", dir.string());
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("reviews_", 0) == 0 &&
        (has_suffix(name, ".json.gz") || has_suffix(name, ".json")))
      found.push_back(entry.path());
  }
  if (found.empty()) throw_input_error("{}: no reviews_<Category>_5.json.gz file", dir.string());
  if (found.size() > 1)
    throw_input_error("{}: {} reviews_*.json(.gz) files; keep one category per directory",
                      dir.string(), found.size());
  RawFiles files;
  files.reviews = found[0];
  std::string cat = files.reviews.filename().string().substr(8);
  cat.resize(cat.size() - (has_suffix(cat, ".gz") ? 8 : 5));
  if (has_suffix(cat, "_5")) cat.resize(cat.size() - 2);
  files.category = cat;
  for (const char* ext : {".json.gz", ".json"}) {
    fs::path meta = dir / ("meta_" + cat + ext);
    if (files.meta.empty() && fs::exists(meta)) files.meta = meta;
  }
  return files;
}

/// One line as an object: strict JSON first (fast), then Python-literal syntax, which some Amazon
/// review dumps use as well.
nlohmann::json parse_line(const std::string& line, const LineReader& reader, bool json_first) {
  nlohmann::json obj;
  if (auto at = json_too_deep(line, kMaxJsonDepth, /*python=*/true))
    reader.fail(fmt::format("nested deeper than {} levels at byte {}", kMaxJsonDepth, *at + 1));
  if (json_first) {
    obj = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (obj.is_discarded()) obj = nullptr;
  }
  if (obj.is_null()) {
    try {
      obj = parse_python_literal(line);
    } catch (const InputError& e) {
      reader.fail(std::string("not a JSON object or Python dict: ") + e.what());
    }
  }
  if (!obj.is_object()) reader.fail("expected one JSON object (or Python dict) per line");
  return obj;
}

std::string id_field(const nlohmann::json& obj, const char* field, const LineReader& reader) {
  auto it = obj.find(field);
  if (it == obj.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
    reader.fail(fmt::format("field '{}': missing or not a non-empty string", field));
  return it->get<std::string>();
}

std::vector<Interaction> read_reviews(const fs::path& path) {
  LineReader reader(path.string());
  std::vector<Interaction> out;
  std::string line;
  while (reader.next(line)) {
    if (trim(line).empty()) continue;
    const nlohmann::json obj = parse_line(line, reader, true);
    Interaction x;
    x.user = id_field(obj, "reviewerID", reader);
    x.item = id_field(obj, "asin", reader);
    auto t = obj.find("unixReviewTime");
    if (t == obj.end() || !t->is_number_integer())
      reader.fail("field 'unixReviewTime': missing or not an integer");
    x.time = t->get<int64_t>();
    out.push_back(std::move(x));
  }
  return out;
}

}  // namespace

namespace {

/// "Sports_and_Outdoors" and "Sports & Outdoors" both become "sportsoutdoors", so the file name's
/// category can be matched against the first element of a category path.
std::string category_key(const std::string& name) {
  std::string key, word;
  auto flush = [&] {
    if (word != "and") key += word;
    word.clear();
  };
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      flush();
    }
  }
  flush();
  return key;
}

std::string text_field(const nlohmann::json& obj, const char* field, const LineReader& reader) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number()) return it->dump();
  reader.fail(fmt::format("field '{}': expected a string", field));
}

/// The first category path, without the top level when it only repeats the dataset's category.
std::vector<std::string> first_category_path(const nlohmann::json& obj, const std::string& top_key,
                                             const LineReader& reader) {
  std::vector<std::string> out;
  auto it = obj.find("categories");
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) reader.fail("field 'categories': expected a list of lists of strings");
  if (it->empty()) return out;
  const nlohmann::json& path = (*it)[0];
  if (!path.is_array()) reader.fail("field 'categories': expected a list of lists of strings");
  for (const auto& c : path) {
    if (!c.is_string()) reader.fail("field 'categories': expected a list of lists of strings");
    out.push_back(c.get<std::string>());
  }
  if (!out.empty() && category_key(out.front()) == top_key) out.erase(out.begin());
  return out;
}

/// The asin of a meta line without parsing it, or "" when the quick look is not conclusive.
std::string quick_asin(const std::string& line) {
  for (const char* key : {"'asin': '", "\"asin\": \""}) {
    const size_t at = line.find(key);
    if (at == std::string::npos) continue;
    const size_t start = at + 9;
    const size_t end = line.find(key[0], start);
    if (end == std::string::npos) return {};
    std::string asin = line.substr(start, end - start);
    return asin.find('\\') == std::string::npos ? asin : std::string();
  }
  return {};
}

/// Metadata of the items in `wanted`. The meta dump covers the whole category (hundreds of
/// thousands of items), so lines of other items are skipped before the comparatively slow literal
/// parse.
std::unordered_map<std::string, ItemMeta> read_meta(const fs::path& path,
                                                    const std::unordered_set<std::string>& wanted,
                                                    const std::string& category) {
  const std::string top_key = category_key(category);
  std::unordered_map<std::string, ItemMeta> meta;
  LineReader reader(path.string());
  std::string line;
  while (reader.next(line)) {
    if (trim(line).empty()) continue;
    const std::string quick = quick_asin(line);
    if (!quick.empty() && !wanted.count(quick)) continue;
    const nlohmann::json obj = parse_line(line, reader, false);
    const std::string asin = id_field(obj, "asin", reader);
    if (!wanted.count(asin)) continue;
    ItemMeta m;
    m.title = text_field(obj, "title", reader);
    m.brand = text_field(obj, "brand", reader);
    m.description = text_field(obj, "description", reader);
    m.categories = first_category_path(obj, top_key, reader);
    meta[asin] = std::move(m);
  }
  return meta;
}

}  // namespace

Dataset load_amazon_raw(const std::string& dir, int kcore) {
  const RawFiles files = find_raw_files(dir);
  std::vector<Interaction> interactions = read_reviews(files.reviews);
  const size_t total = interactions.size();
  // Filter first so only the surviving items' metadata is parsed.
  kcore_filter(interactions, kcore);
  if (total > 0 && interactions.empty())
    throw_input_error("{}: all {} reviews were removed by {}-core filtering; lower the k-core",
                      files.reviews.string(), total, kcore);
  std::unordered_map<std::string, ItemMeta> meta;
  if (!files.meta.empty()) {
    std::unordered_set<std::string> wanted;
    for (const auto& x : interactions) wanted.insert(x.item);
    meta = read_meta(files.meta, wanted, files.category);
  }
  return dataset_from_interactions(files.category, std::move(interactions), 0, meta);
}

}  // namespace twistar
