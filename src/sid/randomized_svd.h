// Truncated SVD by random projection (Halko, Martinsson & Tropp 2011, "Finding structure with
// randomness"): project A onto rank + oversampling random directions, sharpen the captured subspace
// with a few power iterations (re-orthonormalised by QR each time, so small singular values are not
// lost to rounding), then take the exact SVD of the small projected matrix. Costs a handful of
// sparse products, against a full SVD that would be cubic in the vocabulary.
#pragma once

#include <Eigen/Core>
#include <Eigen/SparseCore>

#include <cstdint>

namespace twistar {

struct RandomizedSvdOptions {
  /// Singular triplets wanted (capped at min(rows, cols)).
  int rank = 64;
  /// Extra random directions; they absorb the tail so the wanted triplets come out accurate.
  int oversampling = 10;
  /// Power iterations; each multiplies the spectral decay, which text spectra need.
  int power_iterations = 4;
  /// Seed of the Gaussian test matrix.
  uint64_t seed = 42;

  void validate() const;
};

/// A ≈ U diag(S) Vᵀ with U [rows x r], S descending [r], V [cols x r], r = min(rank, rows, cols).
struct TruncatedSvd {
  Eigen::MatrixXd u;
  Eigen::VectorXd singular_values;
  Eigen::MatrixXd v;
};

TruncatedSvd randomized_svd(const Eigen::SparseMatrix<double, Eigen::RowMajor>& a,
                            const RandomizedSvdOptions& options = {});
TruncatedSvd randomized_svd(const Eigen::MatrixXd& a, const RandomizedSvdOptions& options = {});

}  // namespace twistar
