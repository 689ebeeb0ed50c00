// The `sid` stage: item embeddings -> SID tokenizer -> unique semantic IDs, plus a quality report.
//
// run/sid/ holds sid_map.json (item index <-> SID, see sid/sid_map.h), the tokenizer's own files
// (rqvae.pt + rqvae.json, or residual_kmeans.bin), embeddings.npy (the tokenizer's input),
// report.json + report.md and manifest.json (written last: its presence marks a finished stage).
// Collaborative and hybrid embeddings read SASRec's item table from run/sasrec.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "core/context.h"
#include "data/dataset.h"
#include "sid/embeddings.h"
#include "sid/residual_kmeans.h"
#include "sid/rqvae.h"

namespace twistar {

struct SidStageOptions {
  /// Item embeddings: content | collaborative | hybrid | external (see sid/embeddings.h).
  std::string embedding = "content";
  /// Weight of the collaborative part of hybrid embeddings (the content part has weight 1).
  float hybrid_weight = 1.0f;
  /// The float32 .npy matrix of `external` embeddings (row i = item index i).
  std::string external_path;
  /// Tokenizer: rqvae | rkmeans.
  std::string tokenizer = "rqvae";
  /// Code levels L and codes per level K; these override the tokenizer options' own fields.
  int levels = 3;
  int codebook_size = 256;
  /// Content embedding dimension d (overrides content.dim).
  int dim = 64;
  ContentEmbeddingOptions content;
  RqvaeOptions rqvae;
  ResidualKMeansOptions rkmeans;

  /// Throws InputError naming the bad field.
  void validate() const;
  /// What the manifest records (only the options of the chosen embedding kind and tokenizer).
  nlohmann::json to_json() const;
};

struct SidStageOutcome {
  /// The report document (also in run/sid/report.json).
  nlohmann::json report;
  bool skipped = false;
  /// Wall time of the stage (of the original run when skipped).
  double seconds = 0.0;
};

/// Runs the stage into run_dir/sid unless a finished stage with the same config and inputs (data
/// fingerprint, SASRec model or external file) is there; `force` reruns regardless. Seeds come from
/// ctx.seed. Throws InputError when collaborative/hybrid embeddings are asked for and run_dir has
/// no trained SASRec.
SidStageOutcome run_sid_stage(const Dataset& data, const SidStageOptions& options,
                              const Context& ctx, const std::filesystem::path& run_dir,
                              bool force = false);

/// Semantic coherence of codes: P(same leaf category | same first `prefix` codes) divided by
/// P(same leaf category | two random items), both over unordered pairs of distinct items that
/// have categories (the full category path names the leaf). Computed exactly from counts.
struct Coherence {
  double ratio = 0.0;
  double p_same_prefix = 0.0;
  double p_random = 0.0;
  /// Items with categories (the others are left out).
  int64_t items = 0;
  /// Pairs of such items that share the prefix.
  int64_t prefix_pairs = 0;

  nlohmann::json to_json() const;
};
Coherence semantic_coherence(const CodeMatrix& codes, int prefix,
                             const std::vector<ItemMeta>& items);

/// The report as Markdown: a summary line, a per-level table and the coherence figures.
std::string sid_report_markdown(const nlohmann::json& report);

}  // namespace twistar
