#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "data/ranks.h"
#include "eval/report.h"
#include "eval/significance.h"

namespace twistar {
namespace {

TEST(Significance, IdenticalSystemsHaveAZeroIntervalAndPOne) {
  std::vector<int> ranks = {1, 0, 3, 12, 5, 0, 2};
  auto d = paired_bootstrap(ranks, ranks, "ndcg@10");
  EXPECT_DOUBLE_EQ(d.diff, 0.0);
  EXPECT_DOUBLE_EQ(d.lo, 0.0);
  EXPECT_DOUBLE_EQ(d.hi, 0.0);
  EXPECT_DOUBLE_EQ(d.p, 1.0);
  EXPECT_EQ(d.differing, 0u);
  EXPECT_EQ(d.requests, ranks.size());
}

TEST(Significance, TheDifferenceIsTheMeanOfPerRequestDifferences) {
  std::vector<int> a = {1, 0, 3, 11}, ref = {2, 1, 3, 0};
  auto d = paired_bootstrap(a, ref, "ndcg@10");
  const double want = ((ndcg_at(1, 10) - ndcg_at(2, 10)) + (0 - 1.0) + 0 + 0) / 4;
  EXPECT_NEAR(d.diff, want, 1e-12);
  EXPECT_EQ(d.differing, 2u);
  auto r = paired_bootstrap(a, ref, "recall@10");
  EXPECT_NEAR(r.diff, (0 - 1.0) / 4, 1e-12);  // rank 11 misses @10, rank 2 -> 1 both hit
  EXPECT_LE(d.lo, d.diff);
  EXPECT_GE(d.hi, d.diff);
}

TEST(Significance, AClearWinIsSignificantAndNoiseIsNot) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> rank(0, 20);
  std::vector<int> ref(4000), better(4000), noisy(4000);
  for (size_t i = 0; i < ref.size(); ++i) {
    ref[i] = rank(rng);
    better[i] = i % 4 == 0 ? 1 : ref[i];  // a hit at the top for a quarter of the requests
    noisy[i] = i % 50 == 0 ? rank(rng) : ref[i];
  }
  BootstrapOptions o;
  o.seed = 5;
  auto win = paired_bootstrap(better, ref, "ndcg@10", o);
  EXPECT_GT(win.lo, 0.0);
  EXPECT_LT(win.p, 0.01);
  auto tie = paired_bootstrap(noisy, ref, "ndcg@10", o);
  EXPECT_LT(tie.lo, 0.0);
  EXPECT_GT(tie.hi, 0.0);
  EXPECT_GT(tie.p, 0.05);
  // The same seed resamples the same requests.
  auto again = paired_bootstrap(better, ref, "ndcg@10", o);
  EXPECT_DOUBLE_EQ(again.lo, win.lo);
  EXPECT_DOUBLE_EQ(again.hi, win.hi);
}

TEST(Significance, TheLatencyRatioIsTheRatioOfMeansAndTheMachinesDriftCancels) {
  // The machine slows down fourfold over the run; each request costs the system a quarter of the
  // reference's time, give or take 20%, on the machine of that moment.
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  std::vector<double> system(1000), reference(1000);
  for (size_t i = 0; i < system.size(); ++i) {
    const double speed = 1.0 + 3.0 * static_cast<double>(i) / 999.0;
    reference[i] = 30.0 * speed * jitter(rng);
    system[i] = 0.25 * 30.0 * speed * jitter(rng);
  }
  BootstrapOptions o;
  o.seed = 3;
  auto r = latency_ratio(system, reference, "slow", o);
  EXPECT_EQ(r.reference, "slow");
  EXPECT_EQ(r.requests, 1000u);
  EXPECT_NEAR(r.ratio, r.mean_ms / r.reference_mean_ms, 1e-12);
  EXPECT_NEAR(r.ratio, 0.25, 0.01);
  EXPECT_LT(r.lo, r.ratio);
  EXPECT_GT(r.hi, r.ratio);
  EXPECT_LT(r.hi - r.lo, 0.02);
  // Timed in two passes instead, the second half of the reference against the first half of the
  // system, the drift alone moves the ratio far from a quarter.
  std::vector<double> early(system.begin(), system.begin() + 500), late(reference.begin() + 500, reference.end());
  EXPECT_LT(latency_ratio(early, late, "slow", o).ratio, 0.15);
  auto json = r.to_json();
  EXPECT_EQ(json["ci"].size(), 2u);
  EXPECT_DOUBLE_EQ(json["ratio"].get<double>(), r.ratio);
  EXPECT_THROW(latency_ratio({1.0, 2.0}, {1.0}, "slow"), InputError);
  EXPECT_THROW(latency_ratio({}, {}, "slow"), InputError);
  EXPECT_THROW(latency_ratio({1.0}, {0.0}, "slow"), InputError);
}

TEST(Significance, TheLatencyRatiosIntervalResamplesTurnsWhenTheMachinesStateIsSharedWithinATurn) {
  // Timed in 20 turns of 50 requests: within a turn the machine's state (what else runs on the host)
  // moves the system's cost against the reference's by up to 30% either way, the same for the whole
  // turn; requests differ by 10% on top.
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> state(0.7, 1.3), jitter(0.9, 1.1);
  std::vector<double> system, reference;
  for (int turn = 0; turn < 20; ++turn) {
    const double share = 0.25 * state(rng);
    for (int r = 0; r < 50; ++r) {
      reference.push_back(30.0 * jitter(rng));
      system.push_back(share * 30.0 * jitter(rng));
    }
  }
  BootstrapOptions o;
  o.seed = 5;
  const auto by_request = latency_ratio(system, reference, "slow", o);
  const auto by_turn = latency_ratio(system, reference, "slow", o, 50);
  EXPECT_EQ(by_turn.block, 50u);
  EXPECT_EQ(by_turn.turns, 20u);
  EXPECT_EQ(by_request.turns, 1000u);
  // The same ratio; the requests of a turn are not independent draws, so only the turns' interval
  // shows the machine's share of the variation.
  EXPECT_DOUBLE_EQ(by_turn.ratio, by_request.ratio);
  EXPECT_GT(by_turn.hi - by_turn.lo, 2.0 * (by_request.hi - by_request.lo));
  EXPECT_LT(by_turn.lo, by_turn.ratio);
  EXPECT_GT(by_turn.hi, by_turn.ratio);
  // A last, shorter turn is still a turn.
  EXPECT_EQ(latency_ratio(system, reference, "slow", o, 300).turns, 4u);
  EXPECT_EQ(by_turn.to_json()["turns"].get<size_t>(), 20u);
  EXPECT_THROW(latency_ratio(system, reference, "slow", o, 0), InputError);
  EXPECT_THROW(latency_ratio(system, reference, "slow", o, 1000), InputError);  // one turn: no interval
}

TEST(Significance, BadInputIsAnInputError) {
  std::vector<int> a = {1, 2}, b = {1};
  EXPECT_THROW(paired_bootstrap(a, b, "ndcg@10"), InputError);
  EXPECT_THROW(paired_bootstrap(a, a, "ndcg@0"), InputError);
  EXPECT_THROW(paired_bootstrap(a, a, "mrr@10"), InputError);
  EXPECT_THROW(paired_bootstrap(a, a, "ndcg@10x"), InputError);
  EXPECT_THROW(paired_bootstrap({}, {}, "ndcg@10"), InputError);
  BootstrapOptions few;
  few.resamples = 10;
  EXPECT_THROW(paired_bootstrap(a, a, "ndcg@10", few), InputError);
}

TEST(Significance, ComparisonsLandInTheReportAndItsTable) {
  EvalResult ref, other;
  ref.system = "twistar";
  ref.ranks = {1, 2, 0, 4};
  ref.metrics = {{"ndcg@10", 0.5}};
  other.system = "router_threshold";
  other.ranks = {1, 0, 0, 4};
  other.metrics = {{"ndcg@10", 0.4}};
  std::vector<EvalResult> results = {ref, other};
  EXPECT_THROW(add_paired_comparisons(results, "oracle", {}), InputError);
  add_paired_comparisons(results, "twistar", {});
  EXPECT_FALSE(results[0].extra.contains("paired"));
  const auto& p = results[1].extra.at("paired");
  EXPECT_EQ(p.at("reference"), "twistar");
  EXPECT_NEAR(p.at("ndcg@10").at("diff").get<double>(), -ndcg_at(2, 10) / 4, 1e-12);
  EXPECT_TRUE(p.contains("recall@10"));
  auto table = markdown_table(results_json({"e", "d", "test", "cmd", "m", "t"}, results));
  EXPECT_NE(table.find("ΔNDCG@10 vs twistar"), std::string::npos);
  EXPECT_NE(table.find("(reference)"), std::string::npos);
  std::vector<EvalResult> uneven = {ref, other};
  uneven[1].ranks.pop_back();
  add_paired_comparisons(uneven, "twistar", {});
  EXPECT_FALSE(uneven[1].extra.contains("paired"));
}

}  // namespace
}  // namespace twistar
