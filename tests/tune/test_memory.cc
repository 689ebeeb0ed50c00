#include <gtest/gtest.h>

#include <cmath>

#include "core/atomic_file.h"
#include "core/error.h"
#include "test_util.h"
#include "tune/memory.h"
#include "tune/reflector.h"

namespace twistar {
namespace {

using testing::TempDir;
using testing::write_text;

TrialRecord record(int id, int parent, ParamSet params, double valid, std::vector<double> curve,
                   std::vector<double> losses, std::string stop = "patience") {
  TrialRecord r;
  r.id = id;
  r.run = "/runs/x";
  r.index = id;
  r.method = "tune";
  r.model = "sasrec";
  r.dataset = "d-00000000";
  r.params = std::move(params);
  r.hypothesis = {parent ? "coverage" : "baseline", "h", parent, {}};
  r.outcome.valid = valid;
  r.outcome.curve = std::move(curve);
  r.outcome.losses = std::move(losses);
  r.outcome.epochs = static_cast<int>(r.outcome.losses.size());
  r.outcome.stop = std::move(stop);
  return r;
}

TEST(Reflector, DiagnosesCurves) {
  TrialOutcome o;
  o.curve = {0.1, 0.2, 0.15, 0.12};
  o.losses = {5, 4, 3, 2};
  o.valid = 0.2;
  EXPECT_EQ(diagnose(o), "overfitting");
  o.losses = {5, 4, 4.5, 4.6};  // validation falls but so does training: not overfitting
  EXPECT_EQ(diagnose(o), "converged");
  o.curve = {0.1, 0.2, 0.25};
  o.losses = {5, 4, 3};
  o.stop = "budget";
  EXPECT_EQ(diagnose(o), "underfitting");
  o.stop = "patience";
  EXPECT_EQ(diagnose(o), "converged");
  o.losses = {5, std::nan(""), std::nan("")};
  EXPECT_EQ(diagnose(o), "divergence");
  o.losses = {5, 9, 12};
  EXPECT_EQ(diagnose(o), "divergence");
}

TEST(Reflector, NamesTheChangedAxisAndItsEffect) {
  auto parent = record(1, 0, {{"dropout", 0.5}, {"lr", 0.003}}, 0.10, {0.08, 0.1}, {5, 4});
  auto child = record(2, 1, {{"dropout", 0.6}, {"lr", 0.003}}, 0.12, {0.1, 0.12}, {5, 4});
  Reflection r = reflect(child, &parent);
  ASSERT_EQ(r.changes.size(), 1u);
  EXPECT_EQ(r.changes[0].axis, "dropout");
  EXPECT_EQ(r.changes[0].direction, 1);
  EXPECT_EQ(r.verdict, "helped");
  EXPECT_NEAR(r.rel_delta, 0.2, 1e-9);
  EXPECT_NE(r.rule.find("raising dropout (0.5 -> 0.6) helped (+20.0%"), std::string::npos) << r.rule;
  EXPECT_NE(r.rule.find("#1 -> #2"), std::string::npos) << r.rule;
  EXPECT_EQ(r.evidence["parent"], 1);
  auto worse = record(3, 1, {{"dropout", 0.5}, {"lr", 0.006}}, 0.05, {0.05}, {5});
  EXPECT_EQ(reflect(worse, &parent).verdict, "hurt");
  EXPECT_EQ(reflect(parent, nullptr).verdict, "baseline");
}

TEST(TuneMemory, TrialLogRoundTripsAndNamesBadLines) {
  TempDir dir;
  TuneMemory m(dir.path(), "d-00000000");
  auto a = record(1, 0, {{"dropout", 0.5}}, 0.1, {0.1}, {5, std::nan("")});
  a.reflection = reflect(a, nullptr);
  m.append_trial(a);
  auto b = record(2, 1, {{"dropout", 0.6}}, 0.12, {0.12}, {4});
  b.reflection = reflect(b, &a);
  m.append_trial(b);
  auto back = m.load_trials();
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].to_json(), b.to_json());
  EXPECT_TRUE(std::isnan(back[0].outcome.losses[1]));
  EXPECT_EQ(back[1].reflection.changes[0].axis, "dropout");

  auto log = m.dataset_dir() / "trials.jsonl";
  write_text(log, read_file(log) + "{\"id\": 3, \"run\": \"r\"}\n");
  try {
    m.load_trials();
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("trials.jsonl:3: missing field 'index'"), std::string::npos) << e.what();
  }
  write_text(log, "{not json\n");
  EXPECT_THROW(m.load_trials(), InputError);
}

TEST(TuneMemory, LessonsBecomeHeuristicsWithSupportAcrossDatasets) {
  TempDir dir;
  for (std::string ds : {"a-00000000", "b-00000000"}) {
    TuneMemory m(dir.path(), ds);
    auto base = record(1, 0, {{"dropout", 0.5}, {"lr", 0.003}}, 0.10, {0.1}, {5});
    base.reflection = reflect(base, nullptr);
    auto up = record(2, 1, {{"dropout", 0.6}, {"lr", 0.003}}, 0.12, {0.12}, {5});
    up.reflection = reflect(up, &base);
    // lr up helps on a, hurts on b
    auto lr = record(3, 1, {{"dropout", 0.5}, {"lr", 0.006}}, ds[0] == 'a' ? 0.11 : 0.08, {0.1}, {5});
    lr.reflection = reflect(lr, &base);
    m.write_lessons({base, up, lr});
    m.write_heuristics();
  }
  TuneMemory m(dir.path(), "c-00000000");
  auto hs = m.load_heuristics();
  ASSERT_EQ(hs.size(), 2u);
  for (const auto& h : hs) {
    EXPECT_EQ(h.direction, 1);
    EXPECT_EQ(h.datasets.size(), 2u);
    if (h.axis == "dropout") {
      EXPECT_EQ(h.support, 2);
      EXPECT_EQ(h.against, 0);
    } else {
      EXPECT_EQ(h.axis, "lr");
      EXPECT_EQ(h.support, 1);
      EXPECT_EQ(h.against, 1);
    }
  }
  EXPECT_TRUE(std::filesystem::exists(dir / "heuristics.md"));
  auto lessons = nlohmann::json::parse(read_file(dir / "datasets" / "a-00000000" / "lessons.json"));
  EXPECT_EQ(lessons["best"]["sasrec"]["trial"], 2);
  EXPECT_NE(read_file(dir / "datasets" / "a-00000000" / "lessons.md").find("raising dropout"), std::string::npos);

  write_text(dir / "heuristics.json", "{\"heuristics\": [{\"model\": \"sasrec\"}]}");
  try {
    m.load_heuristics();
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("heuristics.json: heuristics[0]"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace twistar
