// Paired significance of the difference between two systems evaluated on the same requests: the mean
// per-request difference of a metric and a percentile bootstrap interval (requests resampled with
// replacement). Differences of 0.0001 NDCG@10 are common between routers that agree on most
// requests; the interval says whether a table's ordering is more than the split's noise.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "eval/evaluator.h"

namespace twistar {

struct PairedDifference {
  /// "ndcg@K" or "recall@K".
  std::string metric;
  /// Mean of metric(ranks) − metric(reference) over the requests.
  double diff = 0;
  /// The bootstrap interval at `level`.
  double lo = 0, hi = 0, level = 0.95;
  /// Two-sided bootstrap p-value: twice the share of resampled means on the far side of zero (its
  /// resolution is 2 / resamples).
  double p = 1;
  /// Requests on which the two systems' metric differs.
  size_t differing = 0;
  size_t requests = 0;
  nlohmann::json to_json() const;
};

struct BootstrapOptions {
  int resamples = 1000;
  double level = 0.95;
  uint64_t seed = 0;
  void validate() const;
};

/// The paired difference of `metric` between two systems' target ranks (1-based, 0 = missed) on the
/// same requests. The resamples depend on the seed and the request count only, so every system
/// compared with one reference under one seed sees the same resamples.
PairedDifference paired_bootstrap(const std::vector<int>& ranks, const std::vector<int>& reference,
                                  const std::string& metric, const BootstrapOptions& options = {});

/// The ratio of two systems' mean latencies over the same timed requests (timed interleaved in turns,
/// so that the machine's drift over a run lands on both), with a percentile bootstrap interval: the
/// turns are resampled with replacement, each keeping both systems' times. A turn, not a request, is
/// the unit: the machine's speed drifts over seconds (on a shared VM, by a third within a minute), so
/// the requests of one turn share its state and resampling them one by one would understate the
/// interval.
struct LatencyRatio {
  std::string reference;
  double ratio = 0, lo = 0, hi = 0, level = 0.95;
  /// The two systems' mean latencies (ms) over the requests.
  double mean_ms = 0, reference_mean_ms = 0;
  size_t requests = 0;
  /// Requests per turn (the last one may be shorter) and the turns resampled.
  size_t block = 1, turns = 0;
  nlohmann::json to_json() const;
};

/// The ratio of mean(latency_ms) to mean(reference_ms), request i timed on both, the requests timed in
/// turns of `block` (time_interleaved). Throws InputError when the lengths differ, there are no
/// requests, the block is 0, the requests make fewer than two turns or the reference took no time.
LatencyRatio latency_ratio(const std::vector<double>& latency_ms, const std::vector<double>& reference_ms,
                           const std::string& reference, const BootstrapOptions& options = {}, size_t block = 1);

/// The metrics compared against the reference.
inline const std::vector<std::string> kPairedMetrics = {"ndcg@10", "recall@10"};

/// Adds `paired` to every result but the reference: {"reference": name, "<metric>": difference...}.
/// Throws InputError when the reference is not among the results; a result with other requests than
/// the reference's (no per-request ranks) is skipped with a warning, so the report is still written.
void add_paired_comparisons(std::vector<EvalResult>& results, const std::string& reference,
                            const BootstrapOptions& options);

}  // namespace twistar
