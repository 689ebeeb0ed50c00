#include "apps/pipeline.h"

#include <chrono>
#include <map>
#include <memory>
#include <optional>

#include "agent/rank_candidates.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/manifest.h"
#include "core/atomic_file.h"
#include "data/split.h"
#include "models/sasrec_trainer.h"
#include "models/sid_generator_trainer.h"
#include "serve/item_table.h"
#include "sid/sid_map.h"

namespace twistar {
namespace fs = std::filesystem;

namespace {

/// The outcome of a finished stage in `dir` when its manifest has every field of `config` with the
/// same value and exactly `inputs`; nullopt when the stage must (re)train.
std::optional<TrainStageOutcome> reusable_stage(const fs::path& dir, const std::string& stage,
                                                const nlohmann::json& config,
                                                const std::map<std::string, std::string>& inputs) {
  auto m = Manifest::load(dir);
  if (!m || m->stage != stage || m->inputs != inputs) return std::nullopt;
  for (const auto& [key, value] : config.items())
    if (m->config.value(key, nlohmann::json()) != value) return std::nullopt;
  spdlog::info("{}: {} is up to date; reusing it", stage, dir.string());
  TrainStageOutcome out;
  out.skipped = true;
  out.train_seconds = m->wall_seconds;
  out.best_valid_ndcg10 = m->metrics.value("valid_ndcg@10", 0.0);
  out.best_epoch = m->metrics.value("best_epoch", 0);
  return out;
}

/// Records the stage's inputs in its manifest, so a later run on other inputs retrains.
void record_inputs(const fs::path& dir, const std::map<std::string, std::string>& inputs) {
  if (auto done = Manifest::load(dir)) {
    done->inputs = inputs;
    done->save(dir);
  }
}

}  // namespace

HeldoutGenerators train_heldout_generators(const Dataset& data, const Context& ctx, const fs::path& run_dir,
                                           bool progress, bool with_backbone) {
  const fs::path held = run_dir / "heldout";
  const Dataset shifted = without_last_items(data);
  HeldoutGenerators out;
  // The run's backbone again, with the options it was trained with (its manifest's config).
  const fs::path backbone = backbone_dir(run_dir);
  if (with_backbone && fs::exists(backbone / "model.pt")) {
    auto man = Manifest::load(backbone);
    if (!man) throw_input_error("{}: no manifest; retrain the backbone", backbone.string());
    auto options = SasrecOptions::from_json(man->config);
    spdlog::info("ranker: held-out {}, trained without each user's last training item ({})", options.arch,
                 (held / options.arch).string());
    run_sasrec_stage(shifted, options, ctx, held, progress, false);
    out.sasrec = load_sasrec(held / options.arch, ctx);
  }
  // The SID generator again, on the run's SIDs and with its options.
  const fs::path map = run_dir / "sid" / "sid_map.json";
  if (!fs::exists(map)) throw_input_error("{}: missing; run `twistar sid --run {}` first", map.string(), run_dir.string());
  fs::create_directories(held / "sid");
  write_file_atomic(held / "sid" / "sid_map.json", read_file(map));
  auto man = Manifest::load(run_dir / "sidgen");
  if (!man || man->stage != "sidgen")
    throw_input_error("{}: no finished sidgen stage; run `twistar train sidgen --run {}` first",
                      (run_dir / "sidgen").string(), run_dir.string());
  spdlog::info("ranker: held-out SID generator, trained without each user's last training item ({})",
               (held / "sidgen").string());
  run_sidgen_stage(shifted, SidGeneratorOptions::from_json(man->config), ctx, held, progress, false);
  out.fast = load_fast_rec(held, ctx);
  return out;
}

TrainStageOutcome run_sasrec_stage(const Dataset& data, const SasrecOptions& options,
                                   const Context& ctx, const fs::path& run_dir, bool progress,
                                   bool force) {
  // Each architecture is its own stage: run/sasrec and run/bsarec.
  fs::path dir = run_dir / options.arch;
  nlohmann::json config = options.to_json();
  config["seed"] = ctx.seed;
  config["num_items"] = data.num_items();
  std::map<std::string, std::string> inputs = {{"data", data.fingerprint()}};
  if (!force)
    if (auto done = reusable_stage(dir, options.arch, config, inputs)) return *done;
  if (force && fs::exists(dir)) fs::remove_all(dir);
  TrainControl control;
  control.progress = progress;
  auto r = train_sasrec(data, options, ctx, dir, control);
  record_inputs(dir, inputs);
  TrainStageOutcome out;
  out.train_seconds = r.train_seconds;
  out.best_valid_ndcg10 = r.best_valid_ndcg10;
  out.best_epoch = r.best_epoch;
  return out;
}

TrainStageOutcome run_sidgen_stage(const Dataset& data, const SidGeneratorOptions& options,
                                   const Context& ctx, const fs::path& run_dir, bool progress,
                                   bool force) {
  options.validate();
  fs::path map_path = run_dir / "sid" / "sid_map.json";
  if (!fs::exists(map_path))
    throw_input_error("{}: missing; run `twistar sid --run {}` first", map_path.string(),
                      run_dir.string());
  const SidMap map = SidMap::load(map_path);
  // Serving reads raw ids and training popularity from the run directory alone (serve/item_table.h);
  // written even when the stage is reused, so older run directories gain it.
  ItemTable::from_dataset(data).save(item_table_path(run_dir));
  fs::path dir = run_dir / "sidgen";
  nlohmann::json config = options.to_json();
  config["seed"] = ctx.seed;
  std::map<std::string, std::string> inputs = {{"data", data.fingerprint()},
                                               {"sid_map", hash_file(map_path)}};
  if (!force)
    if (auto done = reusable_stage(dir, "sidgen", config, inputs)) return *done;
  if (force && fs::exists(dir)) fs::remove_all(dir);
  TrainControl control;
  control.progress = progress;
  auto validate = [&](SidGenerator& model) {
    return fast_rec_valid_ndcg10(model, map.trie(), data, options.valid_users, options.valid_beam);
  };
  auto r = train_sid_generator(data, map.sids(), map.level_sizes(), options, ctx, dir, validate, control);
  record_inputs(dir, inputs);
  TrainStageOutcome out;
  out.train_seconds = r.loop.seconds;
  out.best_valid_ndcg10 = r.loop.best;
  out.best_epoch = r.loop.best_epoch;
  return out;
}

TrainStageOutcome run_ranker_stage(const Dataset& data, const RankerOptions& options, const Context& ctx,
                                   const fs::path& run_dir, bool progress, bool force) {
  options.validate();
  const fs::path dir = run_dir / "ranker";
  // The ranker reads the run's backbone (run/bsarec, else run/sasrec).
  const fs::path sidgen_model = run_dir / "sidgen" / "model.pt", sasrec_model = backbone_dir(run_dir) / "model.pt";
  auto fast = load_fast_rec(run_dir, ctx);
  const bool has_sasrec = fs::exists(sasrec_model);
  if (options.use_sasrec && !has_sasrec)
    spdlog::warn("ranker: {} is missing; training without the SASRec features", sasrec_model.string());
  nlohmann::json config = options.to_json();
  config["seed"] = ctx.seed;
  std::map<std::string, std::string> inputs = {{"data", data.fingerprint()},
                                               {"sidgen", hash_file(sidgen_model)}};
  if (has_sasrec) inputs["sasrec"] = hash_file(sasrec_model);
  // The held-out generators first (reused when up to date; --force retrains the ranker only).
  HeldoutGenerators heldout;
  if (options.training_lists == "heldout") {
    heldout = train_heldout_generators(data, ctx, run_dir, progress, options.use_sasrec);
    inputs["heldout_sidgen"] = hash_file(run_dir / "heldout" / "sidgen" / "model.pt");
  }
  if (!force)
    if (auto done = reusable_stage(dir, "ranker", config, inputs)) return *done;
  if (force && fs::exists(dir)) fs::remove_all(dir);
  TrainControl control;
  control.progress = progress;
  Sasrec sasrec{nullptr};
  if (has_sasrec) sasrec = load_sasrec(backbone_dir(run_dir), ctx);
  auto r = train_ranker(data, *fast, sasrec, options, ctx, dir, control, &heldout);
  if (r.finished) {
    auto m = Manifest::load(dir);
    m->inputs = inputs;
    m->metrics["fast_valid_ndcg@10"] = r.fast_valid_ndcg10;
    m->metrics["train_lists"] = r.train_lists;
    m->metrics["valid_lists"] = r.valid_lists;
    m->metrics["train_hit_rate"] = r.train_hit_rate;
    m->metrics["valid_hit_rate"] = r.valid_hit_rate;
    m->metrics["list_seconds"] = r.list_seconds;
    m->metrics["best_epoch"] = r.best_epoch;
    m->metrics["fit_seconds"] = r.train_seconds;
    m->wall_seconds = r.train_seconds + r.list_seconds;
    m->save(dir);
  }
  TrainStageOutcome out;
  out.train_seconds = r.train_seconds + r.list_seconds;
  out.best_valid_ndcg10 = r.best_valid_ndcg10;
  out.best_epoch = r.best_epoch;
  return out;
}

TrainStageOutcome run_reasoner_stage(const Dataset& data, const ReasonerTrainOptions& options,
                                     const Context& ctx, const fs::path& run_dir, bool progress,
                                     bool force, const std::string& name) {
  options.validate();
  const fs::path dir = run_dir / name, knowledge = run_dir / "knowledge";
  const fs::path map_path = run_dir / "sid" / "sid_map.json", tok_path = knowledge / "tokenizer.model";
  for (const auto& [path, stage] : {std::pair{map_path, "sid"}, {run_dir / "sidgen" / "model.pt", "train sidgen"},
                                    {tok_path, "knowledge"}})
    if (!fs::exists(path))
      throw_input_error("{}: missing; run `twistar {} --run {}` first", path.string(), stage, run_dir.string());
  nlohmann::json config = options.to_json();
  config["seed"] = ctx.seed;
  std::map<std::string, std::string> inputs = {{"data", data.fingerprint()},
                                               {"tokenizer", hash_file(tok_path)},
                                               {"knowledge", hash_file(knowledge / "knowledge.tsv")}};
  auto fast = load_fast_rec(run_dir, ctx);
  inputs["base"] = fast->fingerprint();
  if (!force)
    if (auto done = reusable_stage(dir, "reasoner", config, inputs)) return *done;
  if (force && fs::exists(dir)) fs::remove_all(dir);
  TrainControl control;
  control.progress = progress;
  auto sids = SidMap::load(map_path);
  auto base = load_sid_generator(run_dir / "sidgen", sids.sids(), sids.level_sizes(), ctx);
  auto tok = SpTokenizer::load(tok_path);
  auto r = train_reasoner(data, base, sids, tok, knowledge, options, ctx, dir, control);
  TrainStageOutcome out;
  for (const auto& [stage, s] : r.seconds) out.train_seconds += s;
  out.best_valid_ndcg10 = r.valid_ndcg10.count("reasoning") ? r.valid_ndcg10.at("reasoning") : 0.0;
  out.best_epoch = r.best_epoch;
  return out;
}

TrainStageOutcome run_planner_stage(const Dataset& data, const PlannerOptions& options, const Context& ctx,
                                    const fs::path& run_dir, bool progress, bool force) {
  options.validate();
  const fs::path dir = run_dir / "planner";
  const fs::path reasoner = run_dir / options.reasoner / "model.pt", sidgen = run_dir / "sidgen" / "model.pt";
  for (const auto& [path, what] : {std::pair{sidgen, std::string("train sidgen")},
                                   {run_dir / "ranker" / "manifest.json", std::string("train ranker")},
                                   {reasoner, "train reasoner --reasoner-name " + options.reasoner}})
    if (!fs::exists(path))
      throw_input_error("{}: missing; run `twistar {} --run {}` first", path.string(), what, run_dir.string());
  auto ranker = Manifest::load(run_dir / "ranker");
  std::map<std::string, std::string> inputs = {{"data", data.fingerprint()},
                                               {"sidgen", hash_file(sidgen)},
                                               {"reasoner", hash_file(reasoner)},
                                               {"ranker", hash_string(ranker->to_json().dump())}};
  nlohmann::json config = options.to_json();
  config["seed"] = ctx.seed;
  // The episodes are the slow tool's answers under its search settings: other settings (e.g. new
  // defaults) make the planner stale.
  config["think_and_rec"] = ThinkAndRecOptions{}.to_json();
  // What planner.json holds beside the weights (a planner of an older version re-selects; its weights
  // resume): 2 = the threshold router tuned under the same latency cap as the served β, and β chosen
  // over the grid and its midpoints; 3 = with the think signal (episodes.h).
  config["selection"] = 3;
  if (!force)
    if (auto done = reusable_stage(dir, "planner", config, inputs)) return *done;
  if (force && fs::exists(dir)) fs::remove_all(dir);
  TrainControl control;
  control.progress = progress;
  auto tools = load_toolbox(run_dir, ctx, options.reasoner, options.wide);
  std::string tools_key;
  for (const auto& [name, hash] : inputs) tools_key += name + "=" + hash + ";";
  tools_key += "think_and_rec=" + config["think_and_rec"].dump();
  auto r = train_planner(data, tools, options, ctx, dir, hash_string(tools_key), control);
  TrainStageOutcome out;
  out.train_seconds = r.episode_seconds + r.sft_seconds + r.grpo_seconds;
  out.best_valid_ndcg10 = r.grpo_holdout_reward;
  if (!r.finished) return out;
  Manifest m;
  m.stage = "planner";
  m.config = config;
  m.inputs = inputs;
  m.metrics = {{"sft_holdout_reward", r.sft_holdout_reward}, {"grpo_holdout_reward", r.grpo_holdout_reward},
               {"beta", r.beta}, {"threshold", r.threshold.threshold},
               {"threshold_after_rank", r.threshold.after_rank}, {"costs", r.costs.to_json()},
               {"episode_seconds", r.episode_seconds}, {"sft_seconds", r.sft_seconds},
               {"grpo_seconds", r.grpo_seconds}, {"holdout_sweep", r.sweep}};
  m.wall_seconds = out.train_seconds;
  m.save(dir);
  return out;
}

}  // namespace twistar
