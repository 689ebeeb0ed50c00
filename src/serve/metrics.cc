#include "serve/metrics.h"

#include <fmt/format.h>

namespace twistar {

ServeMetrics::ServeMetrics()
    : bounds_{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0},
      buckets_(bounds_.size(), 0) {}

void ServeMetrics::record(int status, double seconds, const std::string& plan,
                          const std::string& error_code) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++by_status_[status];
  if (!error_code.empty()) ++errors_[error_code];
  if (!plan.empty()) ++plans_[plan];
  for (size_t i = 0; i < bounds_.size(); ++i)
    if (seconds <= bounds_[i]) ++buckets_[i];
  seconds_sum_ += seconds;
  ++count_;
}

std::string ServeMetrics::prometheus(bool ready, std::optional<PlannerGauges> planner) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  auto header = [&](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  header("twistar_ready", "gauge", "1 once the models are loaded and requests are answered.");
  out += fmt::format("twistar_ready {}\n", ready ? 1 : 0);
  header("twistar_requests_total", "counter", "Recommendation requests answered, by HTTP status.");
  for (const auto& [status, n] : by_status_)
    out += fmt::format("twistar_requests_total{{status=\"{}\"}} {}\n", status, n);
  header("twistar_request_errors_total", "counter",
         "Recommendation requests answered with an error, by error code.");
  for (const auto& [code, n] : errors_)
    out += fmt::format("twistar_request_errors_total{{code=\"{}\"}} {}\n", code, n);
  header("twistar_request_duration_seconds", "histogram",
         "Wall time of recommendation requests inside the server.");
  for (size_t i = 0; i < bounds_.size(); ++i)
    out += fmt::format("twistar_request_duration_seconds_bucket{{le=\"{}\"}} {}\n", bounds_[i],
                       buckets_[i]);
  out += fmt::format("twistar_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", count_);
  out += fmt::format("twistar_request_duration_seconds_sum {}\n", seconds_sum_);
  out += fmt::format("twistar_request_duration_seconds_count {}\n", count_);
  header("twistar_plans_total", "counter",
         "Answered requests by the plan that ran (tool calls joined by '>').");
  for (const auto& [plan, n] : plans_)
    out += fmt::format("twistar_plans_total{{plan=\"{}\"}} {}\n", plan, n);
  if (planner) {
    header("twistar_planner_beta", "gauge",
           "The latency price (NDCG@10 per second) mode auto's planner decides at now; moved to hold the target.");
    out += fmt::format("twistar_planner_beta {}\n", planner->beta);
    header("twistar_planner_latency_target_ms", "gauge",
           "The mean modelled cost per request the planner's beta is moved to hold (0: beta fixed).");
    out += fmt::format("twistar_planner_latency_target_ms {}\n", planner->target_ms);
  }
  return out;
}

}  // namespace twistar
