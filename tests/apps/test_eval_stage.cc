#include <gtest/gtest.h>

#include <cmath>

#include "apps/pipeline.h"

namespace twistar {
namespace {

EvalResult plan_result(const std::string& name, std::vector<int> ranks, double mean_ms) {
  EvalResult r;
  r.system = name;
  r.ranks = std::move(ranks);
  if (mean_ms > 0) {
    r.latency.count = 10;
    r.latency.mean = mean_ms;
  }
  return r;
}

TEST(OracleRouter, PicksEachUsersBestPlanTheCheaperAmongTiesAndHasNoLatencyWhenAPlanWasNotTimed) {
  // user 0: fast_rank and fast_rank_slow tie at rank 1; user 1: slow and fast_rank_slow tie at rank 2,
  // and here fast_rank_slow is timed cheaper; user 2: only fast_only finds the target; user 3: none does.
  auto plans = [](double slow_ms) {
    return std::vector<EvalResult>{plan_result("fast_only", {3, 0, 1, 0}, slow_ms > 0 ? 1 : 0),
                                   plan_result("fast_rank", {1, 0, 0, 0}, slow_ms > 0 ? 2 : 0),
                                   plan_result("slow", {0, 2, 0, 0}, slow_ms),
                                   plan_result("fast_rank_slow", {1, 2, 0, 0}, slow_ms > 0 ? 30 : 0)};
  };
  const auto timed = oracle_router(plans(40));
  ASSERT_TRUE(timed);
  EXPECT_EQ(timed->ranks, (std::vector<int>{1, 2, 1, 0}));
  EXPECT_NEAR(timed->metrics.at("ndcg@10"), (2.0 + 1.0 / std::log2(3.0)) / 4, 1e-12);
  EXPECT_EQ(timed->latency.count, 4u);
  EXPECT_NEAR(timed->latency.mean, (2.0 + 30.0 + 1.0 + 1.0) / 4, 1e-12);
  EXPECT_DOUBLE_EQ(timed->extra.at("plan_shares").at("fast_rank_slow").get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(timed->extra.at("plan_shares").at("slow").get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(timed->extra.at("slow_rate").get<double>(), 0.25);
  // Untimed (--latency-requests 0): the same lists, no latency, ties to the plan first in enum Plan.
  const auto untimed = oracle_router(plans(0));
  ASSERT_TRUE(untimed);
  EXPECT_EQ(untimed->ranks, timed->ranks);
  EXPECT_EQ(untimed->latency.count, 0u);
  EXPECT_FALSE(untimed->extra.contains("latency_note"));
  EXPECT_DOUBLE_EQ(untimed->extra.at("plan_shares").at("slow").get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(untimed->extra.at("plan_shares").at("fast_rank_slow").get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(untimed->extra.at("plan_shares").at("fast_only").get<double>(), 0.5);
  // slow is needed; plans over different users are refused.
  auto no_slow = plans(40);
  no_slow.erase(no_slow.begin() + 2);
  EXPECT_FALSE(oracle_router(no_slow));
  auto short_plan = plans(40);
  short_plan[3].ranks.pop_back();
  EXPECT_FALSE(oracle_router(short_plan));
}

}  // namespace
}  // namespace twistar
