#include "apps/commands.h"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>

#include "apps/fit.h"
#include "apps/knowledge_stage.h"
#include "apps/pipeline.h"
#include "apps/sid_stage.h"
#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/manifest.h"
#include "core/progress.h"
#include "core/run_lock.h"
#include "eval/report.h"
#include "serve/http_server.h"
#include "serve/service.h"
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

/// The options of one sequential backbone (o.arch names it and prefixes its flags: --sasrec-dim, --bsarec-dim).
void add_sasrec_options(CLI::App* sub, SasrecOptions& o) {
  const std::string p = "--" + o.arch + "-", label = o.is_bsarec() ? "BSARec" : "SASRec";
  sub->add_option(p + "dim", o.dim, label + " embedding width");
  sub->add_option(p + "layers", o.layers, label + " blocks");
  sub->add_option(p + "heads", o.heads, label + " attention heads");
  sub->add_option(p + "dropout", o.dropout, label + " dropout on embeddings and residuals");
  sub->add_option(p + "attn-dropout", o.attn_dropout, label + " dropout on attention weights");
  sub->add_option(p + "max-len", o.max_len, label + " history length");
  if (o.is_bsarec()) {
    sub->add_option(p + "alpha", o.alpha, "BSARec weight of the frequency branch against attention");
    sub->add_option(p + "freq-cutoff", o.freq_cutoff, "BSARec low band: DFT bins [0, c/2+1) of the window");
  }
  add_train_options(sub, o.train, o.arch, label);
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

/// think_and_rec's grounding bonuses (agent/grounding.h) under `prefix`-ground-{category,brand,link}.
void add_grounding_options(CLI::App* sub, GroundingWeights& g, const std::string& prefix) {
  sub->add_option(prefix + "-ground-category", g.category,
                  "think_and_rec: bonus for candidates in the category the rationale names");
  sub->add_option(prefix + "-ground-brand", g.brand, "think_and_rec: bonus for candidates of the brand the rationale names");
  sub->add_option(prefix + "-ground-link", g.link,
                  "think_and_rec: bonus for knowledge neighbours of the history item the rationale links to");
}

void add_eval_options(CLI::App* sub, EvalStageOptions& e, std::string& split) {
  sub->add_option("--systems", e.systems, "Systems to evaluate (mostpop, swing, sasrec, bsarec, fast_only, fast_rank, slow, "
                  "fast_rank_slow, router_random, router_threshold, twistar_sft, twistar, oracle)")
      ->delimiter(',');
  sub->add_option("--list-length", e.eval.list_length,
                  "Items each request returns (covers the metric cut-offs; fast_only: its k)");
  sub->add_option("--fast-beam", e.fast.beam, "fast_only: beam width (raised to k when smaller)");
  sub->add_option("--slow-beam", e.slow.beam, "slow: SID beam width per rationale");
  sub->add_option("--slow-samples", e.slow.samples, "slow: rationales per request (1 = greedy; more are sampled and merged)");
  sub->add_option("--slow-temperature", e.slow.temperature, "slow: sampling temperature of the rationales");
  sub->add_option("--slow-propose", e.slow.propose,
                  "slow: knowledge neighbours of the rationale's linked item scored and added to each beam (0 = none)");
  sub->add_option("--slow-fuse", e.slow.fuse,
                  "think_and_rec after rank_candidates (fast_rank_slow): weight of the ranked list in the reciprocal-rank "
                  "fusion with the thought's list (0 = the thought's list alone)")
      ->check(CLI::Range(0.0, 0.999));
  sub->add_option("--slow-fuse-offset", e.slow.fuse_offset, "think_and_rec fusion: the offset c in w / (c + rank)")
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--slow-rerank,!--no-slow-rerank", e.slow.rerank,
                "think_and_rec after rank_candidates (fast_rank_slow): the ranker re-scores fast_rec's candidates "
                "joined by the thought's best --slow-rerank-pool (off: the reciprocal-rank fusion)");
  sub->add_option("--slow-rerank-pool", e.slow.rerank_pool, "think_and_rec: the thought's items that join the ranking")
      ->check(CLI::PositiveNumber);
  sub->add_option("--slow-thought-rank-weight", e.slow.thought_rank_weight,
                  "think_and_rec after re-ranking: weight of the thought's log-rank against the ranking's in the "
                  "final order (0 = the ranker's order alone)")
      ->check(CLI::NonNegativeNumber);
  add_grounding_options(sub, e.slow.ground, "--slow");
  sub->add_flag("--slow-grammar,!--no-slow-grammar", e.slow.grammar,
                "slow: keep rationales to the reasoning format (catalogue category and brand, a valid link)");
  sub->add_option("--reasoner-name", e.reasoner, "slow: the reasoner directory inside the run");
  sub->add_option("--users", e.users, "Evaluate this many users, evenly spaced over the split (0 = all)");
  sub->add_option("--lists", e.lists,
                  "Also write each user's list from every system to this file (JSON lines, for analysis)");
  sub->add_option("--planner-beta", e.planner_beta, "twistar: β (< 0: the one selected on validation)");
  sub->add_option("--planner-sweep", e.planner_betas, "twistar: also evaluate at these β (the accuracy/latency curve)")
      ->delimiter(',');
  sub->add_option("--budget-ms", e.budget_ms, "Planner systems: per-request latency budget in ms (0 = none)");
  sub->add_option("--latency-target", e.latency_target,
                  "twistar: the mean cost per request it holds by moving β as it serves, as a share of think_and_rec's "
                  "(0: β fixed at the selected one)")
      ->check(CLI::Range(0.0, 10.0));
  sub->add_option("--latency-target-step", e.latency_target_step,
                  "twistar: how fast β moves towards the target (each request moves log β by step × (cost / target − 1))")
      ->check(CLI::PositiveNumber);
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
  sub->add_option("--compare-to", e.compare_to,
                  "Paired NDCG@10 and Recall@10 difference of every other system to this one, with a bootstrap "
                  "interval over the requests");
  sub->add_option("--latency-pair", e.latency_pair,
                  "system,reference: also time these two interleaved on the same requests (each served by both back "
                  "to back), for the ratio of their mean latencies with a bootstrap interval over the turns (e.g. twistar,slow)")
      ->delimiter(',');
  sub->add_option("--interleave-block", e.eval.interleave_block,
                  "--latency-pair: requests each system serves per turn (1 = alternate every request)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--bootstrap-resamples", e.bootstrap.resamples, "--compare-to and --latency-pair: bootstrap resamples")
      ->check(CLI::Range(100, 1000000));
  sub->add_option("--swing-alpha", e.swing.alpha, "Swing smoothing alpha");
  sub->add_option("--swing-top-k", e.swing.top_k, "Swing neighbours kept per item");
}

