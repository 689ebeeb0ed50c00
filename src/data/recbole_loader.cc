// RecBole atomic files: a tab-separated `.inter` whose header types each column (`user_id:token`),
// and an optional `.item` with the same header style. Columns are found by field name, so extra
// columns (rating, review text) are ignored. RecBole data is published already filtered: no k-core.
#include <filesystem>
#include <optional>

#include "core/error.h"
#include "data/kcore.h"
#include "data/loader.h"
#include "data/text_io.h"
#include "data/time_key.h"

namespace twistar {
namespace fs = std::filesystem;

namespace {

bool has_suffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Field names of a header line, without their `:type` suffixes.
std::vector<std::string> header_fields(LineReader& reader) {
  std::string line;
  if (!reader.next(line)) reader.fail("empty file; expected a header like 'user_id:token\\t...'");
  std::vector<std::string> names;
  for (auto field : split_exact(line, '\t')) {
    field = trim(field);
    names.emplace_back(field.substr(0, field.find(':')));
  }
  return names;
}

std::optional<size_t> column(const std::vector<std::string>& names,
                             std::initializer_list<const char*> wanted) {
  for (const char* w : wanted)
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == w) return i;
  return std::nullopt;
}

size_t required_column(const std::vector<std::string>& names, const char* wanted,
                       const LineReader& reader) {
  auto c = column(names, {wanted});
  if (!c) reader.fail(fmt::format("header: no '{}' column", wanted));
  return *c;
}

/// The value of column `c` in a data row; a missing or empty value is an error naming the field.
std::string_view cell(const std::vector<std::string_view>& fields, size_t c, const char* name,
                      const LineReader& reader) {
  if (c >= fields.size())
    reader.fail(fmt::format("field '{}': missing (the line has {} fields)", name, fields.size()));
  auto v = trim(fields[c]);
  if (v.empty()) reader.fail(fmt::format("field '{}': empty", name));
  return v;
}

std::vector<Interaction> read_inter(const fs::path& path) {
  LineReader reader(path.string());
  const auto names = header_fields(reader);
  const size_t user_col = required_column(names, "user_id", reader);
  const size_t item_col = required_column(names, "item_id", reader);
  const auto time_col = column(names, {"timestamp"});
  std::vector<Interaction> out;
  std::string line;
  while (reader.next(line)) {
    if (trim(line).empty()) continue;
    const auto fields = split_exact(line, '\t');
    Interaction x;
    x.user = std::string(cell(fields, user_col, "user_id", reader));
    x.item = std::string(cell(fields, item_col, "item_id", reader));
    // Without timestamps the file's own order is the chronology.
    x.time = static_cast<int64_t>(reader.line_number());
    if (time_col) {
      auto t = cell(fields, *time_col, "timestamp", reader);
      if (!parse_time_key(t, x.time))
        reader.fail(fmt::format("field 'timestamp': '{}' is not a number", t));
    }
    out.push_back(std::move(x));
  }
  return out;
}

/// RecBole token_seq categories are space-separated tokens, but multi-word category names only
/// survive as a comma-separated list; without commas the value is one category.
std::vector<std::string> split_categories(std::string_view value) {
  std::vector<std::string> out;
  for (auto part : split_exact(value, ','))
    if (!trim(part).empty()) out.emplace_back(trim(part));
  return out;
}

std::unordered_map<std::string, ItemMeta> read_item(const fs::path& path) {
  LineReader reader(path.string());
  const auto names = header_fields(reader);
  const size_t item_col = required_column(names, "item_id", reader);
  const auto title = column(names, {"title", "movie_title", "name"});
  const auto brand = column(names, {"brand"});
  const auto desc = column(names, {"description", "desc"});
  const auto cats = column(names, {"categories", "category"});
  auto get = [](const std::vector<std::string_view>& f, std::optional<size_t> c) {
    return c && *c < f.size() ? std::string(trim(f[*c])) : std::string();
  };
  std::unordered_map<std::string, ItemMeta> meta;
  std::string line;
  while (reader.next(line)) {
    if (trim(line).empty()) continue;
    const auto fields = split_exact(line, '\t');
    std::string item(cell(fields, item_col, "item_id", reader));
    ItemMeta m;
    m.title = get(fields, title);
    m.brand = get(fields, brand);
    m.description = get(fields, desc);
    m.categories = split_categories(get(fields, cats));
    if (!meta.emplace(item, std::move(m)).second)
      reader.fail(fmt::format("field 'item_id': '{}' appears twice", item));
  }
  return meta;
}

/// The `.inter` file: `path` itself, or the single one inside the directory `path`.
fs::path find_inter(const fs::path& path) {
  if (!fs::is_directory(path)) {
    if (!fs::exists(path)) throw_input_error("{}: no such file or directory", path.string());
    return path;
  }
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(path))
    if (has_suffix(entry.path().filename().string(), ".inter")) found.push_back(entry.path());
  if (found.empty()) throw_input_error("{}: no *.inter file", path.string());
  if (found.size() > 1)
    throw_input_error("{}: {} *.inter files; pass the one to load", path.string(), found.size());
  return found[0];
}

}  // namespace

Dataset load_recbole(const std::string& path) {
  const fs::path inter = find_inter(path);
  fs::path item_file = inter;
  item_file.replace_extension(".item");
  std::unordered_map<std::string, ItemMeta> meta;
  if (fs::exists(item_file)) meta = read_item(item_file);
  return dataset_from_interactions(inter.stem().string(), read_inter(inter), 0, meta);
}

}  // namespace twistar
