#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "tune/tpe.h"

namespace twistar {
namespace {

SearchSpace toy_space() {
  return SearchSpace("toy",
                     {{"dim", AxisKind::kChoice, {32, 64, 128, 256}},
                      {"dropout", AxisKind::kUniform, {}, 0.0, 0.8, 0.1},
                      {"lr", AxisKind::kLog, {}, 1e-4, 3e-2, 2.0},
                      {"weight_decay", AxisKind::kChoice, {0, 1e-4, 1e-3, 1e-2, 1e-1}}},
                     {{"dim", 64}, {"dropout", 0.5}, {"lr", 3e-3}, {"weight_decay", 0}});
}

/// A smooth objective (as hyper-parameter responses tend to be) with its optimum at lr = 10^-2.5,
/// dropout 0.3, dim 128, weight decay 1e-3.
double objective(const ParamSet& p) {
  double lr = std::log10(p.at("lr")) + 2.5;
  double dropout = p.at("dropout") - 0.3;
  double dim = std::log2(p.at("dim") / 128);
  double wd = 0.1 * std::fabs(std::log10(p.at("weight_decay") + 1e-5) + 3);
  return 1.0 - lr * lr - 4 * dropout * dropout - 0.3 * std::fabs(dim) - wd;
}

double best_after(int trials, bool tpe, uint64_t seed) {
  SearchSpace space = toy_space();
  std::mt19937_64 rng(seed);
  TpeOptions o;
  o.startup = 5;
  std::vector<ScoredParams> history;
  double best = -1e9;
  for (int t = 0; t < trials; ++t) {
    ParamSet p = tpe ? tpe_propose(space, history, o, rng) : space.sample(rng);
    history.push_back({p, objective(p)});
    best = std::max(best, history.back().score);
  }
  return best;
}

TEST(Tpe, BeatsRandomSearchOnASyntheticObjective) {
  // Same budget, ten fixed seeds: TPE's mean best must exceed random search's. A TPE that picked
  // min l/g, swapped l and g or ignored the history would not.
  double tpe = 0, random = 0;
  int tpe_wins = 0;
  for (uint64_t seed = 0; seed < 10; ++seed) {
    double a = best_after(30, true, seed), b = best_after(30, false, seed);
    tpe += a / 10;
    random += b / 10;
    tpe_wins += a > b;
  }
  EXPECT_GT(tpe, random);
  EXPECT_GE(tpe_wins, 6);
}

TEST(Tpe, DensityRatioFavoursTheGoodRegion) {
  SearchSpace space = toy_space();
  std::vector<ScoredParams> history;
  for (int i = 0; i <= 16; ++i) {
    ParamSet p = space.defaults();
    p["dropout"] = 0.05 * i;
    history.push_back({p, -std::fabs(p["dropout"] - 0.3)});
  }
  ParamSet good = space.defaults(), bad = space.defaults();
  good["dropout"] = 0.3;
  bad["dropout"] = 0.75;
  TpeOptions o;
  EXPECT_GT(tpe_log_ratio(space, history, o, good), tpe_log_ratio(space, history, o, bad));
  // After start-up, proposals come from l: most land near the good dropouts.
  std::mt19937_64 rng(3);
  int near = 0;
  for (int i = 0; i < 20; ++i) near += std::fabs(tpe_propose(space, history, o, rng).at("dropout") - 0.3) <= 0.2;
  EXPECT_GE(near, 15);
}

TEST(Tpe, StartsWithRandomSamplesInsideTheSpace) {
  SearchSpace space = toy_space();
  std::mt19937_64 rng(1);
  for (int i = 0; i < 50; ++i) {
    ParamSet p = tpe_propose(space, {}, TpeOptions{}, rng);
    EXPECT_GE(p["lr"], 1e-4);
    EXPECT_LE(p["lr"], 3e-2);
    EXPECT_NO_THROW(space.from_json(SearchSpace::to_json(p), "sample"));
  }
}

TEST(SearchSpace, StepsSnapsAndValidates) {
  SearchSpace space = toy_space();
  ParamSet d = space.defaults();
  EXPECT_EQ(space.step(d, "dim", 1)->at("dim"), 128);
  EXPECT_EQ(space.step(d, "dim", -1)->at("dim"), 32);
  EXPECT_FALSE(space.step(space.step(d, "dim", -1).value(), "dim", -1).has_value());
  EXPECT_DOUBLE_EQ(space.step(d, "lr", 1)->at("lr"), 6e-3);
  EXPECT_DOUBLE_EQ(space.step(d, "dropout", -1)->at("dropout"), 0.4);
  EXPECT_EQ(space.snap({{"dim", 100}}).at("dim"), 128);
  EXPECT_EQ(space.snap({{"dim", 100}}).at("lr"), 3e-3);
  try {
    space.from_json({{"dim", 100}}, "llm reply");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("llm reply: dim"), std::string::npos) << e.what();
  }
  EXPECT_THROW(space.from_json({{"depth", 2}}, "x"), InputError);
  EXPECT_THROW(space.from_json({{"lr", 1.0}}, "x"), InputError);
  EXPECT_THROW(space.from_json({{"lr", "fast"}}, "x"), InputError);
}

}  // namespace
}  // namespace twistar
