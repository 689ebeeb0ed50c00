#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "core/error.h"
#include "core/progress.h"
#include "sid/rqvae.h"
#include "sid/sid_map.h"
#include "test_util.h"

namespace twistar {
namespace {

struct Clusters {
  EmbeddingMatrix points;
  std::vector<int> label;
};

// `k` well-separated Gaussian blobs (centres ~N(0, 1), noise sd `noise`) in `dim` dimensions: the
// scale of unit-length embeddings (times sqrt(dim)).
Clusters blobs(int k, int per, int dim, uint32_t seed, float noise = 0.01f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  EmbeddingMatrix centers(k, dim);
  for (Eigen::Index i = 0; i < centers.size(); ++i) centers.data()[i] = normal(rng);
  Clusters c;
  c.points.resize(k * per, dim);
  for (int i = 0; i < k * per; ++i) {
    c.label.push_back(i % k);
    for (int d = 0; d < dim; ++d) c.points(i, d) = centers(i % k, d) + noise * normal(rng);
  }
  return c;
}

RqvaeOptions small_options() {
  RqvaeOptions o;
  o.levels = 2;
  o.codebook_size = 8;
  o.latent_dim = 8;
  o.hidden = {32};
  o.epochs = 60;
  o.batch_size = 64;
  o.lr = 3e-3;
  o.threads = 1;
  return o;
}

TEST(Rqvae, FirstCodesMatchWellSeparatedClusters) {
  Progress::set_quiet(true);
  const Clusters data = blobs(8, 40, 16, 1);
  Rqvae model(small_options());
  model.fit(data.points);
  const CodeMatrix codes = model.encode(data.points);
  ASSERT_EQ(codes.rows(), data.points.rows());
  ASSERT_EQ(codes.cols(), 2);
  // Same first code iff same cluster: a bijection between clusters and level-1 codes.
  std::map<int, int32_t> code_of;
  std::set<int32_t> used;
  for (Eigen::Index i = 0; i < codes.rows(); ++i) {
    auto [it, inserted] = code_of.emplace(data.label[i], codes(i, 0));
    ASSERT_EQ(it->second, codes(i, 0)) << "point " << i << " of cluster " << data.label[i];
    if (inserted) ASSERT_TRUE(used.insert(codes(i, 0)).second) << "two clusters share a code";
  }
}

TEST(Rqvae, ReconstructionLossDecreases) {
  Progress::set_quiet(true);
  const Clusters data = blobs(8, 40, 16, 2);
  Rqvae model(small_options());
  model.fit(data.points);
  const auto& stats = model.train_stats();
  ASSERT_EQ(stats.epochs, 60);
  ASSERT_EQ(stats.recon_loss.size(), 60u);
  EXPECT_LT(stats.recon_loss.back(), 0.5 * stats.recon_loss.front());
  // The decoder output of the codes is close to the input relative to its spread (variance ~1).
  const EmbeddingMatrix recon = model.reconstruct(data.points);
  EXPECT_LT((recon - data.points).squaredNorm() / data.points.size(), 0.02);
}

TEST(Rqvae, SaveLoadGivesIdenticalCodes) {
  Progress::set_quiet(true);
  testing::TempDir dir;
  const Clusters data = blobs(6, 30, 12, 3);
  RqvaeOptions o = small_options();
  o.epochs = 20;
  Rqvae model(o);
  model.fit(data.points);
  model.save(dir.path());
  const Rqvae loaded = Rqvae::load(dir.path());
  EXPECT_EQ(loaded.levels(), model.levels());
  EXPECT_EQ(loaded.codebook_size(), model.codebook_size());
  EXPECT_EQ(loaded.dim(), 12);
  EXPECT_EQ(loaded.encode(data.points), model.encode(data.points));
  EXPECT_TRUE(loaded.reconstruct(data.points).isApprox(model.reconstruct(data.points)));
  EXPECT_TRUE(loaded.codebook(1).isApprox(model.codebook(1)));
}

TEST(Rqvae, SameSeedSameCodes) {
  Progress::set_quiet(true);
  const Clusters data = blobs(6, 30, 12, 4);
  RqvaeOptions o = small_options();
  o.epochs = 10;
  Rqvae a(o), b(o);
  a.fit(data.points);
  b.fit(data.points);
  EXPECT_EQ(a.encode(data.points), b.encode(data.points));
}

TEST(Rqvae, UniqueLastLevelRemovesCollisionsThatFit) {
  Progress::set_quiet(true);
  // 6 blobs x 30 tight points: two levels of 8 codes cannot separate 30 near-identical points by
  // argmin, but each blob (30 items) fits in the 32-code last level.
  const Clusters data = blobs(6, 30, 12, 5);
  RqvaeOptions o = small_options();
  o.codebook_size = 32;
  o.epochs = 20;
  Rqvae plain(o);
  plain.fit(data.points);
  o.unique_last_level = true;
  Rqvae unique(o);
  unique.fit(data.points);
  const CodeMatrix argmin = plain.encode(data.points);
  const CodeMatrix matched = unique.encode(data.points);
  // Same seed, same training: the matching only changes last codes.
  EXPECT_EQ(argmin.col(0), matched.col(0));
  EXPECT_GT(sid_stats(argmin, {32, 32}).collision_rate, 0.0);
  const SidStats s = sid_stats(matched, {32, 32});
  EXPECT_EQ(s.collision_rate, 0.0) << s.to_json().dump();
}

TEST(Rqvae, DeadCodesAreReseeded) {
  Progress::set_quiet(true);
  // 3 distinct points, each 50 times, but 8 codes per level: each level sees about 3 distinct
  // inputs (batched matrix products may split identical rows in the last bit), so at least 4 of
  // its codes win no argmin and are re-seeded after every epoch, each level counted on its own.
  const Clusters data = blobs(3, 50, 8, 6, 0.0f);
  RqvaeOptions o = small_options();
  o.epochs = 30;
  Rqvae model(o);
  model.fit(data.points);
  EXPECT_GE(model.train_stats().dead_codes_reset, 30 * 2 * 4);
}

TEST(Rqvae, OptionsValidateAndRoundTrip) {
  RqvaeOptions o;
  o.latent_dim = 0;
  EXPECT_THROW(o.validate(), InputError);
  o = RqvaeOptions{};
  o.hidden = {64, -1};
  EXPECT_THROW(o.validate(), InputError);
  o = RqvaeOptions{};
  o.levels = 4;
  o.hidden = {128};
  o.unique_last_level = true;
  EXPECT_EQ(RqvaeOptions::from_json(o.to_json()).to_json(), o.to_json());
}

TEST(Rqvae, LoadErrorsNameTheFile) {
  testing::TempDir dir;
  try {
    Rqvae::load(dir.path());
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("rqvae.json"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace twistar
