#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "sid/residual_kmeans.h"
#include "test_util.h"

namespace twistar {
namespace {

EmbeddingMatrix gaussian_matrix(int rows, int cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  EmbeddingMatrix m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
  return m;
}

// Mean squared distance between rows and the sum of their first `levels` centroids.
double reconstruction_error(const ResidualKMeans& model, const EmbeddingMatrix& x,
                            const CodeMatrix& codes, int levels) {
  EmbeddingMatrix recon = EmbeddingMatrix::Zero(x.rows(), x.cols());
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    float scale = 1.0f;
    for (int l = 0; l < levels; ++l) {
      recon.row(i) += scale * model.codebook(l).row(codes(i, l));
      scale *= model.residual_scales(l)[codes(i, l)];
    }
  }
  return (x - recon).rowwise().squaredNorm().mean();
}

std::set<int32_t> column_set(const CodeMatrix& codes, int level) {
  std::set<int32_t> set;
  for (Eigen::Index i = 0; i < codes.rows(); ++i) set.insert(codes(i, level));
  return set;
}

TEST(KMeans, NearestCentroidsMatchesBruteForce) {
  auto points = gaussian_matrix(3000, 12, 1);
  auto centroids = gaussian_matrix(37, 12, 2);
  std::vector<int32_t> assignment;
  std::vector<float> distance;
  nearest_centroids(points, centroids, 3, &assignment, &distance);
  for (Eigen::Index i = 0; i < points.rows(); ++i) {
    Eigen::Index best;
    float d = (centroids.rowwise() - points.row(i)).rowwise().squaredNorm().minCoeff(&best);
    ASSERT_NEAR(distance[i], d, 1e-3f * (1 + d));
    if (assignment[i] != best)  // Only a near tie may pick another centroid.
      ASSERT_NEAR((centroids.row(assignment[i]) - points.row(i)).squaredNorm(), d, 1e-3f);
  }
}

TEST(KMeans, RecoversWellSeparatedClustersExactly) {
  const int k = 8, per = 60, dim = 16;
  const EmbeddingMatrix centers = gaussian_matrix(k, dim, 3) * 20.0f;
  const EmbeddingMatrix noise = gaussian_matrix(k * per, dim, 4) * 0.05f;
  EmbeddingMatrix points(k * per, dim);
  std::vector<int> truth(k * per);
  std::mt19937 rng(5);
  for (int i = 0; i < k * per; ++i) {
    truth[i] = static_cast<int>(rng() % k);
    points.row(i) = centers.row(truth[i]) + noise.row(i);
  }
  std::vector<int32_t> assignment;
  kmeans(points, k, 25, 7, 2, &assignment);
  // Same cluster iff same true cluster: a bijection between labels.
  std::map<int, int32_t> label_of;
  std::set<int32_t> used;
  for (int i = 0; i < k * per; ++i) {
    auto [it, inserted] = label_of.emplace(truth[i], assignment[i]);
    ASSERT_EQ(it->second, assignment[i]) << "point " << i;
    if (inserted) ASSERT_TRUE(used.insert(assignment[i]).second);
  }
}

TEST(KMeans, ResidualLevelsReduceReconstructionErrorMonotonically) {
  auto x = gaussian_matrix(2000, 16, 6);
  for (bool normalize : {false, true}) {
    ResidualKMeansOptions o;
    o.levels = 4;
    o.codebook_size = 16;
    o.normalize_residuals = normalize;
    ResidualKMeans model(o);
    model.fit(x);
    const CodeMatrix codes = model.encode(x);
    double previous = x.rowwise().squaredNorm().mean();
    for (int l = 1; l <= o.levels; ++l) {
      const double error = reconstruction_error(model, x, codes, l);
      EXPECT_LT(error, previous * 0.97) << "level " << l << " normalize " << normalize;
      previous = error;
    }
    EXPECT_NEAR((x - model.decode(codes)).rowwise().squaredNorm().mean(), previous, 1e-4);
    EXPECT_EQ(model.residual_scales(o.levels - 1), Eigen::VectorXf::Ones(16));
    if (normalize) EXPECT_NE(model.residual_scales(0), Eigen::VectorXf::Ones(16));
  }
}

TEST(KMeans, DeterministicForASeedOnAnyThreadCount) {
  auto x = gaussian_matrix(5000, 8, 8);
  ResidualKMeansOptions o;
  o.levels = 2;
  o.codebook_size = 32;
  o.threads = 1;
  ResidualKMeans a(o);
  a.fit(x);
  o.threads = 4;
  ResidualKMeans b(o);
  b.fit(x);
  for (int l = 0; l < o.levels; ++l) EXPECT_EQ(a.codebook(l), b.codebook(l));
  EXPECT_EQ(a.encode(x), b.encode(x));
  o.seed = 99;
  ResidualKMeans c(o);
  c.fit(x);
  EXPECT_NE(a.codebook(0), c.codebook(0));
}

TEST(KMeans, FourLevelsOf256CodesWorkThroughTheInterface) {
  auto x = gaussian_matrix(4000, 32, 9);
  ResidualKMeansOptions o;
  o.levels = 4;
  o.codebook_size = 256;
  o.iterations = 8;
  std::unique_ptr<SidTokenizer> tokenizer = std::make_unique<ResidualKMeans>(o);
  tokenizer->fit(x);
  EXPECT_EQ(tokenizer->name(), "residual_kmeans");
  EXPECT_EQ(tokenizer->levels(), 4);
  EXPECT_EQ(tokenizer->codebook_size(), 256);
  const CodeMatrix codes = tokenizer->encode(x);
  ASSERT_EQ(codes.rows(), 4000);
  ASSERT_EQ(codes.cols(), 4);
  EXPECT_GE(codes.minCoeff(), 0);
  EXPECT_LT(codes.maxCoeff(), 256);
  std::set<int32_t> first = column_set(codes, 0);
  EXPECT_GE(first.size(), 250u);  // Empty clusters are re-seeded, so nearly every code is used.
}

TEST(KMeans, CapsTheCodebookWhenThereAreFewerPointsThanCodes) {
  auto x = gaussian_matrix(10, 4, 10);
  ResidualKMeans model;  // 3 x 256 by default.
  model.fit(x);
  EXPECT_EQ(model.codebook_size(), 10);
  const CodeMatrix codes = model.encode(x);
  std::set<int32_t> first = column_set(codes, 0);
  EXPECT_EQ(first.size(), 10u);  // Every point is its own centroid.
  EXPECT_LT((x - model.decode(codes)).norm(), 1e-4);
}

TEST(KMeans, SaveLoadRoundTripIsExact) {
  testing::TempDir dir;
  auto x = gaussian_matrix(600, 8, 11);
  ResidualKMeansOptions o;
  o.codebook_size = 20;
  o.normalize_residuals = true;
  ResidualKMeans model(o);
  model.fit(x);
  model.save(dir.path());
  const auto loaded = ResidualKMeans::load(dir.path());
  EXPECT_EQ(loaded.encode(x), model.encode(x));
  EXPECT_EQ(loaded.options().seed, o.seed);
  EXPECT_TRUE(loaded.options().normalize_residuals);
  EXPECT_EQ(loaded.decode(loaded.encode(x)), model.decode(model.encode(x)));
  loaded.save_file(dir / "again.bin");
  EXPECT_EQ(read_file(dir / ResidualKMeans::kFileName), read_file(dir / "again.bin"));
}

TEST(KMeans, LoadRejectsBadFilesNamingThem) {
  testing::TempDir dir;
  ResidualKMeansOptions o;
  o.codebook_size = 4;
  ResidualKMeans model(o);
  model.fit(gaussian_matrix(50, 3, 12));
  model.save_file(dir / "ok.bin");
  const std::string bytes = read_file(dir / "ok.bin");
  auto expect_error = [&](const std::string& content, const std::string& fragment) {
    testing::write_text(dir / "bad.bin", content);
    try {
      ResidualKMeans::load_file(dir / "bad.bin");
      FAIL() << "accepted: " << fragment;
    } catch (const InputError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("bad.bin"), std::string::npos) << what;
      EXPECT_NE(what.find(fragment), std::string::npos) << what;
    }
  };
  expect_error(bytes.substr(0, bytes.size() - 3), "truncated");
  expect_error("NOTMAGIC" + bytes.substr(8), "bad magic");
  std::string newer = bytes;
  newer[8] = 9;
  expect_error(newer, "newer");
  expect_error(bytes + "x", "trailing");
}

TEST(KMeans, OptionsAndInputsAreValidated) {
  ResidualKMeansOptions o;
  o.levels = 0;
  EXPECT_THROW(o.validate(), InputError);
  o = {};
  o.iterations = 0;
  EXPECT_THROW(ResidualKMeans{o}, InputError);
  ResidualKMeans model;
  EXPECT_THROW(model.encode(gaussian_matrix(3, 3, 1)), Error);
  EmbeddingMatrix bad = gaussian_matrix(20, 3, 1);
  bad(3, 1) = std::nanf("");
  EXPECT_THROW(model.fit(bad), InputError);
}

}  // namespace
}  // namespace twistar
