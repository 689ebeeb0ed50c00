#include "data/loader.h"

#include <filesystem>

#include "core/error.h"

namespace twistar {
namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool dir_has(const fs::path& dir, const std::string& prefix, const std::string& suffix) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && ends_with(name, suffix)) return true;
  }
  return false;
}

}  // namespace

std::string detect_format(const std::string& path) {
  fs::path p(path);
  if (!fs::exists(p)) throw_input_error("{}: no such file or directory", path);
  if (fs::is_regular_file(p)) {
    std::string name = p.filename().string();
    if (ends_with(name, ".inter")) return "recbole";
    if (ends_with(name, ".csv") || ends_with(name, ".tsv") || ends_with(name, ".csv.gz") ||
        ends_with(name, ".tsv.gz"))
      return "csv";
    if (name == "sequences.txt") return "sequences";
    throw_input_error("{}: cannot tell the format from the file name; pass --format", path);
  }
  if (fs::exists(p / "sequences.txt")) return "sequences";
  if (dir_has(p, "", ".inter.json")) return "lcrec";
  if (dir_has(p, "", ".inter")) return "recbole";
  if (dir_has(p, "reviews_", ".json.gz")) return "amazon-raw";
  throw_input_error(
      "{}: found none of sequences.txt, *.inter.json, *.inter, reviews_*.json.gz; pass --format",
      path);
}

Dataset load_dataset(const std::string& path, const LoadOptions& options) {
  std::string format = options.format == "auto" ? detect_format(path) : options.format;
  Dataset d;
  if (format == "sequences") {
    fs::path p(path);
    d = load_sequences_dir(fs::is_directory(p) ? path : p.parent_path().string());
  } else if (format == "lcrec") {
    d = load_lcrec_dir(path);
  } else if (format == "recbole") {
    d = load_recbole(path);
  } else if (format == "csv") {
    d = load_csv(path, options.csv_delimiter, options.kcore);
  } else if (format == "amazon-raw") {
    d = load_amazon_raw(path, options.kcore);
  } else {
    throw_input_error("format: unknown '{}' (auto, sequences, lcrec, recbole, csv, amazon-raw)",
                      format);
  }
  if (d.num_users() == 0) throw_input_error("{}: the dataset has no users", path);
  if (d.name.empty()) d.name = fs::path(path).filename().string();
  return d;
}

}  // namespace twistar
