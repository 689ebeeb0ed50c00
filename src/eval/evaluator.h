// The offline evaluation harness: full ranking of every request of a split, metrics from the ranks,
// and per-request latency on one thread.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "data/recommender.h"
#include "data/split.h"
#include "eval/latency.h"

namespace twistar {

struct EvalOptions {
  /// Length of the ranked list each request returns (must cover the largest metric cut-off).
  int list_length = 20;
  /// Exclude history items from the candidates (the protocol's default).
  bool exclude_history = true;
  /// Requests timed one at a time on one thread (evenly spaced over the split); 0 skips timing.
  size_t latency_requests = 1000;
  /// time_interleaved: the requests each system serves in one turn before the other takes over.
  size_t interleave_block = 50;
  /// Serving throughput: the same requests in batches of this size, spread over `throughput_threads`
  /// request threads (one intra-op thread each); 0 skips it.
  size_t throughput_batch = 64;
  size_t throughput_threads = 2;
  /// The ranking pass: its batches spread over this many request threads of one intra-op thread each
  /// (for_each_task: small per-request tensors use the cores better that way). 1 = one thread at the
  /// intra-op threads the caller set. A system that adapts to its traffic is ranked on one thread, in
  /// the serving order (with one intra-op thread when this is > 1: the lists do not depend on it).
  size_t rank_threads = 1;
  /// Keep each example's returned list (EvalResult::lists; `twistar eval --lists`).
  bool keep_lists = false;
  /// Show a progress bar.
  bool progress = true;
  /// Called after the ranking pass, before latency and throughput are measured (e.g. to switch off
  /// an answer memo shared by the systems' ranking passes).
  std::function<void()> before_timing;

  void validate() const;
};

struct EvalResult {
  std::string system;
  std::map<std::string, double> metrics;
  LatencyStats latency;
  /// Users per second in batches of EvalOptions::throughput_batch (0 when not measured).
  double throughput = 0.0;
  /// 1-based rank of each example's target in the returned list (0 = not in the list), in the order of
  /// the examples: the input of oracle routers and significance tests.
  std::vector<int> ranks;
  /// Each example's returned list, best first (only with EvalOptions::keep_lists).
  std::vector<Ranking> lists;
  double eval_seconds = 0.0;
  /// Anything else a system wants in the report (train_seconds, parameters, plan shares...).
  nlohmann::json extra = nlohmann::json::object();

  /// The bench/results schema: recall@5, ..., latency_ms {mean,p50,p95,p99}, plus `extra`.
  nlohmann::json to_json() const;
};

EvalResult evaluate(const Recommender& recommender, const std::vector<Example>& examples,
                    const EvalOptions& options = {});

/// Per-request wall times (ms) of two systems on the same timed requests.
struct InterleavedTimes {
  std::vector<double> a, b;
};

/// Times the requests `evaluate` times (EvalOptions::latency_requests, evenly spaced; in a random order
/// when either system adapts to its traffic) one at a time on one thread, in turns of
/// EvalOptions::interleave_block requests: the first block by a then by b, the next by b then by a,
/// and so on. A drift of the machine's speed over the run (another job, its thermal state) lands on
/// both, so their ratio is steadier than that of two timing passes minutes apart; blocks rather than
/// single requests keep each system's weights as warm in the caches as in a pass of its own. Each
/// system answers one untimed warm-up request first.
InterleavedTimes time_interleaved(const Recommender& a, const Recommender& b, const std::vector<Example>& examples,
                                  const EvalOptions& options);

}  // namespace twistar
