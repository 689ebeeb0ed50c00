#include "sid/residual_kmeans.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <thread>

#include "core/atomic_file.h"
#include "core/error.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "codebook files are written in host order and defined as little-endian");

namespace twistar {
namespace {

constexpr char kMagic[8] = {'T', 'W', 'R', 'K', 'M', 'E', 'A', 'N'};
// Rows per distance block: a [block x K] float tile stays in L2 for K up to a few thousand.
constexpr Eigen::Index kBlockRows = 256;
// Below this many rows the cost of starting threads outweighs the work.
constexpr Eigen::Index kMinRowsPerThread = 1024;

int resolve_threads(int threads) {
  if (threads > 0) return threads;
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// A uniform double in [0, 1) from the top 53 bits: unlike std::uniform_real_distribution, the same
// on every standard library, so codebooks are reproducible across platforms.
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

void assign_rows(const EmbeddingMatrix& points, const EmbeddingMatrix& centroids,
                 const Eigen::VectorXf& centroid_norms, Eigen::Index begin, Eigen::Index end,
                 int32_t* assignment, float* distance) {
  EmbeddingMatrix dots;  // Row-major: the argmin below scans one row at a time.
  for (Eigen::Index lo = begin; lo < end; lo += kBlockRows) {
    const Eigen::Index rows = std::min(kBlockRows, end - lo);
    dots.noalias() = points.middleRows(lo, rows) * centroids.transpose();
    for (Eigen::Index r = 0; r < rows; ++r) {
      Eigen::Index best = 0;
      float best_score = std::numeric_limits<float>::infinity();
      for (Eigen::Index c = 0; c < dots.cols(); ++c) {
        // ||x||² is the same for every centroid, so it is added only to the winner.
        const float score = centroid_norms[c] - 2.0f * dots(r, c);
        if (score < best_score) {
          best_score = score;
          best = c;
        }
      }
      assignment[lo + r] = static_cast<int32_t>(best);
      // Cancellation can leave a tiny negative value for a point sitting on its centroid.
      distance[lo + r] = std::max(0.0f, best_score + points.row(lo + r).squaredNorm());
    }
  }
}

// k-means++: each next centroid is a point drawn with probability proportional to its squared
// distance from the nearest centroid so far, which spreads the seeds over the data.
EmbeddingMatrix kmeans_plus_plus(const EmbeddingMatrix& points, int k, std::mt19937_64& rng) {
  const Eigen::Index n = points.rows();
  EmbeddingMatrix centroids(k, points.cols());
  Eigen::VectorXd nearest = Eigen::VectorXd::Constant(n, std::numeric_limits<double>::infinity());
  Eigen::Index pick = static_cast<Eigen::Index>(rng() % static_cast<uint64_t>(n));
  for (int j = 0; j < k; ++j) {
    centroids.row(j) = points.row(pick);
    double total = 0;
    for (Eigen::Index i = 0; i < n; ++i) {
      nearest[i] = std::min(nearest[i], double((points.row(i) - centroids.row(j)).squaredNorm()));
      total += nearest[i];
    }
    if (j + 1 == k) break;
    if (total <= 0) {  // Every point already sits on a centroid: any choice is as good.
      pick = static_cast<Eigen::Index>(rng() % static_cast<uint64_t>(n));
      continue;
    }
    const double target = uniform01(rng) * total;
    double cumulative = 0;
    pick = n - 1;
    for (Eigen::Index i = 0; i < n; ++i) {
      cumulative += nearest[i];
      if (cumulative > target && nearest[i] > 0) {
        pick = i;
        break;
      }
    }
  }
  return centroids;
}

// Means of the assigned points; clusters left empty take the farthest points still unused.
void update_centroids(const EmbeddingMatrix& points, const std::vector<int32_t>& assignment,
                      const std::vector<float>& distance, EmbeddingMatrix* centroids) {
  const Eigen::Index k = centroids->rows();
  Eigen::MatrixXd sums = Eigen::MatrixXd::Zero(k, points.cols());
  std::vector<int64_t> counts(k, 0);
  for (Eigen::Index i = 0; i < points.rows(); ++i) {
    sums.row(assignment[i]) += points.row(i).cast<double>();
    ++counts[assignment[i]];
  }
  std::vector<int32_t> far_points;
  for (Eigen::Index c = 0; c < k; ++c) {
    if (counts[c] > 0) {
      centroids->row(c) = (sums.row(c) / static_cast<double>(counts[c])).cast<float>();
      continue;
    }
    if (far_points.empty()) {
      far_points.resize(points.rows());
      std::iota(far_points.begin(), far_points.end(), 0);
      std::stable_sort(far_points.begin(), far_points.end(),
                       [&](int32_t a, int32_t b) { return distance[a] > distance[b]; });
      std::reverse(far_points.begin(), far_points.end());  // Pop the farthest from the back.
    }
    centroids->row(c) = points.row(far_points.back());
    far_points.pop_back();
  }
}

// Root-mean-square residual norm of each cluster; 1 for clusters with no spread, which then pass
// their (zero) residuals on unchanged.
Eigen::VectorXf cluster_rms(const EmbeddingMatrix& residual, const std::vector<int32_t>& assignment,
                            int k) {
  Eigen::VectorXd sum = Eigen::VectorXd::Zero(k);
  Eigen::VectorXd count = Eigen::VectorXd::Zero(k);
  for (Eigen::Index i = 0; i < residual.rows(); ++i) {
    sum[assignment[i]] += residual.row(i).squaredNorm();
    count[assignment[i]] += 1;
  }
  Eigen::VectorXf rms(k);
  for (int c = 0; c < k; ++c) {
    const double value = count[c] > 0 ? std::sqrt(sum[c] / count[c]) : 0.0;
    rms[c] = value > 1e-12 ? static_cast<float>(value) : 1.0f;
  }
  return rms;
}

void write_pod(std::ostream& out, const void* data, size_t bytes) {
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
}

// Reads fixed-size fields from a loaded file, naming the file when it ends early.
class Reader {
 public:
  Reader(const std::string& bytes, std::string file) : bytes_(bytes), file_(std::move(file)) {}
  void read(void* out, size_t n) {
    if (pos_ + n > bytes_.size())
      throw_input_error("{}: truncated residual k-means file ({} bytes, needed more at offset {})",
                        file_, bytes_.size(), pos_);
    std::memcpy(out, bytes_.data() + pos_, n);
    pos_ += n;
  }
  template <typename T>
  T get() {
    T value;
    read(&value, sizeof(T));
    return value;
  }
  bool at_end() const { return pos_ == bytes_.size(); }

 private:
  const std::string& bytes_;
  std::string file_;
  size_t pos_ = 0;
};

}  // namespace

void ResidualKMeansOptions::validate() const {
  if (levels < 1 || levels > 16)
    throw_input_error("sid.levels: must be in [1, 16], got {}", levels);
  if (codebook_size < 1 || codebook_size > (1 << 20))
    throw_input_error("sid.codebook_size: must be in [1, 1048576], got {}", codebook_size);
  if (iterations < 1) throw_input_error("sid.iterations: must be >= 1, got {}", iterations);
  if (threads < 0) throw_input_error("sid.threads: must be >= 0 (0 = all cores), got {}", threads);
}

void nearest_centroids(const EmbeddingMatrix& points, const EmbeddingMatrix& centroids, int threads,
                       std::vector<int32_t>* assignment, std::vector<float>* distance) {
  if (points.cols() != centroids.cols())
    throw_error("nearest_centroids: points have {} dims, centroids {}", points.cols(),
                centroids.cols());
  const Eigen::Index n = points.rows();
  assignment->resize(n);
  distance->resize(n);
  const Eigen::VectorXf norms = centroids.rowwise().squaredNorm();
  const Eigen::Index workers = std::max<Eigen::Index>(
      1, std::min<Eigen::Index>(resolve_threads(threads), n / kMinRowsPerThread));
  if (workers == 1) {
    assign_rows(points, centroids, norms, 0, n, assignment->data(), distance->data());
    return;
  }
  std::vector<std::thread> pool;
  const Eigen::Index chunk = (n + workers - 1) / workers;
  for (Eigen::Index w = 0; w < workers; ++w) {
    const Eigen::Index begin = w * chunk, end = std::min(n, begin + chunk);
    pool.emplace_back(assign_rows, std::cref(points), std::cref(centroids), std::cref(norms), begin,
                      end, assignment->data(), distance->data());
  }
  for (auto& t : pool) t.join();
}

EmbeddingMatrix kmeans(const EmbeddingMatrix& points, int k, int iterations, uint64_t seed,
                       int threads, std::vector<int32_t>* assignment) {
  if (k < 1 || k > points.rows())
    throw_error("kmeans: k = {} must be in [1, {}] (the number of points)", k, points.rows());
  std::mt19937_64 rng(seed);
  EmbeddingMatrix centroids = kmeans_plus_plus(points, k, rng);
  std::vector<int32_t> current, previous;
  std::vector<float> distance;
  bool converged = false;
  for (int it = 0; it < iterations; ++it) {
    nearest_centroids(points, centroids, threads, &current, &distance);
    // Same assignment as last time: the centroids are already its means, a fixed point.
    if (it > 0 && current == previous) {
      converged = true;
      break;
    }
    update_centroids(points, current, distance, &centroids);
    previous.swap(current);
  }
  if (!converged) nearest_centroids(points, centroids, threads, &current, &distance);
  if (assignment) *assignment = std::move(current);
  return centroids;
}

ResidualKMeans::ResidualKMeans(ResidualKMeansOptions options) : options_(options) {
  options_.validate();
}

int ResidualKMeans::codebook_size() const {
  return fitted() ? static_cast<int>(codebooks_[0].rows()) : options_.codebook_size;
}

int ResidualKMeans::dim() const { return fitted() ? static_cast<int>(codebooks_[0].cols()) : 0; }

void ResidualKMeans::fit(const EmbeddingMatrix& embeddings) {
  if (embeddings.rows() == 0 || embeddings.cols() == 0)
    throw_input_error("residual k-means: empty embedding matrix ({} x {})", embeddings.rows(),
                      embeddings.cols());
  if (!embeddings.allFinite())
    throw_input_error("residual k-means: embeddings contain NaN or infinite values");
  int k = options_.codebook_size;
  if (k > embeddings.rows()) {
    spdlog::warn("residual k-means: codebook_size {} > {} items; using {} codes per level", k,
                 embeddings.rows(), embeddings.rows());
    k = static_cast<int>(embeddings.rows());
  }
  codebooks_.clear();
  scales_.clear();
  EmbeddingMatrix residual = embeddings;
  std::vector<int32_t> assignment;
  for (int level = 0; level < options_.levels; ++level) {
    // A distinct stream per level, so changing L does not change the earlier levels.
    const uint64_t seed = options_.seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(level);
    codebooks_.push_back(
        kmeans(residual, k, options_.iterations, seed, options_.threads, &assignment));
    for (Eigen::Index i = 0; i < residual.rows(); ++i)
      residual.row(i) -= codebooks_.back().row(assignment[i]);
    scales_.push_back(Eigen::VectorXf::Ones(k));
    if (options_.normalize_residuals && level + 1 < options_.levels) {
      scales_.back() = cluster_rms(residual, assignment, k);
      for (Eigen::Index i = 0; i < residual.rows(); ++i)
        residual.row(i) /= scales_.back()[assignment[i]];
    }
    spdlog::debug("residual k-means level {}: mean squared residual {:.6f}", level + 1,
                  residual.rowwise().squaredNorm().mean());
  }
}

CodeMatrix ResidualKMeans::encode(const EmbeddingMatrix& embeddings) const {
  if (!fitted()) throw_error("residual k-means: encode() before fit() or load()");
  if (embeddings.cols() != dim())
    throw_input_error("residual k-means: embeddings have {} dims, the codebooks {}",
                      embeddings.cols(), dim());
  CodeMatrix codes(embeddings.rows(), levels());
  EmbeddingMatrix residual = embeddings;
  std::vector<int32_t> assignment;
  std::vector<float> distance;
  for (int level = 0; level < levels(); ++level) {
    nearest_centroids(residual, codebooks_[level], options_.threads, &assignment, &distance);
    for (Eigen::Index i = 0; i < residual.rows(); ++i) {
      codes(i, level) = assignment[i];
      residual.row(i) -= codebooks_[level].row(assignment[i]);
      residual.row(i) /= scales_[level][assignment[i]];
    }
  }
  return codes;
}

EmbeddingMatrix ResidualKMeans::decode(const CodeMatrix& codes) const {
  if (!fitted()) throw_error("residual k-means: decode() before fit() or load()");
  if (codes.cols() != levels())
    throw_input_error("residual k-means: codes have {} levels, the tokenizer {}", codes.cols(),
                      levels());
  EmbeddingMatrix out = EmbeddingMatrix::Zero(codes.rows(), dim());
  for (Eigen::Index i = 0; i < codes.rows(); ++i) {
    float scale = 1.0f;  // Product of the scales of the levels above.
    for (int level = 0; level < levels(); ++level) {
      const int32_t c = codes(i, level);
      if (c < 0 || c >= codebook_size())
        throw_input_error("residual k-means: code {} at row {} level {} is outside [0, {})", c, i,
                          level, codebook_size());
      out.row(i) += scale * codebooks_[level].row(c);
      scale *= scales_[level][c];
    }
  }
  return out;
}

void ResidualKMeans::save(const std::filesystem::path& dir) const { save_file(dir / kFileName); }

void ResidualKMeans::save_file(const std::filesystem::path& path) const {
  if (!fitted()) throw_error("residual k-means: save() before fit()");
  write_file_atomic(path, [&](std::ostream& out) {
    const uint32_t version = kFormatVersion;
    const int32_t header[5] = {levels(), codebook_size(), dim(), options_.iterations,
                               options_.normalize_residuals ? 1 : 0};
    write_pod(out, kMagic, sizeof(kMagic));
    write_pod(out, &version, sizeof(version));
    write_pod(out, header, sizeof(header));
    write_pod(out, &options_.seed, sizeof(options_.seed));
    for (int level = 0; level < levels(); ++level) {
      const auto& book = codebooks_[level];
      write_pod(out, book.data(), sizeof(float) * static_cast<size_t>(book.size()));
      write_pod(out, scales_[level].data(), sizeof(float) * static_cast<size_t>(book.rows()));
    }
  });
}

ResidualKMeans ResidualKMeans::load_file(const std::filesystem::path& path) {
  const std::string bytes = read_file(path);
  Reader in(bytes, path.string());
  char magic[sizeof(kMagic)];
  in.read(magic, sizeof(magic));
  if (std::memcmp(magic, kMagic, sizeof(kMagic)) != 0)
    throw_input_error("{}: not a residual k-means codebook file (bad magic)", path.string());
  const auto version = in.get<uint32_t>();
  if (version > kFormatVersion)
    throw_input_error(
        "{}: format version {} is newer than this build supports ({}); upgrade twistar",
        path.string(), version, kFormatVersion);
  ResidualKMeansOptions options;
  options.levels = in.get<int32_t>();
  options.codebook_size = in.get<int32_t>();
  const auto dim = in.get<int32_t>();
  options.iterations = in.get<int32_t>();
  options.normalize_residuals = in.get<int32_t>() != 0;
  options.seed = in.get<uint64_t>();
  if (dim < 1) throw_input_error("{}: invalid dimension {}", path.string(), dim);
  try {
    options.validate();
  } catch (const InputError& e) {
    throw_input_error("{}: {}", path.string(), e.what());
  }
  ResidualKMeans model(options);
  for (int level = 0; level < options.levels; ++level) {
    EmbeddingMatrix book(options.codebook_size, dim);
    Eigen::VectorXf scales(options.codebook_size);
    in.read(book.data(), sizeof(float) * static_cast<size_t>(book.size()));
    in.read(scales.data(), sizeof(float) * static_cast<size_t>(scales.size()));
    model.codebooks_.push_back(std::move(book));
    model.scales_.push_back(std::move(scales));
  }
  if (!in.at_end()) throw_input_error("{}: trailing bytes after the codebooks", path.string());
  return model;
}

ResidualKMeans ResidualKMeans::load(const std::filesystem::path& dir) {
  return load_file(dir / kFileName);
}

}  // namespace twistar
