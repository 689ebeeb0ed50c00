#include "eval/latency.h"

#include <algorithm>
#include <numeric>

namespace twistar {

nlohmann::json LatencyStats::to_json() const {
  return {{"count", count}, {"mean", mean}, {"p50", p50}, {"p95", p95}, {"p99", p99}, {"max", max}};
}

namespace {
double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0.0;
  double pos = q * (sorted.size() - 1);
  size_t lo = static_cast<size_t>(pos);
  size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
}
}  // namespace

LatencyStats summarize_latency(std::vector<double> samples) {
  LatencyStats s;
  s.count = samples.size();
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  s.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / samples.size();
  s.p50 = percentile(samples, 0.50);
  s.p95 = percentile(samples, 0.95);
  s.p99 = percentile(samples, 0.99);
  s.max = samples.back();
  return s;
}

}  // namespace twistar
