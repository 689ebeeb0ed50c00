#include "apps/pipeline.h"

#include <chrono>

#include "core/error.h"
#include "core/log.h"
#include "core/manifest.h"
#include "eval/baselines.h"
#include "eval/report.h"
#include "graph/popularity.h"
#include "models/sasrec_trainer.h"

namespace twistar {
namespace fs = std::filesystem;

TrainSasrecOutcome run_sasrec_stage(const Dataset& data, const SasrecOptions& options,
                                    const Context& ctx, const fs::path& run_dir, bool progress,
                                    bool force) {
  fs::path dir = run_dir / "sasrec";
  nlohmann::json config = options.to_json();
  config["seed"] = ctx.seed;
  config["num_items"] = data.num_items();
  TrainSasrecOutcome out;
  auto m = Manifest::load(dir);
  if (!force && m && m->stage == "sasrec" && m->config == config &&
      m->inputs.count("data") && m->inputs.at("data") == data.fingerprint()) {
    spdlog::info("sasrec: {} is up to date; reusing it", dir.string());
    out.skipped = true;
    out.train_seconds = m->wall_seconds;
    out.best_valid_ndcg10 = m->metrics.value("valid_ndcg@10", 0.0);
    out.best_epoch = m->metrics.value("best_epoch", 0);
    return out;
  }
  if (force && fs::exists(dir)) fs::remove_all(dir);
  TrainControl control;
  control.progress = progress;
  auto r = train_sasrec(data, options, ctx, dir, control);
  // Record the data fingerprint so a later run on other data retrains.
  if (auto done = Manifest::load(dir)) {
    done->inputs["data"] = data.fingerprint();
    done->save(dir);
  }
  out.train_seconds = r.train_seconds;
  out.best_valid_ndcg10 = r.best_valid_ndcg10;
  out.best_epoch = r.best_epoch;
  return out;
}

std::unique_ptr<Recommender> make_system(const std::string& name, const Dataset& data,
                                         const fs::path& run_dir, const Context& ctx,
                                         const SwingOptions& swing) {
  auto train = training_parts(data);
  if (name == "mostpop")
    return std::make_unique<MostPopRecommender>(item_popularity(train, data.num_items()));
  if (name == "swing") {
    SwingOptions so = swing;
    if (so.threads == 0) so.threads = ctx.resolved_threads();
    return std::make_unique<SwingRecommender>(build_swing(train, data.num_items(), so),
                                              item_popularity(train, data.num_items()));
  }
  if (name == "sasrec") return std::make_unique<SasrecRecommender>(load_sasrec(run_dir / "sasrec", ctx));
  throw_input_error("systems: unknown system '{}' (mostpop, swing, sasrec)", name);
}

nlohmann::json run_eval_stage(const Dataset& data, const EvalStageOptions& options,
                              const Context& ctx, const fs::path& run_dir) {
  options.eval.validate();
  ctx.apply();
  auto examples = make_examples(data, options.split, {options.max_history});
  if (examples.empty()) throw_input_error("{}: no user is long enough for the {} split", data.name,
                                          split_name(options.split));
  std::vector<EvalResult> results;
  for (const auto& name : options.systems) {
    auto t0 = std::chrono::steady_clock::now();
    auto system = make_system(name, data, run_dir, ctx, options.swing);
    double build_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EvalResult r = evaluate(*system, examples, options.eval);
    if (name == "sasrec") {
      auto m = Manifest::load(run_dir / "sasrec");
      r.extra["train_seconds"] = m ? m->wall_seconds : 0.0;
      r.extra["best_epoch"] = m ? m->metrics.value("best_epoch", 0) : 0;
    } else {
      r.extra["train_seconds"] = build_seconds;
    }
    spdlog::info("{}: recall@10 {:.4f} ndcg@10 {:.4f} ({} users, {:.1f} s)", name,
                 r.metrics["recall@10"], r.metrics["ndcg@10"], r.ranks.size(), r.eval_seconds);
    results.push_back(std::move(r));
  }
  ReportInfo info{options.experiment, data.name, split_name(options.split), options.command, "", ""};
  auto doc = results_json(info, results);
  write_report(run_dir / (options.split == Split::kTest ? "eval" : "eval-valid"), doc);
  return doc;
}

}  // namespace twistar
