// Residual k-means: a semantic-ID tokenizer without a neural net. Level 1 clusters the embeddings
// into K centroids; level l clusters what the previous levels left unexplained (the residuals
// x - c_1 - ... - c_{l-1}). An item's SID is its nearest centroid at every level, so coarse levels
// group broadly similar items and later levels refine within a group.
//
// Each level is Lloyd's k-means: k-means++ seeding from a seeded RNG, then assign/update iterations
// until no point moves or `iterations` is reached. A cluster that loses all its points is re-seeded
// with the point farthest from its centroid, so codebooks stay fully used.
//
// Fewer points than codes: K is capped at the number of points with a warning (codebook_size()
// reports the cap), because a codebook larger than the data cannot be filled and the caller usually
// just passed a default meant for larger catalogues.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "sid/tokenizer.h"

namespace twistar {

struct ResidualKMeansOptions {
  /// Code levels L.
  int levels = 3;
  /// Centroids per level K (capped at the number of points, see above).
  int codebook_size = 256;
  /// Lloyd iterations per level (at most; stops early once no point changes cluster).
  int iterations = 25;
  /// Seed of the k-means++ sampling; same seed and data give the same codebooks on any thread
  /// count.
  uint64_t seed = 42;
  /// Divide each level's residuals by the RMS residual norm of their cluster before the next level
  /// (decode multiplies back). Residuals of tight clusters otherwise all sit near the origin and
  /// share the few central codes of the next level, which is where most collisions come from.
  bool normalize_residuals = false;
  /// Threads for the assignment step (0 = all hardware threads).
  int threads = 0;

  /// Throws InputError naming the bad field.
  void validate() const;
};

class ResidualKMeans : public SidTokenizer {
 public:
  /// File written by save() inside its directory.
  static constexpr const char* kFileName = "residual_kmeans.bin";

  explicit ResidualKMeans(ResidualKMeansOptions options = {});

  std::string name() const override { return "residual_kmeans"; }
  void fit(const EmbeddingMatrix& embeddings) override;
  CodeMatrix encode(const EmbeddingMatrix& embeddings) const override;
  void save(const std::filesystem::path& dir) const override;
  int levels() const override { return options_.levels; }
  int codebook_size() const override;

  /// Sum of each row's centroids: the reconstruction the codes stand for, [rows x dim].
  EmbeddingMatrix decode(const CodeMatrix& codes) const;
  /// Centroids of one level, [K x dim].
  const EmbeddingMatrix& codebook(int level) const { return codebooks_.at(level); }
  /// Per code of one level, the factor its residuals were divided by (all 1 unless
  /// normalize_residuals; always 1 at the last level).
  const Eigen::VectorXf& residual_scales(int level) const { return scales_.at(level); }
  /// Dimension of the embeddings the codebooks were fitted on (0 before fit).
  int dim() const;
  bool fitted() const { return !codebooks_.empty(); }
  const ResidualKMeansOptions& options() const { return options_; }

  /// Binary file: magic "TWRKMEAN", format version, then int32 levels, K, dim, iterations,
  /// normalize_residuals, uint64 seed, then per level the float32 centroids [K x dim] and residual
  /// scales [K] (little-endian). Written atomically.
  void save_file(const std::filesystem::path& path) const;
  /// Reads a file from save_file(); throws InputError naming the file when it is not one, is from
  /// a newer format version, or is truncated.
  static ResidualKMeans load_file(const std::filesystem::path& path);
  /// load_file(dir / kFileName).
  static ResidualKMeans load(const std::filesystem::path& dir);

  static constexpr uint32_t kFormatVersion = 1;

 private:
  ResidualKMeansOptions options_;
  std::vector<EmbeddingMatrix> codebooks_;
  std::vector<Eigen::VectorXf> scales_;
};

/// Nearest centroid of every row of `points` (ties go to the lower index), with the squared
/// distance to it. Uses ||x||² - 2 x·c + ||c||² in row blocks so the dot products are one matrix
/// product. Exposed for tests and for other tokenizers' k-means initialisation.
void nearest_centroids(const EmbeddingMatrix& points, const EmbeddingMatrix& centroids, int threads,
                       std::vector<int32_t>* assignment, std::vector<float>* distance);

/// One k-means run (k-means++ seeding + Lloyd); returns the centroids [k x dim] and fills
/// `assignment` when not null. k must be <= points.rows().
EmbeddingMatrix kmeans(const EmbeddingMatrix& points, int k, int iterations, uint64_t seed,
                       int threads, std::vector<int32_t>* assignment = nullptr);

}  // namespace twistar
