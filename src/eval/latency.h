// Per-request latency statistics (milliseconds).
#pragma once

#include <nlohmann/json.hpp>

#include <vector>

#include "core/compute_threads.h"

namespace twistar {

struct LatencyStats {
  size_t count = 0;
  double mean = 0, p50 = 0, p95 = 0, p99 = 0, max = 0;

  nlohmann::json to_json() const;
};

/// Summarises samples in milliseconds (percentiles by linear interpolation).
LatencyStats summarize_latency(std::vector<double> samples_ms);

/// Restricts libtorch to one intra-op thread for the lifetime of the guard (latency is defined on
/// one thread), restoring the previous count afterwards.
class SingleThreadGuard : public ComputeThreadsGuard {
 public:
  SingleThreadGuard() : ComputeThreadsGuard(1) {}
};

}  // namespace twistar
