// A TrialRunner with a known objective instead of training, shared by the tuner tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <vector>

#include "core/atomic_file.h"
#include "test_util.h"
#include "tune/tuner.h"

namespace twistar::testing {

namespace fs = std::filesystem;

/// A runner with a known objective instead of training: best at dim 128, dropout 0.3, lr 1e-2.
/// Its "training" writes a marker into the trial directory; a marker left by an interrupted call
/// makes the next call a resume, like the trainers' checkpoints.
class FakeRunner : public TrialRunner {
 public:
  FakeRunner()
      : space_("sasrec",
               {{"dim", AxisKind::kChoice, {32, 64, 128, 256}},
                {"layers", AxisKind::kChoice, {1, 2, 3}},
                {"dropout", AxisKind::kUniform, {}, 0.0, 0.8, 0.1},
                {"lr", AxisKind::kLog, {}, 1e-4, 3e-2, 2.0}},
               {{"dim", 64}, {"layers", 2}, {"dropout", 0.5}, {"lr", 3e-3}}) {}
  const SearchSpace& space() const override { return space_; }

  static double objective(const ParamSet& p) {
    double lr = std::log10(p.at("lr")) + 2;
    return 0.1 - 0.01 * std::fabs(std::log2(p.at("dim") / 128)) - 0.05 * std::pow(p.at("dropout") - 0.3, 2) -
           0.02 * lr * lr - 0.002 * std::fabs(p.at("layers") - 2);
  }

  TrialOutcome train(const ParamSet& p, const fs::path& dir, int stop_after_epochs) override {
    trained.push_back(p);
    TrialOutcome o;
    o.resumed = fs::exists(dir / "partial");
    if (stop_after_epochs > 0) {
      write_file_atomic(dir / "partial", "1");
      o.finished = false;
      return o;
    }
    double v = objective(p);
    // Too little dropout overfits: validation peaks then falls while the loss keeps dropping.
    o.curve = p.at("dropout") < 0.25 ? std::vector<double>{v * 0.8, v, v * 0.9, v * 0.85}
                                     : std::vector<double>{v * 0.7, v * 0.9, v};
    for (size_t i = 0; i < o.curve.size(); ++i) o.losses.push_back(5.0 - i);
    o.valid = v;
    o.epochs = static_cast<int>(o.curve.size());
    o.best_epoch = static_cast<int>(std::max_element(o.curve.begin(), o.curve.end()) - o.curve.begin()) + 1;
    o.stop = stop;
    o.parameters = static_cast<int64_t>(p.at("dim")) * 1000;
    write_file_atomic(dir / "model", "trained");
    return o;
  }

  nlohmann::json test(const fs::path& dir) override {
    ++tests;
    EXPECT_EQ(read_file(dir / "model"), "trained");
    return {{"ndcg@10", 0.05}};
  }

  std::vector<ParamSet> trained;
  int tests = 0;
  /// What ended every "training": patience, epochs, or budget (the time budget).
  std::string stop = "patience";

 private:
  SearchSpace space_;
};

inline TuneOptions tune_options(const TempDir& dir, const std::string& method, int trials,
                                const std::string& run = "run") {
  TuneOptions o;
  o.method = method;
  o.trials = trials;
  o.memory = dir / "memory";
  o.run = dir / run;
  o.progress = false;
  return o;
}

}  // namespace twistar::testing
