#include "agent/beta_controller.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace twistar {

BetaController::BetaController(double beta, double target_ms, double step)
    : target_ms_(target_ms), step_(step), beta_(beta) {
  if (!(beta >= 0) || !std::isfinite(beta)) throw_input_error("planner: beta = {} must be a finite number >= 0", beta);
  if (!(target_ms >= 0) || !std::isfinite(target_ms))
    throw_input_error("planner: latency target = {} ms must be a finite number >= 0", target_ms);
  if (!(step > 0)) throw_input_error("planner: latency target step = {} must be positive", step);
  // β = 0 cannot move multiplicatively: a target starts it at the smallest β it may reach.
  if (target_ms_ > 0) beta_ = std::clamp(beta_, kMinBeta, kMaxBeta);
}

double BetaController::beta() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return beta_;
}

void BetaController::observe(const std::vector<double>& costs_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  beta_sum_ += beta_ * static_cast<double>(costs_ms.size());
  served_ += static_cast<int64_t>(costs_ms.size());
  if (target_ms_ <= 0) return;
  double excess = 0;
  for (double c : costs_ms) excess += c / target_ms_ - 1.0;
  beta_ = std::clamp(beta_ * std::exp(step_ * excess), kMinBeta, kMaxBeta);
}

double BetaController::mean_beta() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return served_ > 0 ? beta_sum_ / static_cast<double>(served_) : beta_;
}

void validate_latency_target(double share, double step) {
  if (!(share >= 0 && share <= 10))
    throw_input_error("latency_target: must be in [0, 10] (a share of think_and_rec's cost), got {}", share);
  if (!(step > 0 && std::isfinite(step)))
    throw_input_error("latency_target_step: must be a positive number, got {}", step);
}

}  // namespace twistar
