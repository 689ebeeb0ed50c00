#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "data/recommender.h"
#include "eval/latency.h"
#include "eval/metrics.h"

namespace twistar {
namespace {

TEST(Metrics, SingleTargetValues) {
  MetricAccumulator acc;
  acc.add_rank(1);   // hit everywhere
  acc.add_rank(3);   // in @5, @10
  acc.add_rank(7);   // in @10 only
  acc.add_rank(0);   // missed
  auto m = acc.summary();
  EXPECT_DOUBLE_EQ(m["recall@1"], 0.25);
  EXPECT_DOUBLE_EQ(m["recall@5"], 0.5);
  EXPECT_DOUBLE_EQ(m["recall@10"], 0.75);
  EXPECT_NEAR(m["ndcg@5"], (1.0 + 1.0 / std::log2(4.0)) / 4, 1e-12);
  EXPECT_NEAR(m["ndcg@10"], (1.0 + 1.0 / std::log2(4.0) + 1.0 / std::log2(8.0)) / 4, 1e-12);
}

TEST(Metrics, RankOf) {
  Ranking r = {{5, 1.0f}, {2, 0.5f}, {9, 0.1f}};
  EXPECT_EQ(rank_of(r, 5), 1);
  EXPECT_EQ(rank_of(r, 9), 3);
  EXPECT_EQ(rank_of(r, 4), 0);
  EXPECT_DOUBLE_EQ(ndcg_at(0, 10), 0.0);
  EXPECT_DOUBLE_EQ(ndcg_at(11, 10), 0.0);
}

TEST(Metrics, TopKScoresMatchesFullSort) {
  std::mt19937 rng(1);
  std::vector<float> scores(500);
  for (auto& s : scores) s = static_cast<float>(rng() % 50);  // many ties
  Sequence history = {3, 17, 42, 42};
  RecommendOptions o;
  o.k = 20;
  auto top = top_k_scores(scores.data(), 500, history, o);
  std::vector<int> order(500);
  std::iota(order.begin(), order.end(), 0);
  order.erase(std::remove_if(order.begin(), order.end(),
                             [](int i) { return i == 3 || i == 17 || i == 42; }),
              order.end());
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return scores[a] > scores[b]; });
  ASSERT_EQ(top.size(), 20u);
  for (int r = 0; r < 20; ++r) EXPECT_EQ(top[r].item, order[r]);
  o.exclude_history = false;
  auto with_hist = top_k_scores(scores.data(), 500, history, o);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return scores[a] > scores[b]; });
  EXPECT_EQ(with_hist.size(), 20u);
}

TEST(Latency, Percentiles) {
  std::vector<double> s(101);
  std::iota(s.begin(), s.end(), 0.0);
  auto st = summarize_latency(s);
  EXPECT_DOUBLE_EQ(st.p50, 50.0);
  EXPECT_DOUBLE_EQ(st.p99, 99.0);
  EXPECT_DOUBLE_EQ(st.mean, 50.0);
  EXPECT_EQ(st.count, 101u);
}

}  // namespace
}  // namespace twistar