void add_knowledge_options(CLI::App* sub, KnowledgeStageOptions& o) {
  sub->add_option("--neighbors", o.knowledge.swing.top_k,
                  "Swing neighbours per item that become candidate pairs");
  sub->add_option("--min-co-users", o.knowledge.min_co_users,
                  "A strong pair needs at least this many users who took both items");
  sub->add_option("--swing-alpha", o.knowledge.swing.alpha, "Swing smoothing alpha");
  sub->add_option("--explanations-per-pair", o.explain.per_pair,
                  "Explanations per strong pair, each phrased differently (1-3)");
  sub->add_option("--min-order-share", o.explain.min_order_share,
                  "An order claim needs this share of co-users taking one item first");
  sub->add_option("--min-order-support", o.explain.min_order_support,
                  "An order claim needs at least this many co-users");
  sub->add_option("--min-next-users", o.explain.min_next_users,
                  "A 'bought right after' claim needs at least this many users");
  sub->add_option("--vocab-size", o.tokenizer.vocab_size,
                  "SentencePiece vocabulary, special and SID tokens included");
  sub->add_option("--tokenizer-type", o.tokenizer.model_type, "SentencePiece model: unigram|bpe")
      ->check(CLI::IsMember({"unigram", "bpe"}));
  sub->add_option("--llm-url", o.chat.url,
                  "OpenAI-compatible endpoint that writes the explanations, e.g. "
                  "http://127.0.0.1:8080/v1 (empty: templates only)");
  sub->add_option("--llm-model", o.chat.model, "The model field sent to --llm-url");
  sub->add_option("--llm-timeout", o.chat.timeout_seconds, "Seconds per --llm-url request");
}

