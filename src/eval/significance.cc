#include "eval/significance.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <random>

#include "core/error.h"
#include "core/log.h"
#include "data/ranks.h"

namespace twistar {

namespace {

/// The per-request value of "ndcg@K" or "recall@K" for a 1-based rank.
std::function<double(int)> metric_of(const std::string& metric) {
  const auto at = metric.find('@');
  int k = 0;
  if (at != std::string::npos) {
    try {
      size_t used = 0;
      k = std::stoi(metric.substr(at + 1), &used);
      if (used != metric.size() - at - 1) k = 0;
    } catch (const std::exception&) {
      k = 0;
    }
  }
  const std::string name = metric.substr(0, at);
  if (k <= 0 || (name != "ndcg" && name != "recall"))
    throw_input_error("paired comparison: unknown metric '{}' (ndcg@K or recall@K, K >= 1)", metric);
  if (name == "ndcg") return [k](int rank) { return ndcg_at(rank, k); };
  return [k](int rank) { return rank >= 1 && rank <= k ? 1.0 : 0.0; };
}

/// The statistic of each bootstrap resample of the n paired requests (drawn with replacement, every
/// series at the same draws), sorted; `stat` reads the series' sums over the drawn requests.
std::vector<double> bootstrap_stats(const std::vector<const std::vector<double>*>& series,
                                    const BootstrapOptions& options,
                                    const std::function<double(const std::vector<double>&)>& stat) {
  const size_t n = series.front()->size();
  std::mt19937_64 rng(options.seed);
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  std::vector<double> stats(static_cast<size_t>(options.resamples)), sums(series.size());
  for (double& value : stats) {
    std::fill(sums.begin(), sums.end(), 0.0);
    for (size_t i = 0; i < n; ++i) {
      const size_t at = pick(rng);
      for (size_t s = 0; s < series.size(); ++s) sums[s] += (*series[s])[at];
    }
    value = stat(sums);
  }
  std::sort(stats.begin(), stats.end());
  return stats;
}

/// The q-quantile of sorted values, interpolated linearly.
double sorted_quantile(const std::vector<double>& sorted, double q) {
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

}  // namespace

nlohmann::json PairedDifference::to_json() const {
  return {{"diff", diff},         {"ci", {lo, hi}},           {"level", level},
          {"p", p},               {"differing", differing},   {"requests", requests}};
}

void BootstrapOptions::validate() const {
  if (resamples < 100) throw_input_error("paired comparison: resamples must be >= 100 (got {})", resamples);
  if (!(level > 0 && level < 1)) throw_input_error("paired comparison: level must be in (0, 1) (got {})", level);
}

PairedDifference paired_bootstrap(const std::vector<int>& ranks, const std::vector<int>& reference,
                                  const std::string& metric, const BootstrapOptions& options) {
  options.validate();
  const auto value = metric_of(metric);
  if (ranks.size() != reference.size())
    throw_input_error("paired comparison: {} requests against the reference's {}", ranks.size(), reference.size());
  if (ranks.empty()) throw_input_error("paired comparison: no requests");
  const size_t n = ranks.size();
  std::vector<double> d(n);
  PairedDifference out;
  out.metric = metric;
  out.level = options.level;
  out.requests = n;
  double total = 0;
  for (size_t i = 0; i < n; ++i) {
    d[i] = value(ranks[i]) - value(reference[i]);
    total += d[i];
    out.differing += d[i] != 0;
  }
  out.diff = total / static_cast<double>(n);
  const auto means = bootstrap_stats({&d}, options, [n](const std::vector<double>& sums) {
    return sums[0] / static_cast<double>(n);
  });
  out.lo = sorted_quantile(means, (1 - options.level) / 2);
  out.hi = sorted_quantile(means, 1 - (1 - options.level) / 2);
  const auto below = std::count_if(means.begin(), means.end(), [](double m) { return m <= 0; });
  const auto above = std::count_if(means.begin(), means.end(), [](double m) { return m >= 0; });
  out.p = std::min(1.0, 2.0 * static_cast<double>(std::min(below, above)) / static_cast<double>(means.size()));
  return out;
}

nlohmann::json LatencyRatio::to_json() const {
  return {{"reference", reference}, {"ratio", ratio},   {"ci", {lo, hi}},         {"level", level},
          {"mean_ms", mean_ms},     {"reference_mean_ms", reference_mean_ms}, {"requests", requests},
          {"block", block},         {"turns", turns}};
}

LatencyRatio latency_ratio(const std::vector<double>& latency_ms, const std::vector<double>& reference_ms,
                           const std::string& reference, const BootstrapOptions& options, size_t block) {
  options.validate();
  if (block == 0) throw_input_error("latency ratio: the turns must hold at least one request");
  if (latency_ms.size() != reference_ms.size())
    throw_input_error("latency ratio: {} timed requests against the reference's {}", latency_ms.size(),
                      reference_ms.size());
  if (latency_ms.empty()) throw_input_error("latency ratio: no timed requests");
  auto sum = [](const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); };
  if (!(sum(reference_ms) > 0)) throw_input_error("latency ratio: the reference {} took no time", reference);
  LatencyRatio out;
  out.reference = reference;
  out.level = options.level;
  out.requests = latency_ms.size();
  const double n = static_cast<double>(out.requests);
  out.mean_ms = sum(latency_ms) / n;
  out.reference_mean_ms = sum(reference_ms) / n;
  out.ratio = out.mean_ms / out.reference_mean_ms;
  out.block = block;
  // Each turn's total per system; the statistic (a ratio of sums) is the same over turns as over requests.
  std::vector<double> turn_ms, turn_reference_ms;
  for (size_t start = 0; start < out.requests; start += block) {
    const auto end = static_cast<std::ptrdiff_t>(std::min(out.requests, start + block));
    const auto from = static_cast<std::ptrdiff_t>(start);
    turn_ms.push_back(std::accumulate(latency_ms.begin() + from, latency_ms.begin() + end, 0.0));
    turn_reference_ms.push_back(std::accumulate(reference_ms.begin() + from, reference_ms.begin() + end, 0.0));
  }
  out.turns = turn_ms.size();
  // One turn says nothing of how the machine's state moves the ratio between turns.
  if (out.turns < 2)
    throw_input_error("latency ratio: {} timed requests make {} turn(s) of {}; the interval needs at least two",
                      out.requests, out.turns, block);
  const auto ratios = bootstrap_stats({&turn_ms, &turn_reference_ms}, options, [](const std::vector<double>& sums) {
    return sums[1] > 0 ? sums[0] / sums[1] : std::numeric_limits<double>::infinity();
  });
  out.lo = sorted_quantile(ratios, (1 - options.level) / 2);
  out.hi = sorted_quantile(ratios, 1 - (1 - options.level) / 2);
  return out;
}

void add_paired_comparisons(std::vector<EvalResult>& results, const std::string& reference,
                            const BootstrapOptions& options) {
  const auto ref = std::find_if(results.begin(), results.end(), [&](const EvalResult& r) { return r.system == reference; });
  if (ref == results.end()) throw_input_error("--compare-to: '{}' is not among the evaluated systems", reference);
  const std::vector<int> base = ref->ranks;
  for (auto& r : results) {
    if (r.system == reference) continue;
    if (r.ranks.size() != base.size()) {
      // Not comparable (no per-request ranks); the rest of the report is still written.
      spdlog::warn("--compare-to {}: {} has {} ranked requests, the reference {}; no paired comparison", reference,
                   r.system, r.ranks.size(), base.size());
      continue;
    }
    nlohmann::json paired = {{"reference", reference}};
    for (const auto& metric : kPairedMetrics) paired[metric] = paired_bootstrap(r.ranks, base, metric, options).to_json();
    r.extra["paired"] = std::move(paired);
  }
}

}  // namespace twistar
