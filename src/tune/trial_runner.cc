#include "tune/trial_runner.h"

#include <algorithm>

#include "agent/fast_rec.h"
#include "agent/tool.h"
#include "core/error.h"
#include "data/split.h"
#include "eval/evaluator.h"
#include "models/sasrec_trainer.h"
#include "models/sid_generator_trainer.h"

namespace twistar {
namespace fs = std::filesystem;

void TrialBudget::validate() const {
  if (minutes < 0) throw_input_error("trial_minutes: must be >= 0, got {}", minutes);
  if (epochs < 1) throw_input_error("trial_epochs: must be >= 1, got {}", epochs);
  if (patience < 1) throw_input_error("trial_patience: must be >= 1, got {}", patience);
}

nlohmann::json TrialBudget::to_json() const {
  return {{"minutes", minutes}, {"epochs", epochs}, {"patience", patience}};
}

namespace {

Axis choice(const char* name, std::vector<double> values) { return {name, AxisKind::kChoice, std::move(values)}; }
Axis uniform(const char* name, double lo, double hi, double step) {
  return {name, AxisKind::kUniform, {}, lo, hi, step};
}
Axis log_axis(const char* name, double lo, double hi, double factor) {
  return {name, AxisKind::kLog, {}, lo, hi, factor};
}

/// The axes both models share (the optimiser, batches, history length, dropout).
std::vector<Axis> common_axes() {
  return {uniform("dropout", 0.0, 0.8, 0.1),
          uniform("attn_dropout", 0.0, 0.6, 0.1),
          log_axis("lr", 1e-4, 3e-2, 2.0),
          choice("weight_decay", {0, 1e-4, 1e-3, 1e-2, 1e-1}),
          choice("batch_size", {32, 64, 128, 256, 512}),
          choice("max_len", {10, 20, 50, 100, 200})};
}

/// The axes both models share set on a model's options (both option structs name them alike),
/// with the trial budget as the stopping rules.
template <typename ModelOptions>
ModelOptions options_for(const ParamSet& p, const TrialBudget& b) {
  ModelOptions o;
  o.dim = static_cast<int64_t>(p.at("dim"));
  o.layers = static_cast<int64_t>(p.at("layers"));
  o.heads = static_cast<int64_t>(p.at("heads"));
  o.dropout = p.at("dropout");
  o.attn_dropout = p.at("attn_dropout");
  o.max_len = static_cast<int64_t>(p.at("max_len"));
  o.train.lr = p.at("lr");
  o.train.weight_decay = p.at("weight_decay");
  o.train.batch_size = static_cast<int64_t>(p.at("batch_size"));
  o.train.max_minutes = b.minutes;
  o.train.epochs = b.epochs;
  o.train.patience = b.patience;
  o.train.lr_patience = std::max(1, b.patience / 2);
  return o;
}

/// The defaults of those shared axes.
template <typename ModelOptions>
ParamSet shared_defaults(const ModelOptions& d) {
  return {{"dim", d.dim}, {"layers", d.layers}, {"heads", d.heads}, {"dropout", d.dropout},
          {"attn_dropout", d.attn_dropout}, {"lr", d.train.lr}, {"weight_decay", d.train.weight_decay},
          {"batch_size", d.train.batch_size}, {"max_len", d.max_len}};
}

int64_t count_parameters(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

/// What ended a training: the epoch limit, early stopping, or (otherwise) the time budget.
std::string stop_reason(const LoopResult& r, const TrialBudget& b) {
  if (r.epochs_run >= b.epochs) return "epochs";
  if (!r.curve.empty()) {
    auto peak = std::max_element(r.curve.begin(), r.curve.end()) - r.curve.begin();
    if (static_cast<int>(r.curve.size()) - 1 - peak >= b.patience) return "patience";
  }
  return "budget";
}

TrialOutcome outcome_of(const LoopResult& r, const TrialBudget& b, int64_t parameters) {
  TrialOutcome o;
  o.valid = r.best;
  o.best_epoch = r.best_epoch;
  o.epochs = r.epochs_run;
  o.curve = r.curve;
  o.losses = r.losses;
  o.seconds = r.seconds;
  o.parameters = parameters;
  o.stop = stop_reason(r, b);
  o.resumed = r.resumed;
  o.finished = r.finished;
  return o;
}

nlohmann::json test_metrics(const Recommender& rec, const Dataset& data, bool progress) {
  auto examples = make_examples(data, Split::kTest, {50});
  if (examples.empty()) throw_input_error("{}: no user is long enough for the test split", data.name);
  EvalOptions e;
  e.latency_requests = 0;
  e.throughput_batch = 0;
  e.progress = progress;
  return evaluate(rec, examples, e).to_json();
}

/// What both runners hold: the data, the context, the budget and the space.
class RunnerBase : public TrialRunner {
 public:
  RunnerBase(const Dataset& data, const Context& ctx, const TrialBudget& b, bool progress)
      : data_(data), ctx_(ctx), budget_(b), progress_(progress) {}
  const SearchSpace& space() const override { return space_; }

 protected:
  const Dataset& data_;
  Context ctx_;
  TrialBudget budget_;
  bool progress_;
  SearchSpace space_;
};

class SasrecRunner : public RunnerBase {
 public:
  SasrecRunner(const Dataset& data, const Context& ctx, const TrialBudget& b, bool progress)
      : RunnerBase(data, ctx, b, progress) {
    std::vector<Axis> axes = {choice("dim", {32, 64, 128, 256}), choice("layers", {1, 2, 3, 4}),
                              choice("heads", {1, 2, 4})};
    for (auto& a : common_axes()) axes.push_back(a);
    space_ = SearchSpace("sasrec", axes, shared_defaults(SasrecOptions{}));
  }
  TrialOutcome train(const ParamSet& params, const fs::path& dir, int stop_after_epochs) override {
    auto o = options_for<SasrecOptions>(params, budget_);
    auto r = train_sasrec(data_, o, ctx_, dir, {progress_, stop_after_epochs});
    return outcome_of(r.loop, budget_, count_parameters(*r.model));
  }

  nlohmann::json test(const fs::path& dir) override {
    SasrecRecommender rec(load_sasrec(dir, ctx_));
    return test_metrics(rec, data_, progress_);
  }
};

class FastRecRunner : public RunnerBase {
 public:
  FastRecRunner(const Dataset& data, const Context& ctx, const fs::path& run_dir, const TrialBudget& b,
                bool progress)
      : RunnerBase(data, ctx, b, progress) {
    fs::path map_path = run_dir / "sid" / "sid_map.json";
    if (!fs::exists(map_path))
      throw_input_error("{}: missing; tuning fast_rec needs semantic IDs: run `twistar sid --run {}` first",
                        map_path.string(), run_dir.string());
    sids_ = std::make_shared<const SidMap>(SidMap::load(map_path));
    std::vector<Axis> axes = {choice("dim", {64, 128, 256}), choice("layers", {1, 2, 3}),
                              choice("decoder_layers", {1, 2}), choice("heads", {1, 2, 4})};
    for (auto& a : common_axes()) axes.push_back(a);
    SidGeneratorOptions d;
    ParamSet defaults = shared_defaults(d);
    defaults["decoder_layers"] = d.decoder_layers;
    space_ = SearchSpace("fast_rec", axes, defaults);
  }
  TrialOutcome train(const ParamSet& params, const fs::path& dir, int stop_after_epochs) override {
    auto o = options_for<SidGeneratorOptions>(params, budget_);
    o.decoder_layers = static_cast<int64_t>(params.at("decoder_layers"));
    auto validate = [&](SidGenerator& model) {
      return fast_rec_valid_ndcg10(model, sids_->trie(), data_, o.valid_users, o.valid_beam);
    };
    auto r = train_sid_generator(data_, sids_->sids(), sids_->level_sizes(), o, ctx_, dir, validate,
                                 {progress_, stop_after_epochs});
    return outcome_of(r.loop, budget_, count_parameters(*r.model));
  }

  nlohmann::json test(const fs::path& dir) override {
    auto model = load_sid_generator(dir, sids_->sids(), sids_->level_sizes(), ctx_);
    ToolRecommender rec(std::make_shared<FastRec>(model, sids_), "fast_only");
    return test_metrics(rec, data_, progress_);
  }

 private:
  std::shared_ptr<const SidMap> sids_;
};

}  // namespace

std::unique_ptr<TrialRunner> make_trial_runner(const std::string& model, const Dataset& data,
                                               const Context& ctx, const fs::path& run_dir,
                                               const TrialBudget& budget, bool progress) {
  budget.validate();
  if (model == "sasrec") return std::make_unique<SasrecRunner>(data, ctx, budget, progress);
  if (model == "fast_rec") return std::make_unique<FastRecRunner>(data, ctx, run_dir, budget, progress);
  throw_input_error("model: unknown model '{}' (sasrec, fast_rec)", model);
}

}  // namespace twistar
