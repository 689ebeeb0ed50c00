#include "apps/fit.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "core/error.h"
#include "core/log.h"
#include "core/manifest.h"

namespace twistar {
namespace fs = std::filesystem;

namespace {

/// Seconds per 1,000 training interactions of each stage on Beauty (198,502 interactions), one
/// thread on the 2-core reference machine: bench/results/backbone_*.json and planner_*.json
/// (train_seconds), the sid and knowledge stages' manifests, and the headline evaluation.
const std::map<std::string, double>& seconds_per_k_interactions() {
  static const std::map<std::string, double> table = {
      {"sasrec", 3.4},  {"bsarec", 9.1},   {"sid", 0.5},     {"sidgen", 3.3}, {"ranker", 0.8},
      {"knowledge", 0.3}, {"reasoner", 5.3}, {"planner", 2.8}, {"eval", 5.0}};
  return table;
}

size_t stage_position(const std::string& stage) {
  const auto& all = fit_stages();
  return static_cast<size_t>(std::find(all.begin(), all.end(), stage) - all.begin());
}

/// The directory whose manifest marks the stage finished (none for eval).
fs::path stage_dir(const std::string& stage, const FitOptions& o, const fs::path& run) {
  if (stage == "backbone") return run / o.backbone;
  if (stage == "reasoner") return run / o.reasoner_name;
  return run / stage;
}

std::string training_summary(const TrainStageOutcome& r) {
  return fmt::format("valid NDCG@10 {:.4f} at epoch {}", r.best_valid_ndcg10, r.best_epoch);
}

std::string eval_summary(const nlohmann::json& doc) {
  std::string out;
  for (const char* sys : {"twistar", "fast_rank", "fast_only"}) {
    if (!doc["systems"].contains(sys)) continue;
    out += fmt::format("{}{} NDCG@10 {:.4f}", out.empty() ? "" : ", ", sys,
                       doc["systems"][sys].value("ndcg@10", 0.0));
  }
  return out;
}

}  // namespace

const std::vector<std::string>& fit_stages() {
  static const std::vector<std::string> stages = {"backbone", "sid",      "sidgen",  "ranker",
                                                  "knowledge", "reasoner", "planner", "eval"};
  return stages;
}

std::vector<std::string> fit_default_systems(const std::string& backbone) {
  return {"mostpop", "swing",   backbone,        "fast_only",        "fast_rank", "slow",
          "fast_rank_slow", "twistar", "router_random", "router_threshold", "oracle"};
}

SidStageOptions FitOptions::default_sid() {
  SidStageOptions s;
  s.embedding = "hybrid";
  s.tokenizer = "rqvae";
  s.rqvae.unique_last_level = true;
  return s;
}

SidGeneratorOptions FitOptions::default_sidgen() {
  SidGeneratorOptions s;
  s.train.max_minutes = 40;
  return s;
}

EvalStageOptions FitOptions::default_eval() {
  EvalStageOptions e;
  e.systems.clear();  // filled with the headline set for the chosen backbone by run_fit
  e.compare_to = "twistar";
  e.latency_pair = {"twistar", "slow"};
  e.experiment = "fit";
  return e;
}

void FitOptions::validate() const {
  if (backbone != "sasrec" && backbone != "bsarec")
    throw_input_error("fit.backbone: expected sasrec or bsarec, got '{}'", backbone);
  const auto& all = fit_stages();
  for (const auto* s : {&from, &until})
    if (!s->empty() && std::find(all.begin(), all.end(), *s) == all.end())
      throw_input_error("fit.{}: unknown stage '{}' (stages: backbone, sid, sidgen, ranker, knowledge, reasoner, "
                        "planner, eval)",
                        s == &from ? "from" : "until", *s);
  if (!from.empty() && !until.empty() && stage_position(from) > stage_position(until))
    throw_input_error("fit: --from {} comes after --until {}", from, until);
  backbone_options().validate();
  sid.validate();
  sidgen.validate();
  ranker.validate();
  knowledge.validate();
  reasoner.validate();
  planner.validate();
}

double fit_stage_estimate_seconds(const std::string& stage, const Dataset& data, const FitOptions& o) {
  const std::string key = stage == "backbone" ? o.backbone : stage;
  double seconds = seconds_per_k_interactions().at(key) * static_cast<double>(data.num_interactions()) / 1000.0;
  const TrainOptions* budget = stage == "backbone" ? &o.backbone_options().train
                               : stage == "sidgen" ? &o.sidgen.train
                               : stage == "reasoner" ? &o.reasoner.train
                                                     : nullptr;
  if (budget && budget->max_minutes > 0) seconds = std::min(seconds, budget->max_minutes * 60.0);
  // Held-out lists train the backbone and the SID generator again first.
  if (stage == "ranker" && o.ranker.training_lists == "heldout")
    seconds += fit_stage_estimate_seconds("backbone", data, o) + fit_stage_estimate_seconds("sidgen", data, o);
  return seconds;
}

std::string fit_event_line(const FitStageEvent& e) {
  auto minutes = [](double s) { return fmt::format("{:.1f} min", s / 60.0); };
  if (!e.done)
    return fmt::format("fit [{}/{}] {}: started ({} elapsed, ~{} left)", e.index, e.count, e.stage,
                       minutes(e.elapsed), minutes(e.eta_seconds));
  return fmt::format("fit [{}/{}] {}: {} in {}{}; ~{} left", e.index, e.count, e.stage,
                     e.reused ? "reused" : "done", minutes(e.seconds), e.summary.empty() ? "" : " (" + e.summary + ")",
                     minutes(e.eta_seconds));
}

FitOutcome run_fit(const Dataset& data, const FitOptions& options, const Context& ctx, const fs::path& run,
                   bool progress, const std::function<void(const FitStageEvent&)>& on_stage) {
  options.validate();
  const auto& all = fit_stages();
  const size_t first = options.from.empty() ? 0 : stage_position(options.from);
  const size_t last = options.until.empty() ? all.size() - 1 : stage_position(options.until);
  for (size_t i = 0; i < first; ++i)
    if (all[i] != "eval" && !Manifest::load(stage_dir(all[i], options, run)))
      throw_input_error("fit --from {}: stage {} is not finished in {} (run `twistar fit` without --from, or with "
                        "--from {})",
                        options.from, all[i], run.string(), all[i]);

  std::vector<double> estimates;
  for (size_t i = first; i <= last; ++i) estimates.push_back(fit_stage_estimate_seconds(all[i], data, options));
  // The finished stages' actual time against their estimate rescales what is left.
  double spent = 0, estimated_done = 0;
  auto left = [&](size_t from_offset) {
    double rest = 0;
    for (size_t j = from_offset; j < estimates.size(); ++j) rest += estimates[j];
    const double scale = estimated_done > 60 ? std::clamp(spent / estimated_done, 0.25, 4.0) : 1.0;
    return rest * scale;
  };

  PlannerOptions planner = options.planner;
  planner.reasoner = options.reasoner_name;
  EvalStageOptions eval = options.eval;
  eval.reasoner = options.reasoner_name;
  eval.eval.progress = progress;
  if (eval.systems.empty()) eval.systems = fit_default_systems(options.backbone);
  // The default comparison and latency pair need twistar (and slow); a shorter --systems drops them.
  auto has = [&](const std::string& s) { return std::find(eval.systems.begin(), eval.systems.end(), s) != eval.systems.end(); };
  if (!eval.compare_to.empty() && !has(eval.compare_to)) eval.compare_to.clear();
  if (eval.latency_pair.size() == 2 && !has(eval.latency_pair[0])) eval.latency_pair.clear();

  FitOutcome out;
  const auto fit_start = std::chrono::steady_clock::now();
  auto since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  for (size_t i = first; i <= last; ++i) {
    const std::string& stage = all[i];
    FitStageEvent e;
    e.stage = stage;
    e.index = i - first + 1;
    e.count = last - first + 1;
    e.elapsed = since(fit_start);
    e.eta_seconds = left(i - first);
    if (on_stage) on_stage(e);
    const auto start = std::chrono::steady_clock::now();
    const bool force = options.force;
    if (stage == "backbone" || stage == "sidgen" || stage == "ranker" || stage == "reasoner" || stage == "planner") {
      TrainStageOutcome r = stage == "backbone" ? run_sasrec_stage(data, options.backbone_options(), ctx, run, progress, force)
                            : stage == "sidgen" ? run_sidgen_stage(data, options.sidgen, ctx, run, progress, force)
                            : stage == "ranker" ? run_ranker_stage(data, options.ranker, ctx, run, progress, force)
                            : stage == "reasoner"
                                ? run_reasoner_stage(data, options.reasoner, ctx, run, progress, force, options.reasoner_name)
                                : run_planner_stage(data, planner, ctx, run, progress, force);
      e.reused = r.skipped;
      if (stage == "planner") {
        auto m = Manifest::load(run / "planner");
        e.summary = fmt::format("holdout reward {:.4f}, served beta {}", m ? m->metrics.value("grpo_holdout_reward", 0.0) : 0.0,
                                m ? m->metrics.value("beta", 0.0) : 0.0);
      } else {
        e.summary = training_summary(r);
      }
    } else if (stage == "sid") {
      auto r = run_sid_stage(data, options.sid, ctx, run, force);
      e.reused = r.skipped;
      e.summary = fmt::format("{} levels, collision rate {:.4f}", r.report.value("sid_levels", 0),
                              r.report.value("collision_rate", 0.0));
    } else if (stage == "knowledge") {
      auto r = run_knowledge_stage(data, options.knowledge, ctx, run, force);
      e.reused = r.skipped;
      e.summary = fmt::format("{} strong pairs, {} explanations", r.stats.value("strong_pairs", 0),
                              r.stats.value("explanations", 0));
    } else {
      out.eval = run_eval_stage(data, eval, ctx, run);
      e.summary = eval_summary(*out.eval);
    }
    e.done = true;
    e.seconds = since(start);
    e.elapsed = since(fit_start);
    // A reused stage says nothing about this machine's speed.
    if (!e.reused) {
      spent += e.seconds;
      estimated_done += estimates[i - first];
    }
    e.eta_seconds = left(i - first + 1);
    if (on_stage) on_stage(e);
    out.stages.push_back(e);
  }
  return out;
}

}  // namespace twistar
