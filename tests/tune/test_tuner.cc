#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "fixtures.h"
#include "test_util.h"
#include "tune/fake_runner.h"
#include "tune/tuner.h"

namespace twistar {
namespace {

using testing::FakeRunner;
using testing::TempDir;
using testing::tune_options;
namespace fs = std::filesystem;

TEST(Tuner, RuleBasedTuningTestsOneHypothesisPerTrialAndReportsOnce) {
  TempDir dir;
  Dataset data = testing::cycle_dataset(20, 10, 5);
  FakeRunner runner;
  auto r = run_tune(data, runner, TrialBudget{}, tune_options(dir, "tune", 8));
  ASSERT_TRUE(r.finished);
  ASSERT_EQ(r.trials.size(), 8u);
  EXPECT_EQ(r.trials[0].hypothesis.source, "baseline");
  EXPECT_EQ(r.trials[0].params, runner.space().defaults());
  std::set<ParamSet> seen;
  std::set<std::string> axes;
  for (size_t i = 1; i < r.trials.size(); ++i) {
    const auto& t = r.trials[i];
    EXPECT_TRUE(seen.insert(t.params).second) << "trial " << t.index << " repeats a configuration";
    EXPECT_GE(t.hypothesis.parent, 1);
    // One hypothesis: one axis (or a related pair) changed from the parent.
    EXPECT_GE(t.reflection.changes.size(), 1u);
    EXPECT_LE(t.reflection.changes.size(), 2u);
    EXPECT_FALSE(t.hypothesis.text.empty());
    EXPECT_FALSE(t.reflection.rule.empty());
    for (const auto& c : t.reflection.changes) axes.insert(c.axis);
  }
  EXPECT_GE(axes.size(), 3u) << "coverage: several axes must be tried";
  double best = 0;
  for (const auto& t : r.trials) best = std::max(best, t.outcome.valid);
  EXPECT_GT(best, FakeRunner::objective(runner.space().defaults()));
  EXPECT_EQ(runner.tests, 1);
  EXPECT_EQ(r.report["best"]["id"], r.best_id);
  EXPECT_TRUE(fs::exists(dir / "run" / "tune_report.md"));
  EXPECT_TRUE(fs::exists(dir / "memory" / "heuristics.json"));

  // Rerunning a finished run trains nothing and does not read the test split again.
  FakeRunner again;
  auto r2 = run_tune(data, again, TrialBudget{}, tune_options(dir, "tune", 8));
  EXPECT_TRUE(again.trained.empty());
  EXPECT_EQ(again.tests, 0);
  EXPECT_EQ(r2.best_id, r.best_id);

  // A new run on the same memory starts by retraining the best remembered configuration.
  FakeRunner next;
  auto r3 = run_tune(data, next, TrialBudget{}, tune_options(dir, "tune", 2, "run2"));
  EXPECT_EQ(r3.trials[0].hypothesis.source, "memory");
  EXPECT_EQ(r3.trials[0].params, r.report["best"]["params"].get<ParamSet>());
  EXPECT_NE(r3.trials[1].params, r3.trials[0].params);
}

/// Every single-axis change of a run as (axis, direction, from-value), with whether it hurt.
struct Step {
  std::string axis;
  int direction;
  double from;
  bool hurt;
  std::string source;
};

std::vector<Step> single_steps(const std::vector<TrialRecord>& trials) {
  std::vector<Step> out;
  for (const auto& t : trials)
    if (t.reflection.changes.size() == 1) {
      const auto& c = t.reflection.changes[0];
      out.push_back({c.axis, c.direction, c.from, t.reflection.verdict == "hurt", t.hypothesis.source});
    }
  return out;
}

TEST(Tuner, RulesDoNotRepeatAChangeThatHurtAndMakeRoomForNewAxes) {
  TempDir dir;
  Dataset data = testing::cycle_dataset(20, 10, 5);
  FakeRunner runner;
  auto r = run_tune(data, runner, TrialBudget{}, tune_options(dir, "tune", 10));
  ASSERT_EQ(r.trials.size(), 10u);
  auto steps = single_steps(r.trials);
  for (size_t i = 0; i < steps.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      EXPECT_FALSE(steps[j].hurt && steps[j].axis == steps[i].axis && steps[j].direction == steps[i].direction &&
                   steps[j].from == steps[i].from)
          << "step " << i << " repeats " << steps[i].axis << " from " << steps[i].from << ", which hurt before";
  // Coverage gets a turn at least every third trial while untried axes remain (4 axes here).
  int since = 0;
  std::set<std::string> axes;
  for (size_t i = 1; i < r.trials.size() && axes.size() < 4; ++i) {
    const auto& t = r.trials[i];
    bool fresh = false;
    for (const auto& c : t.reflection.changes) fresh |= axes.insert(c.axis).second;
    since = fresh ? 0 : since + 1;
    EXPECT_LE(since, 2) << "trial " << t.index << ": three trials in a row without a new axis";
  }
}

TEST(Tuner, ABudgetBoundUnderfittingModelIsMadeCheaperPerEpoch) {
  // The fake's curves still rise at their end: underfitting. Stopped by the time budget, the cure
  // includes fewer blocks (more epochs fit); stopped by patience or the epoch limit, it does not.
  auto steps_when_stopped_by = [](const std::string& stop) {
    TempDir dir;
    Dataset data = testing::cycle_dataset(20, 10, 5);
    FakeRunner runner;
    runner.stop = stop;
    return single_steps(run_tune(data, runner, TrialBudget{}, tune_options(dir, "tune", 8)).trials);
  };
  auto diagnosed_layers_down = [&](const std::string& stop) {
    for (const auto& s : steps_when_stopped_by(stop))
      if (s.source == "diagnosis" && s.axis == "layers" && s.direction < 0) return true;
    return false;
  };
  EXPECT_TRUE(diagnosed_layers_down("budget"));
  EXPECT_FALSE(diagnosed_layers_down("epochs"));
}

TEST(Tuner, InterruptedRunLosesNothing) {
  TempDir dir;
  Dataset data = testing::cycle_dataset(20, 10, 5);
  FakeRunner first;
  auto o = tune_options(dir, "tpe", 5);
  o.stop_after_trials = 2;
  auto r = run_tune(data, first, TrialBudget{}, o);
  EXPECT_FALSE(r.finished);
  EXPECT_EQ(r.trials.size(), 2u);
  // Killed in the middle of trial 3.
  FakeRunner second;
  o.stop_after_trials = 0;
  o.stop_after_epochs = 1;
  r = run_tune(data, second, TrialBudget{}, o);
  EXPECT_FALSE(r.finished);
  ASSERT_EQ(second.trained.size(), 1u);
  ParamSet interrupted = second.trained[0];
  EXPECT_TRUE(fs::exists(dir / "run" / "tune" / "pending.json"));
  // The rerun resumes trial 3 with the same proposal, and never reruns trials 1-2.
  FakeRunner third;
  o.stop_after_epochs = 0;
  r = run_tune(data, third, TrialBudget{}, o);
  ASSERT_TRUE(r.finished);
  ASSERT_EQ(third.trained.size(), 3u);
  EXPECT_EQ(third.trained[0], interrupted);
  EXPECT_TRUE(r.trials[2].outcome.resumed);
  EXPECT_FALSE(r.trials[3].outcome.resumed);
  TuneMemory memory(dir / "memory", r.trials[0].dataset);
  auto log = memory.load_trials();
  ASSERT_EQ(log.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(log[i].index, i + 1);
    EXPECT_EQ(log[i].id, i + 1);
  }
  EXPECT_FALSE(fs::exists(dir / "run" / "tune" / "pending.json"));
  // Another method on the same run directory is refused with the log's name.
  FakeRunner other;
  try {
    run_tune(data, other, TrialBudget{}, tune_options(dir, "random", 5));
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("trials.jsonl"), std::string::npos) << e.what();
  }
}

TEST(Tuner, HeuristicsFromAnotherDatasetAreAppliedFirst) {
  TempDir dir;
  FakeRunner a;
  Dataset source = testing::cycle_dataset(20, 10, 5);
  auto r = run_tune(source, a, TrialBudget{}, tune_options(dir, "tune", 8, "run-a"));
  ASSERT_TRUE(r.finished);
  TuneMemory memory(dir / "memory", r.trials[0].dataset);
  ASSERT_FALSE(memory.load_heuristics().empty());

  Dataset target = testing::cycle_dataset(30, 12, 6);
  target.name = "other";
  FakeRunner b;
  auto t = run_tune(target, b, TrialBudget{}, tune_options(dir, "tune", 2, "run-b"));
  EXPECT_EQ(t.trials[0].hypothesis.source, "transfer");
  EXPECT_NE(t.trials[0].params, b.space().defaults());
  EXPECT_NE(t.trials[0].hypothesis.text.find("helped on"), std::string::npos) << t.trials[0].hypothesis.text;
  // Transfer starts better than the defaults on this objective (what helped on `source` helps here).
  EXPECT_GT(t.trials[0].outcome.valid, FakeRunner::objective(b.space().defaults()));
  EXPECT_NE(t.trials[0].dataset, r.trials[0].dataset);

  // A cold memory starts from the defaults.
  FakeRunner c;
  auto cold_options = tune_options(dir, "tune", 1, "run-c");
  cold_options.memory = dir / "cold-memory";
  auto cold = run_tune(target, c, TrialBudget{}, cold_options);
  EXPECT_EQ(cold.trials[0].hypothesis.source, "baseline");
}

TEST(Tuner, RandomAndTpeShareTheHarness) {
  TempDir dir;
  Dataset data = testing::cycle_dataset(20, 10, 5);
  for (const char* method : {"random", "tpe"}) {
    FakeRunner runner;
    auto r = run_tune(data, runner, TrialBudget{}, tune_options(dir, method, 7, std::string("run-") + method));
    ASSERT_TRUE(r.finished);
    EXPECT_EQ(r.trials[0].params, runner.space().defaults());
    EXPECT_EQ(r.trials.back().method, method);
    if (std::string(method) == "tpe") {
      EXPECT_EQ(r.trials.back().hypothesis.source, "tpe");
    }
    std::set<ParamSet> seen;
    for (const auto& t : r.trials) EXPECT_TRUE(seen.insert(t.params).second);
  }
}

TEST(Tuner, TrialsToReach) {
  std::vector<TrialRecord> t(4);
  double v[] = {0.05, 0.09, 0.08, 0.1};
  for (int i = 0; i < 4; ++i) t[i].outcome.valid = v[i];
  EXPECT_EQ(trials_to_reach(t, 0.1, 0.98), 4);
  EXPECT_EQ(trials_to_reach(t, 0.1, 0.85), 2);
  EXPECT_EQ(trials_to_reach(t, 0.2, 0.98), 0);
}

TEST(Tuner, TunesSasrecEndToEnd) {
  // Real trainings: two epochs each on the cycle data, one trial interrupted after its first
  // epoch and resumed from the trainer's checkpoint.
  TempDir dir;
  Dataset data = testing::cycle_dataset(120, 20, 8);
  Context ctx;
  ctx.threads = 1;
  TrialBudget budget;
  budget.epochs = 2;
  budget.patience = 2;
  budget.minutes = 0;
  auto runner = make_trial_runner("sasrec", data, ctx, dir / "run", budget, false);
  auto o = tune_options(dir, "tune", 3);
  o.stop_after_trials = 1;
  auto r = run_tune(data, *runner, budget, o);
  ASSERT_EQ(r.trials.size(), 1u);
  o.stop_after_trials = 0;
  o.stop_after_epochs = 1;
  r = run_tune(data, *runner, budget, o);
  EXPECT_FALSE(r.finished);
  EXPECT_TRUE(fs::exists(dir / "run" / "tune" / "trial-2" / "state.json"));
  o.stop_after_epochs = 0;
  r = run_tune(data, *runner, budget, o);
  ASSERT_TRUE(r.finished);
  ASSERT_EQ(r.trials.size(), 3u);
  EXPECT_TRUE(r.trials[1].outcome.resumed);
  for (const auto& t : r.trials) {
    EXPECT_EQ(t.outcome.epochs, 2);
    EXPECT_EQ(t.outcome.curve.size(), 2u);
    EXPECT_EQ(t.outcome.losses.size(), 2u);
    EXPECT_GT(t.outcome.parameters, 0);
    EXPECT_GT(t.outcome.valid, 0);
  }
  EXPECT_GT(r.test.value("ndcg@10", 0.0), 0.0);
  EXPECT_EQ(r.report["test"], r.test);

  // fast_rec needs the SIDs of run/sid.
  try {
    make_trial_runner("fast_rec", data, ctx, dir / "run", budget, false);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("twistar sid"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace twistar
