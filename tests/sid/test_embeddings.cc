#include <gtest/gtest.h>

#include <Eigen/QR>

#include <random>

#include "core/atomic_file.h"
#include "core/error.h"
#include "sid/embeddings.h"
#include "sid/npy.h"
#include "sid/randomized_svd.h"
#include "test_util.h"

namespace twistar {
namespace {

Eigen::MatrixXd random_orthonormal(int rows, int cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  Eigen::MatrixXd m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(m);
  return qr.householderQ() * Eigen::MatrixXd::Identity(rows, cols);
}

float cosine(const EmbeddingMatrix& m, int a, int b) {
  return m.row(a).dot(m.row(b)) / (m.row(a).norm() * m.row(b).norm());
}

TEST(EmbeddingSvd, RecoversTheSingularValuesOfALowRankMatrix) {
  const Eigen::VectorXd s = (Eigen::VectorXd(5) << 10, 7, 5, 2, 0.5).finished();
  const Eigen::MatrixXd u = random_orthonormal(300, 5, 1), v = random_orthonormal(120, 5, 2);
  const Eigen::MatrixXd a = u * s.asDiagonal() * v.transpose();
  RandomizedSvdOptions o;
  o.rank = 5;
  const TruncatedSvd dense = randomized_svd(a, o);
  ASSERT_EQ(dense.singular_values.size(), 5);
  for (int k = 0; k < 5; ++k) EXPECT_NEAR(dense.singular_values[k], s[k], 1e-9 * s[0]);
  EXPECT_LT((dense.u * dense.singular_values.asDiagonal() * dense.v.transpose() - a).norm(), 1e-8);
  EXPECT_LT((dense.u.transpose() * dense.u - Eigen::MatrixXd::Identity(5, 5)).norm(), 1e-9);

  const Eigen::SparseMatrix<double, Eigen::RowMajor> sparse = a.sparseView();
  const TruncatedSvd from_sparse = randomized_svd(sparse, o);
  EXPECT_LT((from_sparse.singular_values - s).norm(), 1e-8);
  o.rank = 3;  // Truncation keeps the leading triplets.
  EXPECT_LT((randomized_svd(a, o).singular_values - s.head(3)).norm(), 1e-8);
  o.rank = 50;  // Capped at min(rows, cols); the extra values are ~0.
  const TruncatedSvd capped = randomized_svd(Eigen::MatrixXd(a.topRows(7)), o);
  EXPECT_EQ(capped.singular_values.size(), 7);
}

std::vector<ItemMeta> tiny_catalogue() {
  auto item = [](std::string short_text, std::vector<std::string> categories) {
    ItemMeta m;
    m.short_text = std::move(short_text);
    m.categories = std::move(categories);
    return m;
  };
  return {item("red nail polish glossy", {"Makeup", "Nails"}),
          item("pink nail polish glossy", {"Makeup", "Nails"}),
          item("nail polish remover", {"Makeup", "Nails"}),
          item("shampoo for dry hair", {"Hair Care", "Shampoo"}),
          item("volume shampoo for fine hair", {"Hair Care", "Shampoo"}),
          item("hair conditioner", {"Hair Care", "Conditioner"}),
          item("face cream spf", {"Skin Care", "Face"}),
          item("night face cream", {"Skin Care", "Face"}),
          ItemMeta{},
          item("zyzzyva", {})};
}

TEST(EmbeddingContent, ItemsSharingWordsAreCloserThanUnrelatedOnes) {
  ContentEmbeddingOptions o;
  o.dim = 6;
  const auto emb = content_embeddings(tiny_catalogue(), o);
  ASSERT_EQ(emb.matrix.rows(), 10);
  ASSERT_EQ(emb.matrix.cols(), 6);
  EXPECT_GT(cosine(emb.matrix, 0, 1), cosine(emb.matrix, 0, 3) + 0.5);
  EXPECT_GT(cosine(emb.matrix, 3, 4), cosine(emb.matrix, 3, 6) + 0.5);
  EXPECT_GT(cosine(emb.matrix, 6, 7), cosine(emb.matrix, 6, 1) + 0.5);
  // Item 8 has no text, item 9 only a token no other item has.
  EXPECT_EQ(emb.without_text, (std::vector<ItemIndex>{8, 9}));
  EXPECT_EQ(emb.matrix.row(8).norm(), 0.0f);
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(emb.matrix.row(i).norm(), 1.0f, 1e-5f);
  for (size_t k = 1; k < emb.singular_values.size(); ++k)
    EXPECT_LE(emb.singular_values[k], emb.singular_values[k - 1] + 1e-6f);
}

TEST(EmbeddingContent, DimensionBeyondTheRankIsZeroPadded) {
  ContentEmbeddingOptions o;
  o.dim = 64;  // The tiny vocabulary has far fewer than 64 tokens.
  const auto emb = content_embeddings(tiny_catalogue(), o);
  EXPECT_EQ(emb.matrix.cols(), 64);
  EXPECT_LT(emb.vocabulary_size, 64);
  EXPECT_EQ(emb.matrix.rightCols(64 - emb.vocabulary_size).norm(), 0.0f);
  o.dim = 0;
  EXPECT_THROW(content_embeddings(tiny_catalogue(), o), InputError);
}

TEST(EmbeddingNpy, RoundTripWritesNumpysHeader) {
  testing::TempDir dir;
  EmbeddingMatrix m(2, 3);
  m << 1, 2, 3, 4.5f, -5, 6;
  save_npy(dir / "m.npy", m);
  const std::string bytes = read_file(dir / "m.npy");
  ASSERT_EQ(bytes.size(), 128u + 24u);  // Header padded to 64 bytes, as numpy writes it.
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_EQ(bytes.substr(10, dict.size()), dict);
  EXPECT_EQ(bytes[127], '\n');
  EXPECT_EQ(load_npy(dir / "m.npy"), m);
  EXPECT_EQ(external_embeddings(dir / "m.npy", 2), m);
}

// A hand-made file: version `major`, the given dict, then `data`.
std::string npy_file(int major, const std::string& dict, const std::string& data) {
  std::string out("\x93NUMPY", 6);
  out.push_back(static_cast<char>(major));
  out.push_back('\0');
  const uint32_t len = static_cast<uint32_t>(dict.size());
  out.append(reinterpret_cast<const char*>(&len), major == 1 ? 2 : 4);
  return out + dict + data;
}

std::string floats(std::vector<float> v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

TEST(EmbeddingNpy, ReadsVersion2AndFortranOrder) {
  testing::TempDir dir;
  testing::write_text(dir / "f.npy",
                      npy_file(2, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n",
                               floats({1, 4, 2, 5, 3, 6})));
  EmbeddingMatrix expected(2, 3);
  expected << 1, 2, 3, 4, 5, 6;
  EXPECT_EQ(load_npy(dir / "f.npy"), expected);
}

TEST(EmbeddingNpy, MalformedFilesGiveErrorsNamingTheFile) {
  testing::TempDir dir;
  auto expect_error = [&](const std::string& content, const std::string& fragment) {
    testing::write_text(dir / "e.npy", content);
    try {
      external_embeddings(dir / "e.npy", 2);
      FAIL() << "accepted: " << fragment;
    } catch (const InputError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("e.npy"), std::string::npos) << what;
      EXPECT_NE(what.find(fragment), std::string::npos) << what;
    }
  };
  const std::string six = floats({1, 2, 3, 4, 5, 6});
  expect_error("not numpy at all", "bad magic");
  expect_error(npy_file(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", six),
               "'<f8' is not float32");
  expect_error(npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", six),
               "expected a 2-D matrix");
  expect_error(npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }", six),
               "data bytes for shape (2, 4)");
  expect_error(npy_file(1, "{'descr': '<f4', 'shape': (2, 3), }", six), "fortran_order");
  expect_error(npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", six),
               "3 rows, but the dataset has 2 items");
  expect_error(
      npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", six).substr(0, 12),
      "truncated");
  expect_error(npy_file(5, "{}", ""), "version 5");
}

TEST(EmbeddingHybrid, WeightScalesTheNormalisedCollaborativePart) {
  EmbeddingMatrix content(2, 2), collab(2, 3);
  content << 3, 4, 0, 0;
  collab << 0, 2, 0, 1, 1, 1;
  const EmbeddingMatrix h = hybrid_embeddings(content, collab, 0.5f);
  ASSERT_EQ(h.cols(), 5);
  EXPECT_TRUE(h.row(0).isApprox((Eigen::RowVectorXf(5) << 0.6f, 0.8f, 0, 0.5f, 0).finished()));
  EXPECT_NEAR(h.row(1).head(2).norm(), 0.0f, 0.0f);  // No text: the collaborative part carries.
  EXPECT_NEAR(h.row(1).tail(3).norm(), 0.5f, 1e-6f);
  EXPECT_EQ(hybrid_embeddings(content, collab, 0.0f).rightCols(3).norm(), 0.0f);
  EXPECT_THROW(hybrid_embeddings(content, collab, -1.0f), InputError);
  EXPECT_THROW(hybrid_embeddings(content, collab.topRows(1), 1.0f), InputError);
}

TEST(EmbeddingCollaborative, ValidatesAndNormalisesTheTable) {
  EmbeddingMatrix table(3, 2);
  table << 3, 4, 0, 0, 1, 0;
  const auto out = collaborative_embeddings(table, 3);
  EXPECT_NEAR(out(0, 0), 0.6f, 1e-6f);
  EXPECT_EQ(out.row(1).norm(), 0.0f);
  EXPECT_THROW(collaborative_embeddings(table, 4, "sasrec"), InputError);
  table(2, 1) = std::nanf("");
  EXPECT_THROW(collaborative_embeddings(table, 3), InputError);
}

TEST(EmbeddingSwing, CommunitiesOfTheGraphStayTogether) {
  // Items 0-4 are co-consumed with each other, 5-9 likewise, with one weak bridge.
  std::vector<std::vector<Neighbor>> rows(10);
  for (int i = 0; i < 10; ++i)
    for (int j = 0; j < 10; ++j)
      if (i != j && (i < 5) == (j < 5)) rows[i].push_back({j, 1.0f + 0.1f * ((i + j) % 3)});
  rows[4].push_back({5, 0.05f});
  const auto emb = swing_embeddings(ItemGraph(rows), 4);
  ASSERT_EQ(emb.rows(), 10);
  EXPECT_GT(cosine(emb, 0, 1), cosine(emb, 0, 7) + 0.5f);
  EXPECT_GT(cosine(emb, 6, 9), cosine(emb, 2, 9) + 0.5f);
}

}  // namespace
}  // namespace twistar
