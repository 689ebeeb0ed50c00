#include "tune/search_space.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace twistar {

namespace {

/// Three significant digits keep logged values readable and make equal configurations compare equal.
double round_sig(double v) {
  if (v == 0 || !std::isfinite(v)) return v;
  double scale = std::pow(10.0, 2 - std::floor(std::log10(std::fabs(v))));
  return std::round(v * scale) / scale;
}

size_t nearest_choice(const Axis& a, double v) {
  size_t best = 0;
  for (size_t i = 1; i < a.choices.size(); ++i)
    if (std::fabs(a.choices[i] - v) < std::fabs(a.choices[best] - v)) best = i;
  return best;
}

double snap_value(const Axis& a, double v) {
  if (a.kind == AxisKind::kChoice) return a.choices[nearest_choice(a, v)];
  return std::clamp(round_sig(v), a.lo, a.hi);
}

const char* kind_name(AxisKind k) {
  switch (k) {
    case AxisKind::kChoice: return "choice";
    case AxisKind::kUniform: return "uniform";
    case AxisKind::kLog: return "log";
  }
  return "?";
}

}  // namespace

std::string format_value(double v) {
  if (std::fabs(v - std::round(v)) < 1e-12 && std::fabs(v) < 1e15) return fmt::format("{}", std::llround(v));
  return fmt::format("{:.3g}", v);
}

SearchSpace::SearchSpace(std::string model, std::vector<Axis> axes, ParamSet defaults)
    : model_(std::move(model)), axes_(std::move(axes)) {
  for (const auto& a : axes_) {
    if (a.kind == AxisKind::kChoice && a.choices.empty())
      throw_input_error("search space {}: axis {} has no choices", model_, a.name);
    if (a.kind != AxisKind::kChoice && !(a.lo < a.hi))
      throw_input_error("search space {}: axis {} needs lo < hi", model_, a.name);
    if (a.kind == AxisKind::kLog && (a.lo <= 0 || a.step <= 1))
      throw_input_error("search space {}: log axis {} needs lo > 0 and step > 1", model_, a.name);
  }
  defaults_ = snap(defaults);
}

const Axis& SearchSpace::axis(const std::string& name) const {
  for (const auto& a : axes_)
    if (a.name == name) return a;
  throw_input_error("search space {}: unknown axis '{}'", model_, name);
}

ParamSet SearchSpace::snap(const ParamSet& p) const {
  ParamSet out;
  for (const auto& a : axes_) {
    auto it = p.find(a.name);
    double v = it != p.end() ? it->second : defaults_.count(a.name) ? defaults_.at(a.name) : a.lo;
    if (a.kind == AxisKind::kChoice && it == p.end() && !defaults_.count(a.name)) v = a.choices[0];
    out[a.name] = snap_value(a, v);
  }
  return out;
}

std::optional<ParamSet> SearchSpace::step(const ParamSet& p, const std::string& name,
                                          int direction) const {
  const Axis& a = axis(name);
  ParamSet out = snap(p);
  double v = out.at(name);
  double next = v;
  if (a.kind == AxisKind::kChoice) {
    auto i = static_cast<int64_t>(nearest_choice(a, v)) + direction;
    if (i < 0 || i >= static_cast<int64_t>(a.choices.size())) return std::nullopt;
    next = a.choices[static_cast<size_t>(i)];
  } else if (a.kind == AxisKind::kUniform) {
    next = snap_value(a, v + direction * a.step);
  } else {
    next = snap_value(a, direction > 0 ? v * a.step : v / a.step);
  }
  if (next == v) return std::nullopt;
  out[name] = next;
  return out;
}

ParamSet SearchSpace::sample(std::mt19937_64& rng) const {
  ParamSet out;
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (const auto& a : axes_) {
    double r = u(rng);
    if (a.kind == AxisKind::kChoice)
      out[a.name] = a.choices[std::min(a.choices.size() - 1, static_cast<size_t>(r * a.choices.size()))];
    else if (a.kind == AxisKind::kUniform)
      out[a.name] = snap_value(a, a.lo + r * (a.hi - a.lo));
    else
      out[a.name] = snap_value(a, std::exp(std::log(a.lo) + r * (std::log(a.hi) - std::log(a.lo))));
  }
  return out;
}

ParamSet SearchSpace::from_json(const nlohmann::json& j, const std::string& where) const {
  if (!j.is_object()) throw_input_error("{}: a configuration must be a JSON object", where);
  ParamSet p = defaults_;
  for (const auto& [key, value] : j.items()) {
    const Axis* a = nullptr;
    for (const auto& ax : axes_)
      if (ax.name == key) a = &ax;
    if (!a) throw_input_error("{}: {}: not an axis of the {} search space", where, key, model_);
    if (!value.is_number()) throw_input_error("{}: {}: must be a number, got {}", where, key, value.dump());
    double v = value.get<double>();
    if (a->kind == AxisKind::kChoice) {
      if (std::find(a->choices.begin(), a->choices.end(), v) == a->choices.end())
        throw_input_error("{}: {}: {} is not one of the allowed values", where, key, format_value(v));
    } else if (!(v >= a->lo && v <= a->hi)) {
      throw_input_error("{}: {}: {} is outside [{}, {}]", where, key, format_value(v),
                        format_value(a->lo), format_value(a->hi));
    }
    p[key] = snap_value(*a, v);
  }
  return p;
}

nlohmann::json SearchSpace::to_json(const ParamSet& p) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : p) {
    if (std::fabs(v - std::round(v)) < 1e-12 && std::fabs(v) >= 1)
      j[k] = std::llround(v);
    else
      j[k] = v;
  }
  return j;
}

std::string SearchSpace::describe(const ParamSet& p) const {
  std::string out;
  for (const auto& a : axes_) {
    auto it = p.find(a.name);
    if (it == p.end()) continue;
    if (!out.empty()) out += ' ';
    out += a.name + "=" + format_value(it->second);
  }
  return out;
}

nlohmann::json SearchSpace::describe_space() const {
  nlohmann::json axes = nlohmann::json::array();
  for (const auto& a : axes_) {
    nlohmann::json j = {{"name", a.name}, {"kind", kind_name(a.kind)}};
    if (a.kind == AxisKind::kChoice)
      j["choices"] = a.choices;
    else
      j["range"] = {a.lo, a.hi};
    j["default"] = defaults_.at(a.name);
    axes.push_back(j);
  }
  return {{"model", model_}, {"axes", axes}};
}

}  // namespace twistar
