#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "text/item_text.h"
#include "text/tfidf.h"

namespace twistar {
namespace {

using Tokens = std::vector<std::string>;

TEST(TfidfTokens, TokenizeLowercasesAndSplitsOnPunctuation) {
  EXPECT_EQ(tokenize("Nail-Polish, OPI's 2x!"), (Tokens{"nail", "polish", "opi", "s", "2x"}));
  EXPECT_EQ(tokenize("  "), Tokens{});
  EXPECT_EQ(tokenize("Crème brûlée"), (Tokens{"crème", "brûlée"}));  // UTF-8 stays whole.
}

TEST(TfidfTokens, ItemTokensCoverFieldsBrandAndCategoryPrefixes) {
  ItemMeta item;
  item.title = "Top Coat";
  item.short_text = "quick dry";
  item.brand = " OPI ";
  item.categories = {"Makeup", "Nails", "Nail Polish"};
  item.description = "A glossy finish for any nail polish";
  EXPECT_EQ(item_tokens(item), (Tokens{"top",
                                       "coat",
                                       "quick",
                                       "dry",
                                       "brand:OPI",
                                       "opi",
                                       "cat:Makeup",
                                       "makeup",
                                       "cat:Makeup>Nails",
                                       "nails",
                                       "cat:Makeup>Nails>Nail Polish",
                                       "nail",
                                       "polish",
                                       "a",
                                       "glossy",
                                       "finish",
                                       "for",
                                       "any",
                                       "nail",
                                       "polish"}));
  ItemTextOptions o;
  o.description = false;
  o.categories = false;
  EXPECT_EQ(item_tokens(item, o), (Tokens{"top", "coat", "quick", "dry", "brand:OPI", "opi"}));
  o = {};
  o.max_description_tokens = 2;
  EXPECT_EQ(item_tokens(item, o).back(), "glossy");
  EXPECT_TRUE(item_tokens(ItemMeta{}).empty());
  o.max_description_tokens = -1;
  EXPECT_THROW(o.validate(), InputError);
}

TEST(Tfidf, WeightsFollowTheFormula) {
  // "a" is in 3 of 3 documents, "b" in 2, "c" in 1 (dropped by min_df = 2).
  std::vector<Tokens> docs = {{"a", "b", "b", "c"}, {"a", "b"}, {"a"}};
  const Tfidf t = build_tfidf(docs);
  ASSERT_EQ(t.vocabulary, (Tokens{"a", "b"}));
  const double idf_a = std::log(4.0 / 4.0) + 1.0, idf_b = std::log(4.0 / 3.0) + 1.0;
  EXPECT_NEAR(t.idf[0], idf_a, 1e-6);
  EXPECT_NEAR(t.idf[1], idf_b, 1e-6);
  const double wa = idf_a, wb = (1.0 + std::log(2.0)) * idf_b;
  const double norm = std::sqrt(wa * wa + wb * wb);
  EXPECT_NEAR(t.matrix.coeff(0, 0), wa / norm, 1e-6);
  EXPECT_NEAR(t.matrix.coeff(0, 1), wb / norm, 1e-6);
  EXPECT_NEAR(t.matrix.coeff(2, 0), 1.0, 1e-6);
  EXPECT_EQ(t.matrix.coeff(2, 1), 0.0f);
}

TEST(Tfidf, RawCountsWithoutSmoothingOrNormalisation) {
  TfidfOptions o;
  o.sublinear_tf = false;
  o.smooth_idf = false;
  o.normalize = false;
  o.min_df = 1;
  const Tfidf t = build_tfidf({{"x", "x", "x", "y"}, {"y"}}, o);
  ASSERT_EQ(t.vocabulary, (Tokens{"x", "y"}));
  EXPECT_NEAR(t.matrix.coeff(0, 0), 3.0 * (std::log(2.0) + 1.0), 1e-5);
  EXPECT_NEAR(t.matrix.coeff(1, 1), 1.0, 1e-6);
}

TEST(Tfidf, RareTokensLeaveEmptyRowsAndCommonOnesCanBeCut) {
  std::vector<Tokens> docs = {{"unique"}, {}, {"the", "hair"}, {"the", "hair"}, {"the", "nail"}};
  const Tfidf t = build_tfidf(docs);
  EXPECT_EQ(t.matrix.rows(), 5);
  EXPECT_EQ(t.matrix.row(0).nonZeros(), 0);
  EXPECT_EQ(t.matrix.row(1).nonZeros(), 0);
  EXPECT_EQ(t.vocabulary, (Tokens{"hair", "the"}));
  TfidfOptions o;
  o.max_df_ratio = 0.5;
  EXPECT_EQ(build_tfidf(docs, o).vocabulary, (Tokens{"hair"}));
  o.min_df = 0;
  EXPECT_THROW(build_tfidf(docs, o), InputError);
}

}  // namespace
}  // namespace twistar
