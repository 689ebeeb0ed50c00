// The interface every semantic-ID tokenizer implements: it learns L codebooks from item embeddings
// and maps each item to L codes. Two implementations: residual k-means (no neural net, fast) and
// the RQ-VAE (libtorch). Collision handling and the trie are downstream and tokenizer-agnostic.
#pragma once

#include <filesystem>
#include <string>

#include "sid/sid_types.h"

namespace twistar {

class SidTokenizer {
 public:
  virtual ~SidTokenizer() = default;

  /// Short stable name, used in manifests and file names ("residual_kmeans", "rqvae").
  virtual std::string name() const = 0;
  /// Learns the codebooks from `embeddings` [items x d]. Replaces any earlier fit.
  virtual void fit(const EmbeddingMatrix& embeddings) = 0;
  /// Codes [rows x levels()] for each row of `embeddings`; requires a fit (or a load) and the same
  /// d.
  virtual CodeMatrix encode(const EmbeddingMatrix& embeddings) const = 0;
  /// Writes the learned codebooks (and whatever encode() needs) into `dir`, atomically per file.
  virtual void save(const std::filesystem::path& dir) const = 0;
  /// Number of code levels L.
  virtual int levels() const = 0;
  /// Codes per level K: every code is in [0, K).
  virtual int codebook_size() const = 0;
};

}  // namespace twistar
