// Per-request latency statistics (milliseconds).
#pragma once

#include <nlohmann/json.hpp>

#include <vector>

namespace twistar {

struct LatencyStats {
  size_t count = 0;
  double mean = 0, p50 = 0, p95 = 0, p99 = 0, max = 0;

  nlohmann::json to_json() const;
};

/// Summarises samples in milliseconds (percentiles by linear interpolation).
LatencyStats summarize_latency(std::vector<double> samples_ms);

}  // namespace twistar
