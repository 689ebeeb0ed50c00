// The search space of `twistar tune`: named axes (hidden size, blocks, dropout, learning rate, ...)
// and a configuration as one value per axis.
//
// Layer: `tune` sits after `eval` and before `apps` (it trains models, scores them with the
// evaluator and is driven by the CLI); this file itself needs only `core`.
//
// Vocabulary: an axis is `choice` (an ordered list of values: widths, blocks, batch sizes),
// `uniform` (a real interval, stepped additively) or `log` (a positive interval, stepped by a
// factor). A step moves one axis one notch up (+1) or down (-1).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace twistar {

enum class AxisKind { kChoice, kUniform, kLog };

struct Axis {
  std::string name;
  AxisKind kind = AxisKind::kChoice;
  /// kChoice: the allowed values in increasing order.
  std::vector<double> choices;
  /// kUniform / kLog: the closed interval.
  double lo = 0, hi = 1;
  /// kUniform: the additive step; kLog: the multiplicative step (> 1).
  double step = 0.1;
};

/// One value per axis.
using ParamSet = std::map<std::string, double>;

class SearchSpace {
 public:
  SearchSpace() = default;
  SearchSpace(std::string model, std::vector<Axis> axes, ParamSet defaults);

  const std::string& model() const { return model_; }
  const std::vector<Axis>& axes() const { return axes_; }
  /// Throws InputError for an unknown axis.
  const Axis& axis(const std::string& name) const;
  /// The model's default configuration, snapped into the space.
  const ParamSet& defaults() const { return defaults_; }

  /// Snaps each value into its axis (nearest choice, clamped and rounded numbers); axes missing
  /// from `p` take their default.
  ParamSet snap(const ParamSet& p) const;
  /// `p` with axis `name` moved one notch in `direction` (+1 / -1); nullopt at the boundary.
  std::optional<ParamSet> step(const ParamSet& p, const std::string& name, int direction) const;
  /// A uniform (log-uniform for kLog) random configuration.
  ParamSet sample(std::mt19937_64& rng) const;

  /// Parses and validates a configuration: every key an axis, every value a number inside its
  /// axis (choices exactly); missing axes take their default. Errors name `where` and the field.
  ParamSet from_json(const nlohmann::json& j, const std::string& where) const;
  static nlohmann::json to_json(const ParamSet& p);
  /// One line, "dim=64 layers=2 lr=0.003 ...".
  std::string describe(const ParamSet& p) const;
  /// The space itself as JSON (for reports and the LLM prompt).
  nlohmann::json describe_space() const;

 private:
  std::string model_;
  std::vector<Axis> axes_;
  ParamSet defaults_;
};

/// A value as people write it: integers without a decimal point, others to 3 significant digits.
std::string format_value(double v);

}  // namespace twistar
