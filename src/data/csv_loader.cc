// A generic interaction log `user,item,timestamp[,...]` (CSV or TSV, optionally gzipped). The first
// three columns are used by position; a header row is recognised by a non-numeric third field.
#include <filesystem>

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

/// Splits one record with RFC 4180 quoting ("a,b" is one field, "" is a literal quote). Returns
/// false if a quoted field is still open at the end of `text` (it continues on the next line).
bool split_record(const std::string& text, char delim, std::vector<std::string>& fields) {
  fields.assign(1, std::string());
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c != '"') {
        fields.back() += c;
      } else if (i + 1 < text.size() && text[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else {
        quoted = false;
      }
    } else if (c == '"' && trim(fields.back()).empty()) {
      // Only a quote that opens a field quotes; `24" monitor` keeps its inch mark.
      fields.back().clear();
      quoted = true;
    } else if (c == delim) {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  return !quoted;
}

/// Reads the next record, joining lines while a quoted field spans a newline. `first_line` is where
/// the record started, for error messages.
bool next_record(LineReader& reader, char delim, std::vector<std::string>& fields,
                 size_t& first_line) {
  std::string text, more;
  do {
    if (!reader.next(text)) return false;
  } while (trim(text).empty());
  first_line = reader.line_number();
  while (!split_record(text, delim, fields)) {
    if (!reader.next(more))
      throw InputError(at_line(reader.path(), first_line, "quoted field is never closed"));
    text += '\n';
    text += more;
  }
  return true;
}

bool looks_like_header(const std::vector<std::string>& fields) {
  int64_t t = 0;
  return fields.size() >= 3 && !parse_time_key(fields[2], t);
}

std::string required(const std::vector<std::string>& fields, size_t c, const char* name,
                     const std::string& file, size_t line) {
  if (c >= fields.size())
    throw InputError(at_line(file, line,
                             fmt::format("field '{}' (column {}): missing, the line has {} fields",
                                         name, c + 1, fields.size())));
  std::string v(trim(fields[c]));
  if (v.empty())
    throw InputError(
        at_line(file, line, fmt::format("field '{}' (column {}): empty", name, c + 1)));
  return v;
}

char guess_delimiter(const std::string& path) {
  std::string name = fs::path(path).filename().string();
  if (has_suffix(name, ".gz")) name.resize(name.size() - 3);
  return has_suffix(name, ".tsv") || has_suffix(name, ".tab") ? '\t' : ',';
}

}  // namespace

Dataset load_csv(const std::string& path, char delimiter, int kcore) {
  if (delimiter == 0) delimiter = guess_delimiter(path);
  LineReader reader(path);
  std::vector<Interaction> interactions;
  std::vector<std::string> fields;
  size_t line = 0;
  bool first = true;
  while (next_record(reader, delimiter, fields, line)) {
    if (first && looks_like_header(fields)) {
      first = false;
      continue;
    }
    first = false;
    Interaction x;
    x.user = required(fields, 0, "user", path, line);
    x.item = required(fields, 1, "item", path, line);
    const std::string t = required(fields, 2, "timestamp", path, line);
    if (!parse_time_key(t, x.time))
      throw InputError(
          at_line(path, line, fmt::format("field 'timestamp': '{}' is not a number", t)));
    interactions.push_back(std::move(x));
  }
  std::string name = fs::path(path).filename().string();
  for (const char* ext : {".gz", ".csv", ".tsv", ".tab", ".txt"})
    if (has_suffix(name, ext)) name.resize(name.size() - std::string(ext).size());
  const size_t total = interactions.size();
  Dataset d = dataset_from_interactions(std::move(name), std::move(interactions), kcore);
  if (total > 0 && d.num_users() == 0)
    throw_input_error("{}: all {} interactions were removed by {}-core filtering; lower the k-core",
                      path, total, kcore);
  return d;
}

}  // namespace twistar
