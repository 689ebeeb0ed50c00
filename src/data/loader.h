// One entry point for every supported dataset format.
#pragma once

#include <string>

#include "data/dataset.h"

namespace twistar {

struct LoadOptions {
  /// auto | sequences | lcrec | recbole | csv | amazon-raw. `auto` inspects the path.
  std::string format = "auto";
  /// CSV/TSV: field delimiter (',' or '\t'); 0 = guess from the extension.
  char csv_delimiter = 0;
  /// amazon-raw / csv: minimum interactions per user and per item (k-core); 0 disables.
  int kcore = 5;
};

/// Loads a dataset from a directory or a file. Throws InputError naming the file, line and field.
Dataset load_dataset(const std::string& path, const LoadOptions& options = {});

/// The format `auto` resolves to for `path`; throws InputError listing what was looked for.
std::string detect_format(const std::string& path);

// Format-specific loaders (each in its own .cc).
/// `dir/sequences.txt` (+ optional item_map.tsv, user_map.tsv, item_meta.jsonl).
Dataset load_sequences_dir(const std::string& dir);
/// `dir/X.inter.json` + optional `dir/X.item.json` (LC-Rec style).
Dataset load_lcrec_dir(const std::string& dir);
/// RecBole atomic files: `dir/X.inter` (+ optional `dir/X.item`), or a path to the .inter file.
Dataset load_recbole(const std::string& path);
/// A CSV/TSV interaction log `user,item,timestamp[,...]` with or without a header.
Dataset load_csv(const std::string& path, char delimiter, int kcore);
/// Raw Amazon review release: `dir/reviews_<Category>_5.json.gz` + `dir/meta_<Category>.json.gz`.
Dataset load_amazon_raw(const std::string& dir, int kcore);

}  // namespace twistar
