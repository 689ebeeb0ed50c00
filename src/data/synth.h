// The synthetic generator behind the embedded default (`twistar synth`): a dataset whose structure
// is known, so tests can assert that models find it.
//
// Items belong to categories (a two-level path) and brands and get text built from both. Item
// popularity follows a power law. Each user has a taste (a few categories); a *predictable* user
// moves along related-item transitions (each item has a few successors in its category or a
// complementary one), an *erratic* user picks popular items at random. Output uses the
// sequences.txt format.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace twistar {

struct SynthOptions {
  /// Number of users.
  int users = 2000;
  /// Number of items.
  int items = 1000;
  /// Number of leaf categories (grouped under top-level ones).
  int categories = 20;
  /// Number of brands.
  int brands = 60;
  /// Minimum and maximum sequence length (lengths are skewed towards the minimum).
  int min_length = 5;
  int max_length = 40;
  /// Exponent of the power-law item popularity.
  double popularity_exponent = 1.0;
  /// Share of users who follow related-item transitions (the rest are erratic).
  double predictable_share = 0.7;
  /// For a predictable user, probability that the next item is a successor of the current one.
  double follow_probability = 0.8;
  /// Successors per item.
  int successors = 3;
  uint64_t seed = 7;

  /// Throws InputError naming the first invalid field.
  void validate() const;
};

/// The hidden structure behind a generated dataset, so tests and diagnostics can check what models
/// recover. Indices are the dataset's 0-based item indices.
struct SynthTruth {
  /// Related items of each item, strongest link first (predictable users follow earlier ones more).
  std::vector<std::vector<ItemIndex>> successors;
  /// Leaf category of each item (index into `leaf_names`).
  std::vector<int32_t> item_leaf;
  /// Leaf category names and each leaf's fixed complementary leaf.
  std::vector<std::string> leaf_names;
  std::vector<int32_t> complement;
  /// Probability of each item under the power law (sums to 1).
  std::vector<double> popularity;
  /// Per user: true if the user follows related-item transitions.
  std::vector<bool> predictable;
};

/// Generates the dataset in memory.
Dataset generate_synthetic(const SynthOptions& options);
/// Same dataset, and fills `truth` (when not null) with the structure it was generated from.
Dataset generate_synthetic(const SynthOptions& options, SynthTruth* truth);

/// Writes `dir/sequences.txt`, `item_map.tsv`, `user_map.tsv`, `item_meta.jsonl` (atomically).
void write_sequences_dir(const Dataset& data, const std::string& dir);

}  // namespace twistar
