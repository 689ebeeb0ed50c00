#include "tune/tpe.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace twistar {

void TpeOptions::validate() const {
  if (!(gamma > 0 && gamma < 1)) throw_input_error("tpe_gamma: must be in (0, 1), got {}", gamma);
  if (candidates < 1) throw_input_error("tpe_candidates: must be >= 1, got {}", candidates);
  if (startup < 1) throw_input_error("tpe_startup: must be >= 1, got {}", startup);
  if (prior_weight <= 0) throw_input_error("tpe_prior_weight: must be > 0, got {}", prior_weight);
}

namespace {

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

/// A one-dimensional density over an axis, fitted to some observations.
class AxisDensity {
 public:
  AxisDensity(const Axis& axis, const std::vector<double>& values, double prior_weight)
      : axis_(axis) {
    if (axis.kind == AxisKind::kChoice) {
      // Smoothed frequencies: the prior spreads `prior_weight` observations evenly.
      const double k = static_cast<double>(axis.choices.size());
      probs_.assign(axis.choices.size(), prior_weight / k);
      for (double v : values) probs_[index_of(v)] += 1.0;
      double total = values.size() + prior_weight;
      for (double& p : probs_) p /= total;
      return;
    }
    lo_ = to_internal(axis.lo);
    hi_ = to_internal(axis.hi);
    const double range = hi_ - lo_;
    std::vector<double> xs;
    for (double v : values) xs.push_back(to_internal(v));
    std::sort(xs.begin(), xs.end());
    // Bandwidth per point: the larger gap to its neighbours (the bounds count as neighbours),
    // kept between range / min(100, n + 1) and the range (Bergstra's heuristic).
    const double min_sigma = range / std::min(100.0, xs.size() + 1.0);
    for (size_t i = 0; i < xs.size(); ++i) {
      double left = xs[i] - (i > 0 ? xs[i - 1] : lo_);
      double right = (i + 1 < xs.size() ? xs[i + 1] : hi_) - xs[i];
      mus_.push_back(xs[i]);
      sigmas_.push_back(std::clamp(std::max(left, right), min_sigma, range));
      weights_.push_back(1.0);
    }
    mus_.push_back(0.5 * (lo_ + hi_));
    sigmas_.push_back(range);
    weights_.push_back(prior_weight);
    double total = 0;
    for (double w : weights_) total += w;
    for (double& w : weights_) w /= total;
  }

  double log_pdf(double v) const {
    if (axis_.kind == AxisKind::kChoice) return std::log(probs_[index_of(v)]);
    double x = to_internal(v);
    double p = 0;
    for (size_t i = 0; i < mus_.size(); ++i) {
      // Truncated to [lo, hi]: each component is renormalised by its mass inside the interval.
      double mass = normal_cdf((hi_ - mus_[i]) / sigmas_[i]) - normal_cdf((lo_ - mus_[i]) / sigmas_[i]);
      double z = (x - mus_[i]) / sigmas_[i];
      p += weights_[i] * std::exp(-0.5 * z * z) / (sigmas_[i] * std::sqrt(2 * M_PI) * std::max(mass, 1e-12));
    }
    return std::log(std::max(p, std::numeric_limits<double>::min()));
  }

  double sample(std::mt19937_64& rng) const {
    if (axis_.kind == AxisKind::kChoice) {
      std::discrete_distribution<size_t> d(probs_.begin(), probs_.end());
      return axis_.choices[d(rng)];
    }
    std::discrete_distribution<size_t> pick(weights_.begin(), weights_.end());
    size_t c = pick(rng);
    std::normal_distribution<double> n(mus_[c], sigmas_[c]);
    double x = n(rng);
    for (int tries = 0; (x < lo_ || x > hi_) && tries < 100; ++tries) x = n(rng);  // truncation
    x = std::clamp(x, lo_, hi_);
    return axis_.kind == AxisKind::kLog ? std::exp(x) : x;
  }

 private:
  double to_internal(double v) const { return axis_.kind == AxisKind::kLog ? std::log(v) : v; }
  size_t index_of(double v) const {
    size_t best = 0;
    for (size_t i = 1; i < axis_.choices.size(); ++i)
      if (std::fabs(axis_.choices[i] - v) < std::fabs(axis_.choices[best] - v)) best = i;
    return best;
  }

  const Axis& axis_;
  std::vector<double> probs_;
  double lo_ = 0, hi_ = 1;
  std::vector<double> mus_, sigmas_, weights_;
};

struct Split {
  std::vector<const ScoredParams*> good, bad;
};

Split split_history(const std::vector<ScoredParams>& history, double gamma) {
  std::vector<const ScoredParams*> sorted;
  for (const auto& h : history) sorted.push_back(&h);
  // Non-finite scores (diverged trials) sort last.
  auto key = [](const ScoredParams* p) {
    return std::isfinite(p->score) ? p->score : -std::numeric_limits<double>::infinity();
  };
  std::stable_sort(sorted.begin(), sorted.end(),
                   [&](const ScoredParams* a, const ScoredParams* b) { return key(a) > key(b); });
  size_t n_good = std::max<size_t>(1, static_cast<size_t>(std::ceil(gamma * sorted.size())));
  n_good = std::min(n_good, sorted.size());
  Split s;
  s.good.assign(sorted.begin(), sorted.begin() + n_good);
  s.bad.assign(sorted.begin() + n_good, sorted.end());
  return s;
}

std::vector<double> values_of(const std::vector<const ScoredParams*>& group, const Axis& axis,
                              const ParamSet& defaults) {
  std::vector<double> out;
  for (const auto* p : group) {
    auto it = p->params.find(axis.name);
    out.push_back(it != p->params.end() ? it->second : defaults.at(axis.name));
  }
  return out;
}

struct Densities {
  std::vector<AxisDensity> l, g;
};

Densities fit(const SearchSpace& space, const std::vector<ScoredParams>& history,
              const TpeOptions& o) {
  Split s = split_history(history, o.gamma);
  Densities d;
  for (const auto& axis : space.axes()) {
    d.l.emplace_back(axis, values_of(s.good, axis, space.defaults()), o.prior_weight);
    d.g.emplace_back(axis, values_of(s.bad, axis, space.defaults()), o.prior_weight);
  }
  return d;
}

double log_ratio(const SearchSpace& space, const Densities& d, const ParamSet& x) {
  double r = 0;
  for (size_t i = 0; i < space.axes().size(); ++i) {
    double v = x.at(space.axes()[i].name);
    r += d.l[i].log_pdf(v) - d.g[i].log_pdf(v);
  }
  return r;
}

}  // namespace

double tpe_log_ratio(const SearchSpace& space, const std::vector<ScoredParams>& history,
                     const TpeOptions& o, const ParamSet& x) {
  return log_ratio(space, fit(space, history, o), space.snap(x));
}

ParamSet tpe_propose(const SearchSpace& space, const std::vector<ScoredParams>& history,
                     const TpeOptions& o, std::mt19937_64& rng) {
  o.validate();
  if (history.size() < static_cast<size_t>(o.startup)) return space.sample(rng);
  Densities d = fit(space, history, o);
  ParamSet best;
  double best_ratio = -std::numeric_limits<double>::infinity();
  for (int c = 0; c < o.candidates; ++c) {
    ParamSet x;
    for (size_t i = 0; i < space.axes().size(); ++i) x[space.axes()[i].name] = d.l[i].sample(rng);
    x = space.snap(x);
    double r = log_ratio(space, d, x);
    if (r > best_ratio) {
      best_ratio = r;
      best = x;
    }
  }
  return best;
}

}  // namespace twistar
