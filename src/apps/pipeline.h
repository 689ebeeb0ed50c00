// The stages behind the CLI, each reading from and writing to one run directory
// (runs/<name>/<stage>/ with a manifest.json). The CLI only parses options and calls these.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/context.h"
#include "data/loader.h"
#include "data/recommender.h"
#include "data/split.h"
#include "data/synth.h"
#include "eval/evaluator.h"
#include "eval/significance.h"
#include "graph/swing.h"
#include "agent/fast_rec.h"
#include "agent/reasoner_training.h"
#include "agent/think_and_rec.h"
#include "agent/planner.h"
#include "agent/rank_candidates.h"
#include "models/ranker.h"
#include "models/sasrec.h"
#include "models/sid_generator.h"

namespace twistar {

struct TrainStageOutcome {
  double train_seconds = 0;
  double best_valid_ndcg10 = 0;
  int best_epoch = 0;
  bool skipped = false;
};

/// The `sasrec` stage: trains into run/sasrec unless a finished stage with the same config and data
/// is already there (then it is reused). Resumes an interrupted training.
TrainStageOutcome run_sasrec_stage(const Dataset& data, const SasrecOptions& options,
                                    const Context& ctx, const std::filesystem::path& run_dir,
                                    bool progress, bool force = false);

/// The `sidgen` stage: trains the SID generator on the SIDs of run/sid (run `twistar sid` first)
/// into run/sidgen, early-stopped on fast_rec's validation NDCG@10. Reused when its config, data and
/// SID map are unchanged; resumes an interrupted training. Also writes run/items.tsv (raw ids and
/// training popularity, serve/item_table.h), which serving needs beside the model.
TrainStageOutcome run_sidgen_stage(const Dataset& data, const SidGeneratorOptions& options,
                                   const Context& ctx, const std::filesystem::path& run_dir,
                                   bool progress, bool force = false);

/// The run's generators (its backbone, when it has one, and its SID generator) trained again with
/// their own options on without_last_items(data) into run/heldout/{<backbone>,sid,sidgen}, reused
/// when up to date: they propose the ranker's held-out training lists. The backbone is left out when
/// `with_backbone` is false (a ranker that does not read it).
HeldoutGenerators train_heldout_generators(const Dataset& data, const Context& ctx,
                                           const std::filesystem::path& run_dir, bool progress,
                                           bool with_backbone = true);

/// The `ranker` stage: builds candidate lists with run/sidgen's fast_rec (and run/sasrec's logits when
/// the options read SASRec and the run has it), trains rank_candidates' model into run/ranker.
/// Reused when its config and inputs are unchanged; a DIN training resumes.
TrainStageOutcome run_ranker_stage(const Dataset& data, const RankerOptions& options,
                                   const Context& ctx, const std::filesystem::path& run_dir,
                                   bool progress, bool force = false);

/// The `reasoner` stage: trains the slow path's reasoning LM (agent/reasoner_training.h) into
/// run/<name> from run/sidgen, run/sid and run/knowledge. Reused when its config and inputs are
/// unchanged; every training stage resumes.
TrainStageOutcome run_reasoner_stage(const Dataset& data, const ReasonerTrainOptions& options,
                                     const Context& ctx, const std::filesystem::path& run_dir,
                                     bool progress, bool force = false,
                                     const std::string& name = "reasoner");

/// The `planner` stage: replays validation episodes of the run's three tools, then trains the planner
/// (warm-up, then GRPO) into run/planner. Reused when its config and the tools are unchanged; both
/// trainings resume.
TrainStageOutcome run_planner_stage(const Dataset& data, const PlannerOptions& options, const Context& ctx,
                                    const std::filesystem::path& run_dir, bool progress, bool force = false);

struct EvalStageOptions {
  /// Systems to evaluate, in report order: mostpop, swing, sasrec, fast_only, fast_rank,
  /// slow, router_random, router_threshold, twistar_sft, twistar, oracle. With fast_only and slow
  /// both, the report adds their complementarity; oracle (the best of fast_only, fast_rank and slow
  /// per user, the cheapest among ties) needs those three. router_random draws plans at twistar's
  /// plan mix when twistar was evaluated before it (otherwise at the planner's holdout mix).
  std::vector<std::string> systems = {"mostpop", "swing", "sasrec"};
  Split split = Split::kTest;
  /// Histories keep their last `max_history` items.
  size_t max_history = 50;
  /// Evaluate this many users, evenly spaced over the split (0 = all; for quick comparisons, e.g.
  /// choosing a setting on the validation split; the report records it).
  size_t users = 0;
  EvalOptions eval;
  SwingOptions swing;
  /// fast_only's beam (and chunk) settings.
  FastRecOptions fast;
  /// slow's search settings and the reasoner it reads (run/<reasoner>).
  ThinkAndRecOptions slow;
  std::string reasoner = "reasoner";
  /// The planner's β (< 0: the one it selected on validation) and per-request latency budget (ms, 0
  /// = none).
  double planner_beta = -1;
  double budget_ms = 0;
  /// twistar's mean cost per request as a share of think_and_rec's (cost model), held by moving β from
  /// the selected one (BetaController); 0 = β fixed. A fixed --planner-beta keeps β fixed.
  double latency_target = kLatencyTargetShare;
  /// How fast twistar's β moves towards the target (BetaController's step).
  double latency_target_step = kLatencyTargetStep;
  /// twistar is also evaluated at each of these β (the accuracy/latency curve), in its `beta_sweep`.
  std::vector<double> planner_betas;
  /// Plan mix of router_random (fast_only, fast_rank, slow); set from twistar when evaluated first.
  std::optional<std::array<double, kNumPlans>> router_shares;
  /// Every other system's paired difference to this one (NDCG@10, Recall@10; bootstrap interval over
  /// the requests) in its `paired` entry; empty = none.
  std::string compare_to;
  BootstrapOptions bootstrap;
  /// Two systems (system, reference) whose timed requests are also timed interleaved, each request
  /// served by both back to back (time_interleaved), after every system's own timing: the system's
  /// `latency_ratio` entry (ratio of mean latencies with a bootstrap interval) cancels the machine's
  /// drift between two timing passes. Empty = none; e.g. {"twistar", "slow"} for the planner's bar. A
  /// pair system that is not among `systems` is loaded for the timing alone.
  std::vector<std::string> latency_pair;
  /// When set, also writes every user's returned list per system to this file, for analysis outside
  /// twistar: JSON lines {"user", "target", "history", "lists": {system: [[item, score], ...]}}, item
  /// and user ids as in the data, one line per evaluated user in split order (written atomically). The
  /// oracle, built from the other systems' ranks, has no list of its own.
  std::filesystem::path lists;
  /// Name recorded in results.json.
  std::string experiment = "eval";
  /// The command line recorded in results.json.
  std::string command;
};

/// Builds one named system from the run directory (statistics from training parts only). Systems that
/// think share think_and_rec's searches through `memo` when one is given.
std::unique_ptr<Recommender> make_system(const std::string& name, const Dataset& data,
                                         const std::filesystem::path& run_dir, const Context& ctx,
                                         const EvalStageOptions& options,
                                         std::shared_ptr<ThinkMemo> memo = nullptr);

/// The oracle router (an upper bound: it reads the targets): per user the best of the canonical plans
/// among `results` (fast_only, fast_rank and slow needed; fast_rank_slow when present), the cheaper
/// among ties. Its latency per user is the chosen plan's mean latency, and it has none when a plan was
/// not timed. nullopt when a needed plan is missing or the plans ranked different users.
std::optional<EvalResult> oracle_router(const std::vector<EvalResult>& results);

/// Evaluates the systems and writes run/eval/results.{json,md}; returns the results document.
nlohmann::json run_eval_stage(const Dataset& data, const EvalStageOptions& options,
                              const Context& ctx, const std::filesystem::path& run_dir);

}  // namespace twistar
