#include "apps/commands.h"

#include <filesystem>
#include <iostream>
#include <memory>

#include "apps/pipeline.h"
#include "apps/sid_stage.h"
#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "eval/report.h"
#include "tune/tuner.h"

namespace twistar {
namespace fs = std::filesystem;

namespace {

struct GlobalOptions {
  Context ctx;
  std::string log_level = "info";
  bool quiet = false;
  std::string command_line;
};

struct DataOptions {
  std::string path;
  LoadOptions load;
};

void add_data_options(CLI::App* sub, DataOptions& d, bool required) {
  auto* opt = sub->add_option("--data", d.path,
                              "Dataset directory or file (sequences.txt dir, LC-Rec dir, RecBole "
                              ".inter, CSV/TSV log, raw Amazon reviews dir)");
  if (required) opt->required();
  sub->add_option("--format", d.load.format, "auto|sequences|lcrec|recbole|csv|amazon-raw")
      ->check(CLI::IsMember({"auto", "sequences", "lcrec", "recbole", "csv", "amazon-raw"}));
  sub->add_option("--kcore", d.load.kcore,
                  "k-core filter for interaction logs (csv, amazon-raw); 0 disables");
}

void add_train_options(CLI::App* sub, TrainOptions& o, const std::string& prefix,
                       const std::string& model) {
  auto flag = [&](const char* name) { return "--" + prefix + "-" + name; };
  sub->add_option(flag("lr"), o.lr, model + " AdamW learning rate");
  sub->add_option(flag("weight-decay"), o.weight_decay, model + " AdamW weight decay");
  sub->add_option(flag("batch-size"), o.batch_size, model + " sequences per batch");
  sub->add_option(flag("epochs"), o.epochs, model + " maximum epochs");
  sub->add_option(flag("patience"), o.patience,
                  model + " early stopping: validations without NDCG@10 gain");
  sub->add_option(flag("lr-decay"), o.lr_decay,
                  model + " learning-rate factor after each plateau of --" + prefix + "-lr-patience");
  sub->add_option(flag("lr-patience"), o.lr_patience, model + " validations without gain before each decay");
  sub->add_option(flag("max-minutes"), o.max_minutes, model + " time budget in minutes (0 = none)");
  sub->add_option(flag("eval-every"), o.eval_every, model + " validation every N epochs");
}

void add_sasrec_options(CLI::App* sub, SasrecOptions& o) {
  sub->add_option("--sasrec-dim", o.dim, "SASRec embedding width");
  sub->add_option("--sasrec-layers", o.layers, "SASRec transformer blocks");
  sub->add_option("--sasrec-heads", o.heads, "SASRec attention heads");
  sub->add_option("--sasrec-dropout", o.dropout, "SASRec dropout on embeddings and residuals");
  sub->add_option("--sasrec-attn-dropout", o.attn_dropout, "SASRec dropout on attention weights");
  sub->add_option("--sasrec-max-len", o.max_len, "SASRec history length");
  add_train_options(sub, o.train, "sasrec", "SASRec");
}

void add_sidgen_options(CLI::App* sub, SidGeneratorOptions& o) {
  sub->add_option("--sidgen-dim", o.dim, "SID generator width");
  sub->add_option("--sidgen-layers", o.layers, "SID generator history-encoder blocks");
  sub->add_option("--sidgen-decoder-layers", o.decoder_layers, "SID generator code-decoder blocks");
  sub->add_option("--sidgen-heads", o.heads, "SID generator attention heads");
  sub->add_option("--sidgen-dropout", o.dropout, "SID generator dropout on embeddings and residuals");
  sub->add_option("--sidgen-attn-dropout", o.attn_dropout, "SID generator dropout on attention weights");
  sub->add_option("--sidgen-max-len", o.max_len, "SID generator history length in items");
  sub->add_option("--sidgen-history-tokens", o.history_tokens,
                  "History tokens: item (one per item, sum of its code embeddings) | code (one per code)")
      ->check(CLI::IsMember({"item", "code"}));
  sub->add_flag("!--sidgen-no-item-id-input", o.item_id_input,
                "History tokens from the SID codes only (no learned per-item embedding)");
  sub->add_flag("!--sidgen-full-softmax", o.constrained_softmax,
                "Normalise each level over the whole codebook (TIGER) instead of the trie's codes");
  add_train_options(sub, o.train, "sidgen", "SID generator");
  sub->add_option("--sidgen-valid-users", o.valid_users,
                  "Validation users for early stopping (evenly spaced, 0 = all)");
  sub->add_option("--sidgen-valid-beam", o.valid_beam, "Beam width of the validation search");
}

void add_sid_options(CLI::App* sub, SidStageOptions& o) {
  sub->add_option("--embedding", o.embedding,
                  "Item embeddings: content|collaborative|hybrid|external")
      ->check(CLI::IsMember({"content", "collaborative", "hybrid", "external"}));
  sub->add_option("--hybrid-weight", o.hybrid_weight,
                  "Weight of the collaborative (SASRec) part of hybrid embeddings");
  sub->add_option("--external", o.external_path, "Float32 .npy matrix for --embedding external");
  sub->add_option("--tokenizer", o.tokenizer, "rqvae|rkmeans")
      ->check(CLI::IsMember({"rqvae", "rkmeans"}));
  sub->add_option("--levels", o.levels, "Code levels L (before the collision level)");
  sub->add_option("--codebook-size", o.codebook_size, "Codes per level K");
  sub->add_option("--dim", o.dim, "Content embedding dimension (TF-IDF + SVD rank)");
  sub->add_option("--svd-power", o.content.singular_value_power,
                  "Content rows are U*S^p: 1 = LSA, 0 = whitened");
  sub->add_option("--rqvae-latent", o.rqvae.latent_dim, "RQ-VAE latent width");
  sub->add_option("--rqvae-hidden", o.rqvae.hidden, "RQ-VAE encoder hidden widths")
      ->delimiter(',');
  sub->add_option("--rqvae-epochs", o.rqvae.epochs, "RQ-VAE maximum epochs");
  sub->add_option("--rqvae-warmup", o.rqvae.warmup_epochs,
                  "RQ-VAE autoencoder-only epochs before the k-means codebook initialisation");
  sub->add_option("--rqvae-batch-size", o.rqvae.batch_size, "RQ-VAE items per step");
  sub->add_option("--rqvae-lr", o.rqvae.lr, "RQ-VAE Adam learning rate");
  sub->add_option("--rqvae-beta", o.rqvae.beta, "RQ-VAE commitment loss weight");
  sub->add_option("--rqvae-max-minutes", o.rqvae.max_minutes,
                  "RQ-VAE training time budget in minutes (0 = none)");
  sub->add_flag("!--rqvae-no-dead-code-reset", o.rqvae.reset_dead_codes,
                "Do not re-seed RQ-VAE codes left unused over an epoch");
  sub->add_flag("--unique-last-level", o.rqvae.unique_last_level,
                "RQ-VAE: items sharing their first L-1 codes get distinct last codes");
  sub->add_option("--rkmeans-iterations", o.rkmeans.iterations,
                  "Residual k-means Lloyd iterations");
  sub->add_flag("--rkmeans-normalize-residuals", o.rkmeans.normalize_residuals,
                "Residual k-means: scale residuals per cluster before the next level");
}

void add_synth_options(CLI::App* sub, SynthOptions& s) {
  sub->add_option("--users", s.users, "Synthetic users");
  sub->add_option("--items", s.items, "Synthetic items");
  sub->add_option("--categories", s.categories, "Synthetic leaf categories");
  sub->add_option("--brands", s.brands, "Synthetic brands");
  sub->add_option("--min-length", s.min_length, "Shortest synthetic sequence");
  sub->add_option("--max-length", s.max_length, "Longest synthetic sequence");
  sub->add_option("--predictable-share", s.predictable_share,
                  "Share of users following item-to-item transitions");
  sub->add_option("--synth-seed", s.seed, "Seed of the synthetic generator");
}

void add_eval_options(CLI::App* sub, EvalStageOptions& e, std::string& split) {
  sub->add_option("--systems", e.systems, "Systems to evaluate (mostpop, swing, sasrec, fast_only)")
      ->delimiter(',');
  sub->add_option("--list-length", e.eval.list_length,
                  "Items each request returns (covers the metric cut-offs; fast_only: its k)");
  sub->add_option("--fast-beam", e.fast.beam, "fast_only: beam width (raised to k when smaller)");
  sub->add_option("--split", split, "valid or test")->check(CLI::IsMember({"valid", "test"}));
  sub->add_option("--max-history", e.max_history, "Histories keep their last N items (0 = all)");
  sub->add_flag("!--keep-history", e.eval.exclude_history,
                "Keep history items among the candidates (excluded by default)");
  sub->add_option("--latency-requests", e.eval.latency_requests,
                  "Requests timed one by one on one thread (0 = skip)");
  sub->add_option("--throughput-batch", e.eval.throughput_batch,
                  "Requests per call when measuring throughput (0 = skip)");
  sub->add_option("--throughput-threads", e.eval.throughput_threads,
                  "Request threads when measuring throughput");
  sub->add_option("--experiment", e.experiment, "Experiment name recorded in results.json");
  sub->add_option("--swing-alpha", e.swing.alpha, "Swing smoothing alpha");
  sub->add_option("--swing-top-k", e.swing.top_k, "Swing neighbours kept per item");
}

Dataset load_or_fail(const DataOptions& d) {
  Dataset data = load_dataset(d.path, d.load);
  spdlog::info("{}", data.summary());
  return data;
}

void setup(const GlobalOptions& g) {
  setup_logging(g.quiet ? "warn" : g.log_level);
  Progress::set_quiet(g.quiet);
  g.ctx.apply();
}

void register_synth(CLI::App& app, std::shared_ptr<GlobalOptions> g) {
  auto synth = std::make_shared<SynthOptions>();
  auto out = std::make_shared<std::string>();
  auto* sub = app.add_subcommand("synth", "Generate the synthetic dataset (sequences.txt format)");
  sub->add_option("--out", *out, "Output directory")->required();
  add_synth_options(sub, *synth);
  sub->callback([g, synth, out] {
    setup(*g);
    synth->validate();
    Dataset d = generate_synthetic(*synth);
    write_sequences_dir(d, *out);
    std::cout << d.summary() << "\nwritten to " << *out << "\n";
  });
}

void register_info(CLI::App& app, std::shared_ptr<GlobalOptions> g) {
  auto data = std::make_shared<DataOptions>();
  auto* sub = app.add_subcommand("info", "Load a dataset and print its statistics");
  add_data_options(sub, *data, true);
  sub->callback([g, data] {
    setup(*g);
    std::cout << load_or_fail(*data).summary() << "\n";
  });
}

void register_train(CLI::App& app, std::shared_ptr<GlobalOptions> g) {
  auto data = std::make_shared<DataOptions>();
  auto sasrec = std::make_shared<SasrecOptions>();
  auto sidgen = std::make_shared<SidGeneratorOptions>();
  auto model = std::make_shared<std::string>("sasrec");
  auto run = std::make_shared<std::string>("runs/default");
  auto force = std::make_shared<bool>(false);
  auto* sub = app.add_subcommand("train", "Train a model into the run directory (resumes if interrupted)");
  sub->add_option("model", *model, "Model to train: sasrec | sidgen (the SID generator; needs run/sid)")
      ->check(CLI::IsMember({"sasrec", "sidgen"}));
  sub->add_option("--run", *run, "Run directory");
  sub->add_flag("--force", *force, "Retrain even if the run directory has an up-to-date model");
  add_data_options(sub, *data, true);
  add_sasrec_options(sub, *sasrec);
  add_sidgen_options(sub, *sidgen);
  sub->callback([g, data, sasrec, sidgen, model, run, force] {
    setup(*g);
    if (*model == "sasrec") sasrec->validate();
    if (*model == "sidgen") sidgen->validate();
    Dataset d = load_or_fail(*data);
    auto r = *model == "sasrec" ? run_sasrec_stage(d, *sasrec, g->ctx, *run, !g->quiet, *force)
                                : run_sidgen_stage(d, *sidgen, g->ctx, *run, !g->quiet, *force);
    std::cout << fmt::format("{}: best valid NDCG@10 {:.4f} at epoch {} ({:.0f} s){}\n", *model,
                             r.best_valid_ndcg10, r.best_epoch, r.train_seconds,
                             r.skipped ? " [reused]" : "");
  });
}

void register_eval(CLI::App& app, std::shared_ptr<GlobalOptions> g) {
  auto data = std::make_shared<DataOptions>();
  auto eval = std::make_shared<EvalStageOptions>();
  auto split = std::make_shared<std::string>("test");
  auto run = std::make_shared<std::string>("runs/default");
  auto* sub = app.add_subcommand("eval", "Evaluate systems with full ranking; writes results.json/.md");
  sub->add_option("--run", *run, "Run directory (trained models are read from it)");
  add_data_options(sub, *data, true);
  add_eval_options(sub, *eval, *split);
  sub->callback([g, data, eval, split, run] {
    setup(*g);
    eval->split = parse_split(*split);
    eval->command = g->command_line;
    Dataset d = load_or_fail(*data);
    auto doc = run_eval_stage(d, *eval, g->ctx, *run);
    std::cout << markdown_table(doc);
  });
}

void register_sid(CLI::App& app, std::shared_ptr<GlobalOptions> g) {
  auto data = std::make_shared<DataOptions>();
  auto sid = std::make_shared<SidStageOptions>();
  auto run = std::make_shared<std::string>("runs/default");
  auto force = std::make_shared<bool>(false);
  auto* sub = app.add_subcommand(
      "sid", "Learn semantic IDs (embeddings -> tokenizer -> unique SIDs) into run/sid + a report");
  sub->add_option("--run", *run, "Run directory (collaborative/hybrid read run/sasrec)");
  sub->add_flag("--force", *force, "Rerun even if run/sid is up to date");
  add_data_options(sub, *data, true);
  add_sid_options(sub, *sid);
  sub->callback([g, data, sid, run, force] {
    setup(*g);
    sid->validate();
    Dataset d = load_or_fail(*data);
    auto r = run_sid_stage(d, *sid, g->ctx, *run, *force);
    std::cout << sid_report_markdown(r.report) << (r.skipped ? "[reused]\n" : "")
              << "written to " << (fs::path(*run) / "sid").string() << "\n";
  });
}

void register_quickstart(CLI::App& app, std::shared_ptr<GlobalOptions> g) {
  auto synth = std::make_shared<SynthOptions>();
  auto sasrec = std::make_shared<SasrecOptions>();
  auto sid = std::make_shared<SidStageOptions>();
  sid->embedding = "hybrid";  // the quickstart trains SASRec first, so it can use the best SIDs
  auto sidgen = std::make_shared<SidGeneratorOptions>();
  // The quickstart must finish in minutes on a 2-core machine: each training gets a budget and a
  // shorter patience (the synthetic curves flatten after a few minutes); the flags raise them.
  for (TrainOptions* t : {&sasrec->train, &sidgen->train}) {
    t->max_minutes = 3;
    t->patience = 3;
    t->lr_patience = 1;
  }
  auto run = std::make_shared<std::string>("runs/quickstart");
  auto* sub = app.add_subcommand(
      "quickstart", "The main job on the embedded default: synthesize data, train, evaluate, report");
  sub->add_option("--run", *run, "Run directory");
  add_synth_options(sub, *synth);
  add_sasrec_options(sub, *sasrec);
  add_sid_options(sub, *sid);
  add_sidgen_options(sub, *sidgen);
  sub->callback([g, synth, sasrec, sid, sidgen, run] {
    setup(*g);
    synth->validate();
    sasrec->validate();
    sid->validate();
    sidgen->validate();
    fs::path data_dir = fs::path(*run) / "data";
    Dataset d = generate_synthetic(*synth);
    write_sequences_dir(d, data_dir.string());
    d = load_dataset(data_dir.string());
    spdlog::info("{}", d.summary());
    run_sasrec_stage(d, *sasrec, g->ctx, *run, !g->quiet);
    run_sid_stage(d, *sid, g->ctx, *run);
    run_sidgen_stage(d, *sidgen, g->ctx, *run, !g->quiet);
    EvalStageOptions eval;
    eval.systems = {"mostpop", "swing", "sasrec", "fast_only"};
    eval.experiment = "quickstart";
    eval.command = g->command_line;
    eval.eval.progress = !g->quiet;
    auto doc = run_eval_stage(d, eval, g->ctx, *run);
    std::cout << markdown_table(doc) << "\nreport: " << (fs::path(*run) / "eval" / "results.md").string()
              << "\n";
  });
}

void register_tune(CLI::App& app, std::shared_ptr<GlobalOptions> g) {
  auto data = std::make_shared<DataOptions>();
  auto tune = std::make_shared<TuneOptions>();
  auto budget = std::make_shared<TrialBudget>();
  auto model = std::make_shared<std::string>("sasrec");
  auto seed = std::make_shared<int64_t>(-1);
  auto memory = std::make_shared<std::string>(tune->memory.string());
  auto run = std::make_shared<std::string>(tune->run.string());
  auto* sub = app.add_subcommand(
      "tune", "Tune a model's hyper-parameters in a closed loop (train, reflect, remember, propose); "
              "reruns continue where they stopped");
  sub->add_option("--model", *model, "Model to tune: sasrec | fast_rec (the SID generator; needs run/sid)")
      ->check(CLI::IsMember({"sasrec", "fast_rec"}));
  add_data_options(sub, *data, true);
  sub->add_option("--trials", tune->trials, "Trials in this run (a rerun continues up to this number)");
  sub->add_option("--memory", *memory, "Memory directory: trial logs, per-dataset lessons, heuristics");
  sub->add_option("--run", *run, "Run directory: the trials' trainings and tune_report.{json,md}");
  sub->add_option("--method", tune->method, "tune (memory-driven rules) | random | tpe")
      ->check(CLI::IsMember({"tune", "random", "tpe"}));
  sub->add_option("--seed", *seed, "Seed of the search and of every trial's training (-1 = the global --seed)");
  sub->add_option("--trial-minutes", budget->minutes, "Training minutes per trial (0 = no limit)");
  sub->add_option("--trial-epochs", budget->epochs, "Maximum epochs per trial");
  sub->add_option("--trial-patience", budget->patience, "Early stopping per trial: validations without gain");
  sub->add_option("--tpe-gamma", tune->tpe.gamma, "TPE: share of the trials that count as good");
  sub->add_option("--tpe-candidates", tune->tpe.candidates, "TPE: candidates drawn from l(x) per proposal");
  sub->add_option("--tpe-startup", tune->tpe.startup, "TPE: random trials before TPE takes over");
  sub->add_option("--llm-url", tune->llm.url,
                  "OpenAI-compatible API base URL (e.g. http://127.0.0.1:8000/v1) that writes reflections "
                  "and proposals; empty = the rule-based engineer only");
  sub->add_option("--llm-model", tune->llm.model, "Model name sent to --llm-url");
  sub->add_option("--llm-timeout", tune->llm.timeout_s, "Seconds to wait for the LLM's reply");
  sub->callback([g, data, tune, budget, model, seed, memory, run] {
    setup(*g);
    Context ctx = g->ctx;
    if (*seed >= 0) ctx.seed = static_cast<uint64_t>(*seed);
    tune->seed = ctx.seed;
    tune->memory = *memory;
    tune->run = *run;
    tune->progress = !g->quiet;
    tune->validate();
    budget->validate();
    Dataset d = load_or_fail(*data);
    auto runner = make_trial_runner(*model, d, ctx, *run, *budget, !g->quiet);
    run_tune(d, *runner, *budget, *tune);
    std::cout << read_file(fs::path(*run) / "tune_report.md") << "report: "
              << (fs::path(*run) / "tune_report.md").string() << "\nmemory: " << *memory << "\n";
  });
}

}  // namespace

void register_commands(CLI::App& app, const std::string& command_line) {
  auto g = std::make_shared<GlobalOptions>();
  g->command_line = command_line;
  app.config_formatter(std::make_shared<TomlConfig>());
  app.set_config("--config", "", "TOML file with option values ([train], [eval] ... tables for "
                 "subcommands); the command line overrides it");
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.option_defaults()->always_capture_default();
  app.set_version_flag("--version", std::string(TWISTAR_VERSION));
  app.add_option("--threads", g->ctx.threads, "Intra-op threads (0 = all cores)")->capture_default_str();
  app.add_option("--device", g->ctx.device, "cpu or cuda[:N]");
  app.add_option("--seed", g->ctx.seed, "Random seed");
  app.add_option("--log-level", g->log_level, "trace|debug|info|warn|error|off");
  app.add_flag("--quiet", g->quiet, "Only warnings and results");
  app.require_subcommand(1);
  register_synth(app, g);
  register_info(app, g);
  register_train(app, g);
  register_eval(app, g);
  register_sid(app, g);
  register_quickstart(app, g);
  register_tune(app, g);
}

}  // namespace twistar
