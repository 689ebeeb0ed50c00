#include "sid/embeddings.h"

#include <cmath>

#include "core/error.h"
#include "sid/npy.h"

namespace twistar {
namespace {

// U·diag(weights) truncated/padded to exactly `dim` columns, as floats.
EmbeddingMatrix scaled_factors(const TruncatedSvd& svd, const Eigen::VectorXd& weights, int dim) {
  EmbeddingMatrix out = EmbeddingMatrix::Zero(svd.u.rows(), dim);
  const Eigen::Index r = std::min<Eigen::Index>(dim, svd.u.cols());
  out.leftCols(r) = (svd.u.leftCols(r) * weights.head(r).asDiagonal()).cast<float>();
  return out;
}

}  // namespace

void ContentEmbeddingOptions::validate() const {
  if (dim < 1) throw_input_error("embeddings.dim: must be >= 1, got {}", dim);
  if (!(singular_value_power >= 0.0 && singular_value_power <= 1.0))
    throw_input_error("embeddings.singular_value_power: must be in [0, 1], got {}",
                      singular_value_power);
  text.validate();
  tfidf.validate();
  RandomizedSvdOptions svd{dim, oversampling, power_iterations, seed};
  svd.validate();
}

void l2_normalize_rows(EmbeddingMatrix* matrix) {
  for (Eigen::Index i = 0; i < matrix->rows(); ++i) {
    const float norm = matrix->row(i).norm();
    if (norm > 0.0f) matrix->row(i) /= norm;
  }
}

ContentEmbeddings content_embeddings(const std::vector<ItemMeta>& items,
                                     const ContentEmbeddingOptions& options) {
  options.validate();
  std::vector<std::vector<std::string>> documents;
  documents.reserve(items.size());
  for (const auto& item : items) documents.push_back(item_tokens(item, options.text));
  const Tfidf tfidf = build_tfidf(documents, options.tfidf);

  ContentEmbeddings out;
  out.vocabulary_size = static_cast<int32_t>(tfidf.vocabulary.size());
  const Eigen::SparseMatrix<double, Eigen::RowMajor> a = tfidf.matrix.cast<double>();
  const TruncatedSvd svd =
      randomized_svd(a, RandomizedSvdOptions{options.dim, options.oversampling,
                                             options.power_iterations, options.seed});
  // Rows are U·S^p; with p = 1 that is A·V, each item projected on the top directions (LSA).
  out.matrix = scaled_factors(
      svd, svd.singular_values.array().pow(options.singular_value_power).matrix(), options.dim);
  l2_normalize_rows(&out.matrix);
  for (Eigen::Index i = 0; i < out.matrix.rows(); ++i)
    if (!(out.matrix.row(i).squaredNorm() > 0.0f))
      out.without_text.push_back(static_cast<ItemIndex>(i));
  for (Eigen::Index k = 0; k < svd.singular_values.size(); ++k)
    out.singular_values.push_back(static_cast<float>(svd.singular_values[k]));
  return out;
}

EmbeddingMatrix collaborative_embeddings(const EmbeddingMatrix& item_table, int32_t num_items,
                                         const std::string& source) {
  if (item_table.rows() != num_items)
    throw_input_error("{}: {} rows, but the dataset has {} items", source, item_table.rows(),
                      num_items);
  if (item_table.cols() < 1) throw_input_error("{}: no columns", source);
  if (!item_table.allFinite()) throw_input_error("{}: contains NaN or infinite values", source);
  EmbeddingMatrix out = item_table;
  l2_normalize_rows(&out);
  return out;
}

EmbeddingMatrix swing_embeddings(const ItemGraph& graph, int dim, uint64_t seed) {
  std::vector<Eigen::Triplet<double>> triplets;
  for (ItemIndex i = 0; i < graph.num_items(); ++i)
    for (const auto& n : graph.neighbors(i)) {
      // Top-k lists are not symmetric; averaging both directions gives a symmetric matrix whose
      // singular vectors are its eigenvectors.
      triplets.emplace_back(i, n.item, 0.5 * n.score);
      triplets.emplace_back(n.item, i, 0.5 * n.score);
    }
  Eigen::SparseMatrix<double, Eigen::RowMajor> s(graph.num_items(), graph.num_items());
  s.setFromTriplets(triplets.begin(), triplets.end());
  RandomizedSvdOptions svd_options;
  svd_options.rank = dim;
  svd_options.seed = seed;
  const TruncatedSvd svd = randomized_svd(s, svd_options);
  EmbeddingMatrix out = scaled_factors(svd, svd.singular_values.cwiseSqrt(), dim);
  l2_normalize_rows(&out);
  return out;
}

EmbeddingMatrix hybrid_embeddings(const EmbeddingMatrix& content,
                                  const EmbeddingMatrix& collaborative,
                                  float collaborative_weight) {
  if (content.rows() != collaborative.rows())
    throw_input_error("hybrid embeddings: content has {} rows, collaborative {}", content.rows(),
                      collaborative.rows());
  if (!std::isfinite(collaborative_weight) || collaborative_weight < 0.0f)
    throw_input_error("embeddings.collaborative_weight: must be a finite value >= 0, got {}",
                      collaborative_weight);
  EmbeddingMatrix left = content, right = collaborative;
  l2_normalize_rows(&left);
  l2_normalize_rows(&right);
  EmbeddingMatrix out(content.rows(), content.cols() + collaborative.cols());
  out << left, right * collaborative_weight;
  return out;
}

EmbeddingMatrix external_embeddings(const std::filesystem::path& path, int32_t num_items) {
  EmbeddingMatrix m = load_npy(path);
  if (m.rows() != num_items)
    throw_input_error("{}: {} rows, but the dataset has {} items (row i must be item index i)",
                      path.string(), m.rows(), num_items);
  if (!m.allFinite()) throw_input_error("{}: contains NaN or infinite values", path.string());
  return m;
}

}  // namespace twistar
