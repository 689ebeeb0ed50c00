#include "sid/randomized_svd.h"

#include <Eigen/QR>
#include <Eigen/SVD>

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"

namespace twistar {
namespace {

// Standard normal samples by Box-Muller from raw 53-bit uniforms: std::normal_distribution differs
// between standard libraries, and the embeddings should not.
Eigen::MatrixXd gaussian(Eigen::Index rows, Eigen::Index cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uniform = [&] { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53; };
  Eigen::MatrixXd m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); i += 2) {
    const double r = std::sqrt(-2.0 * std::log(uniform()));
    const double t = 2.0 * M_PI * uniform();
    m.data()[i] = r * std::cos(t);
    if (i + 1 < m.size()) m.data()[i + 1] = r * std::sin(t);
  }
  return m;
}

// An orthonormal basis of the columns of y (thin Q of a Householder QR).
Eigen::MatrixXd orthonormal_basis(const Eigen::MatrixXd& y) {
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(y);
  return qr.householderQ() * Eigen::MatrixXd::Identity(y.rows(), y.cols());
}

template <typename Matrix>
TruncatedSvd randomized_svd_impl(const Matrix& a, const RandomizedSvdOptions& options) {
  options.validate();
  const Eigen::Index max_rank = std::min(a.rows(), a.cols());
  const Eigen::Index rank = std::min<Eigen::Index>(options.rank, max_rank);
  TruncatedSvd out;
  if (rank == 0) {
    out.u.resize(a.rows(), 0);
    out.v.resize(a.cols(), 0);
    return out;
  }
  const Eigen::Index width = std::min<Eigen::Index>(rank + options.oversampling, max_rank);
  Eigen::MatrixXd q = orthonormal_basis(a * gaussian(a.cols(), width, options.seed));
  for (int it = 0; it < options.power_iterations; ++it) {
    const Eigen::MatrixXd z = orthonormal_basis(a.transpose() * q);
    q = orthonormal_basis(a * z);
  }
  // B = Qᵀ A is [width x cols]; its SVD is taken transposed (Bᵀ = V S Wᵀ, tall and thin), which
  // is the shape Eigen's divide-and-conquer SVD handles best.
  const Eigen::MatrixXd bt = a.transpose() * q;
  Eigen::BDCSVD<Eigen::MatrixXd> svd(bt, Eigen::ComputeThinU | Eigen::ComputeThinV);
  out.singular_values = svd.singularValues().head(rank);
  out.v = svd.matrixU().leftCols(rank);
  out.u = q * svd.matrixV().leftCols(rank);
  return out;
}

}  // namespace

void RandomizedSvdOptions::validate() const {
  if (rank < 1) throw_input_error("svd.rank: must be >= 1, got {}", rank);
  if (oversampling < 0) throw_input_error("svd.oversampling: must be >= 0, got {}", oversampling);
  if (power_iterations < 0)
    throw_input_error("svd.power_iterations: must be >= 0, got {}", power_iterations);
}

TruncatedSvd randomized_svd(const Eigen::SparseMatrix<double, Eigen::RowMajor>& a,
                            const RandomizedSvdOptions& options) {
  return randomized_svd_impl(a, options);
}

TruncatedSvd randomized_svd(const Eigen::MatrixXd& a, const RandomizedSvdOptions& options) {
  return randomized_svd_impl(a, options);
}

}  // namespace twistar
