// `twistar fit`: every stage of the chain from a dataset to an evaluated planner, in one call.
//
// Stages, in order: backbone (BSARec by default, or SASRec) -> sid (hybrid embeddings, RQ-VAE, unique
// last level) -> sidgen -> ranker -> knowledge -> reasoner -> planner -> eval. Each stage already
// reuses a finished, up-to-date result and resumes an interrupted training, so a fit killed at any
// point and run again with the same options finishes with the manifests an uninterrupted one writes.
// `from` / `until` run a contiguous part of the chain; the stages before `from` must be finished.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "apps/knowledge_stage.h"
#include "apps/pipeline.h"
#include "apps/sid_stage.h"

namespace twistar {

/// The chain's stages in run order.
const std::vector<std::string>& fit_stages();

/// The systems the eval stage compares by default: mostpop, swing, `backbone`, fast_only, fast_rank,
/// slow, fast_rank_slow, twistar, router_random, router_threshold, oracle.
std::vector<std::string> fit_default_systems(const std::string& backbone);

struct FitOptions {
  /// The sequential backbone: bsarec (the default: above SASRec on every validation split measured,
  /// docs/RESULTS.md) or sasrec. Its item table feeds the hybrid SIDs and the ranker's features.
  std::string backbone = "bsarec";
  SasrecOptions sasrec;
  SasrecOptions bsarec = SasrecOptions::bsarec();
  SidStageOptions sid = default_sid();
  SidGeneratorOptions sidgen = default_sidgen();
  RankerOptions ranker;
  KnowledgeStageOptions knowledge;
  ReasonerTrainOptions reasoner;
  std::string reasoner_name = "reasoner";
  PlannerOptions planner;
  /// The evaluation at the end (systems: the headline set with the chosen backbone).
  EvalStageOptions eval = default_eval();
  /// Run the stages [from, until] only (empty: the first / the last).
  std::string from, until;
  /// Retrain every stage that runs, even when up to date.
  bool force = false;

  /// Throws InputError naming the bad field (unknown stage, `from` after `until`, a stage's options).
  void validate() const;
  /// The options of the chosen backbone.
  const SasrecOptions& backbone_options() const { return backbone == "bsarec" ? bsarec : sasrec; }

  /// The benchmarks' SID settings: hybrid embeddings (the backbone's item table beside the content
  /// embedding), RQ-VAE with distinct last codes.
  static SidStageOptions default_sid();
  /// The benchmarks' SID generator budget (40 minutes).
  static SidGeneratorOptions default_sidgen();
  /// The headline systems (bench/headline.sh) compared to twistar, with the twistar/slow latency pair.
  static EvalStageOptions default_eval();
};

/// What happened to one stage; passed to the progress callback when the stage starts (done = false)
/// and when it ends (done = true).
struct FitStageEvent {
  std::string stage;
  /// 1-based position among the stages this fit runs, and their number.
  size_t index = 0, count = 0;
  bool done = false;
  /// The stage was up to date and reused (done events).
  bool reused = false;
  /// Wall seconds of this stage in this call (done events) and of the fit so far.
  double seconds = 0, elapsed = 0;
  /// Rough seconds left for the stages from this one on (start events) or after it (done events).
  double eta_seconds = 0;
  /// One line: the stage's headline figure (done events), e.g. "valid NDCG@10 0.0737 at epoch 41".
  std::string summary;
};

struct FitOutcome {
  std::vector<FitStageEvent> stages;
  /// The results document when the eval stage ran.
  std::optional<nlohmann::json> eval;
};

/// Rough wall seconds of `stage` on `data` with one thread on the 2-core reference machine: the
/// stage's measured seconds per training interaction on Beauty (bench/results) times the data's
/// interactions, capped by the stage's time budget where it has one.
double fit_stage_estimate_seconds(const std::string& stage, const Dataset& data, const FitOptions& options);

/// Runs the stages of `options` into run_dir. `on_stage` (optional) hears each stage's start and end;
/// the estimates it reports are rescaled by how the finished stages compared with their own.
FitOutcome run_fit(const Dataset& data, const FitOptions& options, const Context& ctx,
                   const std::filesystem::path& run_dir, bool progress,
                   const std::function<void(const FitStageEvent&)>& on_stage = {});

/// The event as the one progress line `twistar fit` prints.
std::string fit_event_line(const FitStageEvent& e);

}  // namespace twistar
