#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "graph/popularity.h"
#include "graph/swing.h"

namespace twistar {
namespace {

// Brute-force Swing straight from the definition, over all user pairs.
std::map<std::pair<int, int>, double> brute_swing(const std::vector<Sequence>& seqs,
                                                  const SwingOptions& o) {
  std::vector<std::set<ItemIndex>> sets;
  for (const auto& s : seqs) sets.emplace_back(s.begin(), s.end());
  std::map<std::pair<int, int>, double> out;
  for (size_t u = 0; u < sets.size(); ++u)
    for (size_t v = u + 1; v < sets.size(); ++v) {
      std::vector<ItemIndex> common;
      std::set_intersection(sets[u].begin(), sets[u].end(), sets[v].begin(), sets[v].end(),
                            std::back_inserter(common));
      double wu = std::pow(sets[u].size() + 5.0, -o.user_weight_power);
      double wv = std::pow(sets[v].size() + 5.0, -o.user_weight_power);
      double w = wu * wv / (o.alpha + common.size());
      for (ItemIndex i : common)
        for (ItemIndex j : common)
          if (i != j) out[{i, j}] += w;
    }
  return out;
}

TEST(Swing, MatchesBruteForceOnRandomData) {
  std::mt19937 rng(3);
  std::vector<Sequence> seqs(60);
  for (auto& s : seqs) {
    int n = 2 + rng() % 6;
    for (int k = 0; k < n; ++k) s.push_back(rng() % 25);
  }
  SwingOptions o;
  o.top_k = 1000;
  o.threads = 2;
  auto graph = build_swing(seqs, 25, o);
  auto expected = brute_swing(seqs, o);
  size_t seen = 0;
  for (int i = 0; i < 25; ++i) {
    for (const auto& n : graph.neighbors(i)) {
      ASSERT_TRUE(expected.count({i, n.item}));
      EXPECT_NEAR(n.score, (expected[{i, n.item}]), 1e-5);
      ++seen;
    }
    for (size_t k = 1; k < graph.neighbors(i).size(); ++k)
      EXPECT_GE(graph.neighbors(i)[k - 1].score, graph.neighbors(i)[k].score);
  }
  EXPECT_EQ(seen, expected.size());
}

TEST(Swing, TopKTruncatesToBest) {
  std::vector<Sequence> seqs = {{0, 1, 2}, {0, 1, 3}, {0, 1}, {0, 2}};
  SwingOptions o;
  o.top_k = 1;
  auto g = build_swing(seqs, 4, o);
  ASSERT_EQ(g.neighbors(0).size(), 1u);
  EXPECT_EQ(g.neighbors(0)[0].item, 1);  // 0 and 1 share the most user pairs
  EXPECT_GT(g.similarity(0, 1), 0.0f);
  EXPECT_EQ(g.similarity(0, 3), 0.0f);
}

TEST(Swing, RejectsBadOptions) {
  SwingOptions o;
  o.alpha = 0;
  EXPECT_ANY_THROW(build_swing({{0, 1}}, 2, o));
}

TEST(Popularity, CountsInteractions) {
  auto pop = item_popularity({{0, 1, 1}, {1, 2}}, 4);
  EXPECT_EQ(pop, (std::vector<float>{1, 3, 1, 0}));
}

}  // namespace
}  // namespace twistar