void add_serve_options(CLI::App* sub, ServeOptions& o, std::string& run, std::string& data) {
  sub->add_option("--run", run, "Run directory (run/sid, run/sidgen, run/items.tsv)")->required();
  sub->add_option("--data", data,
                  "Dataset the run was trained on; only read when run/items.tsv is missing "
                  "(run directories made before the sidgen stage wrote it)");
  sub->add_option("--max-body-bytes", o.max_body_bytes, "Largest request body accepted (bytes)");
  sub->add_option("--max-history", o.max_history, "Longest history accepted (items)");
  sub->add_option("--max-k", o.max_k, "Largest k accepted");
  sub->add_option("--default-k", o.default_k, "k when a request does not give one (capped at --max-k)");
  sub->add_flag("--strict", o.strict,
                "Unknown history items are a 400 (otherwise dropped and listed in the answer)");
  sub->add_option("--fast-beam", o.fast_beam, "fast_rec beam width (raised to k when smaller)");
  sub->add_option("--rank-candidates", o.rank_candidates,
                  "fast_rec candidates handed to rank_candidates in mode rank");
  sub->add_option("--latency-target", o.latency_target,
                  "Mode auto: the mean cost per request the planner holds by moving β, as a share of think_and_rec's "
                  "(0: its selected β, fixed)");
  sub->add_option("--latency-target-step", o.latency_target_step,
                  "Mode auto: how fast β moves towards the target (each request moves log β by step × (cost / target − 1))");
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

void add_ranker_options(CLI::App* sub, RankerOptions& o) {
  sub->add_option("--ranker-kind", o.kind, "Ranker: din (target attention + side features) or gbdt (XGBoost LambdaMART)")
      ->check(CLI::IsMember({"din", "gbdt"}));
  sub->add_option("--ranker-candidates", o.candidates, "fast_rec candidates per list (rank_candidates' default m)");
  sub->add_option("--ranker-pool-backbone", o.pool_backbone,
                  "Backbone's top items joined to fast_rec's in the pool the ranker orders (0 = none)");
  sub->add_option("--ranker-pool-swing", o.pool_swing,
                  "Swing's top items for the recent history joined to the pool (0 = none)");
  sub->add_option("--ranker-training-lists", o.training_lists,
                  "Training lists from generators retrained without each user's last training item (heldout) "
                  "or from the run's own generators on training prefixes (prefixes)")
      ->check(CLI::IsMember({"heldout", "prefixes"}));
  sub->add_option("--ranker-lists-per-user", o.lists_per_user, "Training lists per user (prefixes: its last training prefixes)");
  sub->add_flag("!--ranker-no-sasrec", o.use_sasrec, "Do not read SASRec's logits as features");
  sub->add_flag("--ranker-add-missed-positive", o.add_missed_positive,
                "Put a training target the beam missed into its list (default: drop the list)");
  sub->add_option("--ranker-dim", o.dim, "DIN item embedding width");
  sub->add_option("--ranker-history", o.history, "History items each candidate attends over");
  sub->add_option("--ranker-hidden", o.hidden, "DIN scoring MLP width");
  sub->add_option("--ranker-attention-hidden", o.attention_hidden, "DIN attention MLP width");
  sub->add_option("--ranker-dropout", o.dropout, "DIN dropout");
  sub->add_option("--ranker-gbdt-rounds", o.gbdt_rounds, "gbdt: maximum boosting rounds");
  sub->add_option("--ranker-gbdt-depth", o.gbdt_depth, "gbdt: tree depth");
  sub->add_option("--ranker-gbdt-eta", o.gbdt_eta, "gbdt: learning rate");
  add_train_options(sub, o.train, "ranker", "ranker");
}

void add_planner_options(CLI::App* sub, PlannerOptions& o) {
  sub->add_option("--planner-betas", o.betas, "β grid (NDCG@10 per second of latency) GRPO trains over")
      ->delimiter(',');
  sub->add_option("--planner-beta", o.beta, "Served β (< 0: the most accurate β within --planner-latency-share)");
  sub->add_option("--planner-latency-share", o.latency_share,
                  "β selection: holdout mean cost at most this share of think_and_rec's");
  sub->add_option("--planner-holdout", o.holdout, "Share of validation users held out for selection");
  sub->add_option("--planner-users", o.users, "Validation users replayed (evenly spaced; 0 = all)");
  sub->add_option("--planner-cost-requests", o.cost_requests, "Requests timed one by one for the cost model");
  sub->add_option("--planner-wide", o.wide, "fast_rec candidates handed to rank_candidates");
  sub->add_option("--planner-max-calls", o.max_calls, "Tool calls per episode");
  sub->add_option("--planner-invalid-penalty", o.invalid_penalty, "Reward penalty per invalid call");
  sub->add_option("--planner-explore", o.explore, "Warm-up: share of users relabelled with a random plan");
  sub->add_option("--planner-group", o.group, "GRPO: trajectories per user");
  sub->add_option("--planner-group-mode", o.group_mode,
                  "GRPO's group: sample (trajectories from the policy) or plans (every canonical plan, weighted "
                  "by its probability)")
      ->check(CLI::IsMember({"sample", "plans"}));
  sub->add_option("--planner-ppo-epochs", o.ppo_epochs, "GRPO: updates per sampled batch");
  sub->add_option("--planner-sample-explore", o.sample_explore,
                  "GRPO: share of sampled calls drawn uniformly (exploration)");
  sub->add_option("--planner-clip", o.clip, "GRPO: ratio clip");
  sub->add_option("--planner-kl", o.kl, "GRPO: weight of the KL to the warm-up policy");
  sub->add_option("--planner-budget-share", o.budget_share, "GRPO: share of episodes with a latency budget");
  sub->add_option("--planner-dim", o.policy.dim, "Policy SID embedding width");
  sub->add_option("--planner-hidden", o.policy.hidden, "Policy MLP width");
  sub->add_option("--planner-reasoner", o.reasoner, "The reasoner the slow tool reads (run/NAME)");
  add_train_options(sub, o.sft, "planner-sft", "planner warm-up");
  add_train_options(sub, o.grpo, "planner-grpo", "planner GRPO (batch = users per update)");
}

void add_reasoner_options(CLI::App* sub, ReasonerTrainOptions& o, std::string& name) {
  auto& m = o.model;
  sub->add_option("--reasoner-name", name, "Directory of the reasoner inside the run (run/NAME)");
  sub->add_option("--reasoner-layers", m.layers, "Reasoning LM blocks (width and heads are the SID generator's)");
  sub->add_option("--reasoner-dropout", m.dropout, "Reasoning LM dropout");
  sub->add_option("--reasoner-context", m.context_items, "History items the LM reads as context tokens");
  sub->add_option("--reasoner-item-text", m.item_text_pieces, "Name pieces added to each history item");
  sub->add_option("--reasoner-max-rationale", m.max_rationale, "Longest rationale in pieces");
  sub->add_option("--reasoner-rationale-weight", m.rationale_weight, "Weight of the rationale tokens' loss");
  sub->add_option("--reasoner-align-epochs", o.align_epochs, "Epochs of stage (a), item alignment (0 skips it)");
  sub->add_option("--reasoner-commonsense-epochs", o.commonsense_epochs,
                  "Epochs of stage (b), the collaborative-commonsense corpus");
  sub->add_flag("!--reasoner-no-commonsense", o.commonsense, "Skip stage (b) (ablation)");
  sub->add_flag("!--reasoner-no-rationale", o.rationale,
                "Train and search without rationales: the SID right after the history (ablation)");
  sub->add_option("--reasoner-prefixes", o.prefixes_per_user, "Training prefixes per user and epoch");
  sub->add_option("--reasoner-valid-users", o.valid_users, "Validation users for early stopping (0 = all)");
  sub->add_option("--reasoner-valid-beam", o.valid_beam, "Beam of the validation search");
  add_train_options(sub, o.train, "reasoner", "reasoner (stage c; a and b use its lr and batch size)");
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
  auto bsarec = std::make_shared<SasrecOptions>(SasrecOptions::bsarec());
  auto sidgen = std::make_shared<SidGeneratorOptions>();
  auto ranker = std::make_shared<RankerOptions>();
  auto reasoner = std::make_shared<ReasonerTrainOptions>();
  auto reasoner_name = std::make_shared<std::string>("reasoner");
  auto planner = std::make_shared<PlannerOptions>();
  auto model = std::make_shared<std::string>("sasrec");
  auto run = std::make_shared<std::string>("runs/default");
  auto force = std::make_shared<bool>(false);
  auto* sub = app.add_subcommand("train", "Train a model into the run directory (resumes if interrupted)");
  sub->add_option("model", *model,
                  "Model to train: sasrec | bsarec (BSARec: attention beside a frequency filter) | sidgen "
                  "(the SID generator; needs run/sid) | ranker "
                  "(rank_candidates; needs run/sidgen) | reasoner (think_and_rec's LM; needs run/sidgen and "
                  "run/knowledge) | planner (needs run/sidgen, run/ranker and run/reasoner)")
      ->check(CLI::IsMember({"sasrec", "bsarec", "sidgen", "ranker", "reasoner", "planner"}));
  sub->add_option("--run", *run, "Run directory");
  sub->add_flag("--force", *force, "Retrain even if the run directory has an up-to-date model");
  add_data_options(sub, *data, true);
  add_sasrec_options(sub, *sasrec);
  add_sasrec_options(sub, *bsarec);
  add_sidgen_options(sub, *sidgen);
  add_ranker_options(sub, *ranker);
  add_reasoner_options(sub, *reasoner, *reasoner_name);
  add_planner_options(sub, *planner);
  sub->callback([g, data, sasrec, bsarec, sidgen, ranker, reasoner, reasoner_name, planner, model, run, force] {
    setup(*g);
    if (*model == "sasrec") sasrec->validate();
    if (*model == "bsarec") bsarec->validate();
    if (*model == "sidgen") sidgen->validate();
    if (*model == "ranker") ranker->validate();
    if (*model == "reasoner") reasoner->validate();
    if (*model == "planner") planner->validate();
    RunLock lock(*run, g->command_line);
    Dataset d = load_or_fail(*data);
    if (*model == "planner") {
      auto r = run_planner_stage(d, *planner, g->ctx, *run, !g->quiet, *force);
      auto m = Manifest::load(fs::path(*run) / "planner");
      std::cout << fmt::format("planner: holdout reward {:.4f} (warm-up {:.4f}), served beta {} ({:.0f} s){}\n",
                               m ? m->metrics.value("grpo_holdout_reward", 0.0) : 0.0,
                               m ? m->metrics.value("sft_holdout_reward", 0.0) : 0.0,
                               m ? m->metrics.value("beta", 0.0) : 0.0, r.train_seconds, r.skipped ? " [reused]" : "");
      return;
    }
    auto r = *model == "sasrec"   ? run_sasrec_stage(d, *sasrec, g->ctx, *run, !g->quiet, *force)
             : *model == "bsarec" ? run_sasrec_stage(d, *bsarec, g->ctx, *run, !g->quiet, *force)
             : *model == "sidgen" ? run_sidgen_stage(d, *sidgen, g->ctx, *run, !g->quiet, *force)
             : *model == "ranker"
                 ? run_ranker_stage(d, *ranker, g->ctx, *run, !g->quiet, *force)
                 : run_reasoner_stage(d, *reasoner, g->ctx, *run, !g->quiet, *force, *reasoner_name);
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
    RunLock lock(*run, g->command_line);
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
    RunLock lock(*run, g->command_line);
    Dataset d = load_or_fail(*data);
    auto r = run_sid_stage(d, *sid, g->ctx, *run, *force);
    std::cout << sid_report_markdown(r.report) << (r.skipped ? "[reused]\n" : "")
              << "written to " << (fs::path(*run) / "sid").string() << "\n";
  });
}

void register_knowledge(CLI::App& app, std::shared_ptr<GlobalOptions> g) {
  auto data = std::make_shared<DataOptions>();
  auto options = std::make_shared<KnowledgeStageOptions>();
  auto run = std::make_shared<std::string>("runs/default");
  auto force = std::make_shared<bool>(false);
  auto* sub = app.add_subcommand(
      "knowledge",
      "Item-to-item knowledge -> explanation corpus -> SentencePiece tokenizer into run/knowledge "
      "(needs run/sid)");
  sub->add_option("--run", *run, "Run directory (reads run/sid/sid_map.json)");
  sub->add_flag("--force", *force, "Rerun even if run/knowledge is up to date");
  add_data_options(sub, *data, true);
  add_knowledge_options(sub, *options);
  sub->callback([g, data, options, run, force] {
    setup(*g);
    options->validate();
    RunLock lock(*run, g->command_line);
    Dataset d = load_or_fail(*data);
    auto r = run_knowledge_stage(d, *options, g->ctx, *run, *force);
    const auto& s = r.stats;
    std::cout << fmt::format(
        "{} strong pairs -> {} explanations ({} sentences, {} distinct phrasings); tokenizer of "
        "{} pieces; {:.1f} s{}\nwritten to {}\n",
        s.value("strong_pairs", 0), s.value("explanations", 0), s.value("sentences", 0),
        s.value("distinct_phrasings", 0), s.value("tokenizer_vocab_size", 0), r.seconds,
        r.skipped ? " [reused]" : "", (fs::path(*run) / "knowledge").string());
  });
}

/// The stage options `fit` and `quickstart` share: every stage's flags, as `twistar train`, `sid` and
/// `knowledge` name them.
void add_fit_options(CLI::App* sub, FitOptions& o) {
  sub->add_option("--backbone", o.backbone, "Sequential backbone: bsarec or sasrec (its item table feeds the SIDs "
                  "and the ranker)")
      ->check(CLI::IsMember({"bsarec", "sasrec"}));
  sub->add_option("--from", o.from, "First stage to run (the earlier ones must be finished)")
      ->check(CLI::IsMember(fit_stages()));
  sub->add_option("--until", o.until, "Last stage to run")->check(CLI::IsMember(fit_stages()));
  sub->add_flag("--force", o.force, "Retrain every stage that runs, even when up to date");
  add_sasrec_options(sub, o.sasrec);
  add_sasrec_options(sub, o.bsarec);
  add_sid_options(sub, o.sid);
  add_sidgen_options(sub, o.sidgen);
  add_ranker_options(sub, o.ranker);
  add_knowledge_options(sub, o.knowledge);
  add_reasoner_options(sub, o.reasoner, o.reasoner_name);
  add_planner_options(sub, o.planner);
  sub->add_option("--systems", o.eval.systems,
                  "Systems the eval stage compares (default: mostpop, swing, the backbone, fast_only, fast_rank, slow, "
                  "fast_rank_slow, twistar, router_random, router_threshold, oracle)")
      ->delimiter(',');
  sub->add_option("--eval-users", o.eval.users, "Eval stage: this many users, evenly spaced over the split (0 = all)");
}

/// Runs the chain, one line per stage on stdout, then prints the evaluation table when it ran.
void fit_and_print(const Dataset& d, const FitOptions& fit, const GlobalOptions& g, const std::string& run) {
  auto out = run_fit(d, fit, g.ctx, run, !g.quiet,
                     [](const FitStageEvent& e) { std::cout << fit_event_line(e) << std::endl; });
  if (out.eval)
    std::cout << markdown_table(*out.eval) << "\nreport: "
              << (fs::path(run) / (fit.eval.split == Split::kTest ? "eval" : "eval-valid") / "results.md").string()
              << "\n";
}

void register_fit(CLI::App& app, std::shared_ptr<GlobalOptions> g) {
  auto data = std::make_shared<DataOptions>();
  auto fit = std::make_shared<FitOptions>();
  auto split = std::make_shared<std::string>("test");
  auto run = std::make_shared<std::string>("runs/default");
  auto* sub = app.add_subcommand(
      "fit", "Every stage from the data to an evaluated planner (backbone, sid, sidgen, ranker, knowledge, reasoner, "
             "planner, eval); finished stages are reused, a killed fit resumes");
  sub->add_option("--run", *run, "Run directory");
  add_data_options(sub, *data, true);
  add_fit_options(sub, *fit);
  sub->add_option("--split", *split, "Eval stage: valid or test")->check(CLI::IsMember({"valid", "test"}));
  sub->callback([g, data, fit, split, run] {
    setup(*g);
    fit->eval.split = parse_split(*split);
    fit->eval.command = g->command_line;
    fit->validate();
    RunLock lock(*run, g->command_line);
    fit_and_print(load_or_fail(*data), *fit, *g, *run);
  });
}

void register_quickstart(CLI::App& app, std::shared_ptr<GlobalOptions> g) {
  auto synth = std::make_shared<SynthOptions>();
  auto fit = std::make_shared<FitOptions>();
  fit->knowledge.tokenizer.vocab_size = 2000;  // the synthetic catalogue's text is small
  fit->reasoner.train.epochs = 2;
  auto latency_requests = std::make_shared<size_t>(300);
  // The quickstart must finish in minutes on a 2-core machine: each training gets a budget and a
  // shorter patience (the synthetic curves flatten after a few minutes); the flags raise them.
  for (TrainOptions* t : {&fit->sasrec.train, &fit->bsarec.train, &fit->sidgen.train, &fit->ranker.train,
                          &fit->reasoner.train}) {
    t->max_minutes = 3;
    t->patience = 3;
    t->lr_patience = 1;
  }
  // With the reasoner and the planner in it, the whole job took 11.5 minutes with these at 3, 1.5 and
  // 1000 (2026-11-26); the SID generator's curve is flat after 2 minutes on the synthetic data.
  fit->sidgen.train.max_minutes = 2;
  fit->reasoner.train.max_minutes = 1;
  fit->planner.sft.max_minutes = 1;
  fit->planner.grpo.max_minutes = 1;
  auto run = std::make_shared<std::string>("runs/quickstart");
  auto* sub = app.add_subcommand(
      "quickstart", "The main job on the embedded default: synthesize data, then `fit` on it (train, evaluate, report)");
  sub->add_option("--run", *run, "Run directory");
  add_synth_options(sub, *synth);
  add_fit_options(sub, *fit);
  sub->add_option("--latency-requests", *latency_requests, "Requests timed one by one on one thread per system");
  sub->callback([g, synth, fit, latency_requests, run] {
    setup(*g);
    synth->validate();
    fit->validate();
    RunLock lock(*run, g->command_line);
    fs::path data_dir = fs::path(*run) / "data";
    Dataset d = generate_synthetic(*synth);
    write_sequences_dir(d, data_dir.string());
    d = load_dataset(data_dir.string());
    spdlog::info("{}", d.summary());
    EvalStageOptions& eval = fit->eval;
    if (eval.systems.empty()) {
      eval.systems = fit_default_systems(fit->backbone);
      eval.systems.insert(eval.systems.end() - 1, "twistar_sft");  // the warm-up planner, before the oracle
    }
    // The curve at up to 6 β evenly spaced over the grid (each is a full evaluation).
    const auto& grid = fit->planner.betas;
    const size_t points = std::min<size_t>(grid.size(), 6);
    for (size_t i = 0; i < points; ++i)
      eval.planner_betas.push_back(grid[points > 1 ? i * (grid.size() - 1) / (points - 1) : 0]);
    eval.experiment = "quickstart";
    eval.command = g->command_line;
    eval.eval.latency_requests = *latency_requests;
    // The latency pair's interval resamples its turns: at least six, of at most 50 requests.
    eval.eval.interleave_block = std::clamp<size_t>(*latency_requests / 6, 1, 50);
    fit_and_print(d, *fit, *g, *run);
  });
}

void register_serve(CLI::App& app, std::shared_ptr<GlobalOptions> g) {
  auto limits = std::make_shared<ServeOptions>();
  auto http = std::make_shared<HttpOptions>();
  auto run = std::make_shared<std::string>();
  auto data = std::make_shared<std::string>();
  auto* sub = app.add_subcommand(
      "serve",
      "HTTP JSON service: POST /v1/recommend, GET /healthz, GET /metrics (stops on SIGTERM)");
  add_serve_options(sub, *limits, *run, *data);
  sub->add_option("--host", http->host, "Address to bind (0.0.0.0 for every interface)");
  sub->add_option("--port", http->port, "TCP port (0 = any free port, printed at start)");
  sub->add_option("--threads", http->threads, "Requests computed at once");
  sub->add_option("--max-connections", http->max_connections,
                  "Connections served at once, idle and slow ones included (0 = 8 x --threads, at least 64)");
  sub->add_option("--read-timeout-ms", http->read_timeout_ms, "Drop a request that sends nothing for this long");
  sub->add_option("--keep-alive-seconds", http->keep_alive_seconds, "Close an idle keep-alive connection after this");
  sub->callback([g, limits, http, run, data] {
    setup(*g);
    limits->validate();
    http->validate();
    install_shutdown_signals();
    HttpServer server(*http, *limits);
    int port = server.bind();
    server.start();
    std::cout << fmt::format("listening on http://{}:{}", http->host, port) << std::endl;
    try {
      server.set_service(load_service(*run, *limits, g->ctx, *data));
    } catch (...) {
      server.stop();
      throw;
    }
    spdlog::info("models loaded from {}; ready", *run);
    int sig = wait_for_shutdown_signal();
    spdlog::info("signal {}: finishing the requests in flight", sig);
    server.stop();
    std::cout << "stopped" << std::endl;
  });
}

/// The human-readable form of an answer: one line per item, then the plan and the notes.
std::string answer_text(const nlohmann::json& a) {
  std::string out;
  int rank = 1;
  for (const auto& item : a["items"])
    out += fmt::format("{:>3}  {:<16} index {:<8} score {:.4f}\n", rank++,
                       item["id"].get<std::string>(), item["index"].get<int>(),
                       item["score"].get<double>());
  std::string plan;
  for (const auto& step : a.value("plan", nlohmann::json::array()))
    plan += fmt::format("{}{}({}) {:.2f} ms", plan.empty() ? "" : " -> ",
                        step["tool"].get<std::string>(), step["args"]["k"].get<int>(),
                        step["latency_ms"].get<double>());
  out += fmt::format("mode {} ran {}: {}total {:.2f} ms\n", a["mode"].get<std::string>(),
                     a["ran"].get<std::string>(), plan.empty() ? "" : plan + "; ",
                     a["latency_ms"]["total"].get<double>());
  if (!a["unknown_items"].empty())
    out += "unknown items (ignored): " + dump_json(a["unknown_items"]) + "\n";
  if (a.contains("note")) out += "note: " + a["note"].get<std::string>() + "\n";
  return out;
}

void register_recommend(CLI::App& app, std::shared_ptr<GlobalOptions> g) {
  auto limits = std::make_shared<ServeOptions>();
  auto run = std::make_shared<std::string>();
  auto data = std::make_shared<std::string>();
  auto history = std::make_shared<std::vector<std::string>>();
  auto k = std::make_shared<int>(10);
  auto mode = std::make_shared<std::string>("auto");
  auto keep = std::make_shared<bool>(false);
  auto json = std::make_shared<bool>(false);
  auto* sub =
      app.add_subcommand("recommend", "Recommend for one history; prints the service's answer");
  add_serve_options(sub, *limits, *run, *data);
  sub->add_option("--history", *history, "Raw item ids, oldest first, comma-separated")
      ->delimiter(',');
  sub->add_option("--k", *k, "Items to recommend");
  sub->add_option("--mode", *mode, "auto|fast|rank|slow");
  sub->add_flag("--keep-history", *keep, "Keep history items among the recommendations");
  sub->add_flag("--json", *json, "Print the answer as the JSON the HTTP API returns");
  sub->callback([g, limits, run, data, history, k, mode, keep, json] {
    setup(*g);
    nlohmann::json request = {{"history", nlohmann::json::array()}, {"k", *k}, {"mode", *mode},
                              {"exclude_history", !*keep}};
    for (const auto& id : *history)
      if (!id.empty()) request["history"].push_back(id);
    auto service = load_service(*run, *limits, g->ctx, *data);
    auto answer = service->handle(dump_json(request));
    if (answer.status != 200) {
      const auto& e = answer.body["error"];
      std::string message = e.value("message", "");
      if (answer.status >= 500) throw Error(message);
      throw InputError(message);
    }
    std::cout << (*json ? dump_json(answer.body, 2) + "\n" : answer_text(answer.body));
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
    RunLock lock(*run, g->command_line);
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
  register_knowledge(app, g);
  register_fit(app, g);
  register_quickstart(app, g);
  register_serve(app, g);
  register_recommend(app, g);
  register_tune(app, g);
}

void run_command(const std::vector<std::string>& args) {
  CLI::App app{"twistar"};
  std::string command_line = "twistar";
  for (const auto& a : args) command_line += " " + a;
  register_commands(app, command_line);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them last first
  app.parse(reversed);
}

void parse_fit_options(const std::vector<std::string>& args, FitOptions& fit, Context& ctx) {
  CLI::App app{"twistar fit"};
  app.option_defaults()->always_capture_default();
  app.add_option("--threads", ctx.threads, "Intra-op threads (0 = all cores)");
  app.add_option("--seed", ctx.seed, "Random seed");
  std::string split = "test";
  add_fit_options(&app, fit);
  app.add_option("--split", split, "Eval stage: valid or test")->check(CLI::IsMember({"valid", "test"}));
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  app.parse(reversed);
  fit.eval.split = parse_split(split);
  fit.validate();
}

}  // namespace twistar
