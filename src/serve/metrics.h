// Counters of the HTTP service in the Prometheus text format (version 0.0.4): requests by status,
// errors by code, a latency histogram, the mix of plans that ran and the planner's served β.
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace twistar {

/// Mode auto's planner as it serves: the latency price β it decides at now (moved by its
/// BetaController) and the mean modelled cost per request it holds (ms; 0 = β fixed).
struct PlannerGauges {
  double beta = 0, target_ms = 0;
};

class ServeMetrics {
 public:
  ServeMetrics();
  /// One answered recommendation request: its status, wall time, plan ("" for errors) and error
  /// code ("" for successes).
  void record(int status, double seconds, const std::string& plan, const std::string& error_code);
  /// The exposition text; `ready` is whether the models are loaded, `planner` the planner's gauges
  /// when the service has one.
  std::string prometheus(bool ready, std::optional<PlannerGauges> planner = std::nullopt) const;

 private:
  mutable std::mutex mutex_;
  std::map<int, uint64_t> by_status_;
  std::map<std::string, uint64_t> errors_;
  std::map<std::string, uint64_t> plans_;
  /// Upper bounds (seconds) and cumulative counts of the latency histogram.
  std::vector<double> bounds_;
  std::vector<uint64_t> buckets_;
  double seconds_sum_ = 0;
  uint64_t count_ = 0;
};

}  // namespace twistar
