#include "tune/reflector.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace twistar {

std::string diagnose(const TrialOutcome& o) {
  for (double l : o.losses)
    if (!std::isfinite(l)) return "divergence";
  if (!std::isfinite(o.valid)) return "divergence";
  if (o.losses.size() >= 2 && o.losses.back() > 1.5 * o.losses.front()) return "divergence";
  if (o.curve.empty()) return "converged";
  size_t peak = static_cast<size_t>(std::max_element(o.curve.begin(), o.curve.end()) - o.curve.begin());
  if (peak + 1 < o.curve.size()) {
    double last = o.curve.back();
    // The loss at the end against the loss around the peak (curve and losses are both per epoch
    // when validation runs every epoch; otherwise compare halves).
    size_t peak_epoch = std::min(o.losses.size(), (peak + 1) * std::max<size_t>(1, o.losses.size() / o.curve.size()));
    bool loss_dropping = !o.losses.empty() && peak_epoch >= 1 && o.losses.back() < o.losses[peak_epoch - 1];
    if (last < 0.98 * o.curve[peak] && loss_dropping) return "overfitting";
    return "converged";
  }
  if (o.stop == "budget" || o.stop == "epochs") return "underfitting";
  return "converged";
}

namespace {

std::string changes_text(const std::vector<AxisChange>& changes) {
  std::string out;
  for (const auto& c : changes) {
    if (!out.empty()) out += " and ";
    out += fmt::format("{} {} ({} -> {})", c.direction > 0 ? "raising" : "lowering", c.axis,
                       format_value(c.from), format_value(c.to));
  }
  return out;
}

std::string diagnosis_hint(const std::string& d) {
  if (d == "overfitting") return "it overfits (validation falls after its peak while the loss drops): regularise more";
  if (d == "underfitting") return "it was still improving when training stopped: converge faster or train longer";
  if (d == "divergence") return "training diverged: lower the learning rate";
  return "";
}

}  // namespace

Reflection reflect(const TrialRecord& t, const TrialRecord* parent) {
  Reflection r;
  r.diagnosis = diagnose(t.outcome);
  const double v = std::isfinite(t.outcome.valid) ? t.outcome.valid : 0.0;
  r.evidence = {{"trial", t.id}, {"valid", v}, {"best_epoch", t.outcome.best_epoch},
                {"epochs", t.outcome.epochs}, {"stop", t.outcome.stop}};
  std::string hint = diagnosis_hint(r.diagnosis);
  if (!parent) {
    r.verdict = "baseline";
    r.rule = fmt::format("{}: trial #{} ({}) reaches valid NDCG@10 {:.4f} at epoch {}/{}{}{}", t.model, t.id,
                         t.hypothesis.source, v, t.outcome.best_epoch, t.outcome.epochs,
                         hint.empty() ? "" : "; ", hint);
    return r;
  }
  for (const auto& [axis, value] : t.params) {
    auto it = parent->params.find(axis);
    if (it == parent->params.end() || it->second == value) continue;
    r.changes.push_back({axis, it->second, value, value > it->second ? 1 : -1});
  }
  const double pv = std::isfinite(parent->outcome.valid) ? parent->outcome.valid : 0.0;
  r.delta = v - pv;
  r.rel_delta = pv > 0 ? r.delta / pv : (r.delta > 0 ? 1.0 : 0.0);
  if (r.diagnosis == "divergence") r.rel_delta = std::min(r.rel_delta, -1.0);
  r.verdict = r.rel_delta > kNeutralBand ? "helped" : r.rel_delta < -kNeutralBand ? "hurt" : "neutral";
  r.evidence["parent"] = parent->id;
  r.evidence["parent_valid"] = pv;
  r.evidence["delta"] = r.delta;
  r.evidence["rel_delta"] = r.rel_delta;
  std::string what = r.changes.empty() ? std::string("the same configuration") : changes_text(r.changes);
  const char* effect = r.verdict == "helped" ? "helped" : r.verdict == "hurt" ? "hurt" : "made no difference";
  r.rule = fmt::format("{}: {} {} ({:+.1f}% valid NDCG@10, {:.4f} -> {:.4f}; trials #{} -> #{}){}{}",
                       t.model, what, effect, 100 * r.rel_delta, pv, v, parent->id, t.id,
                       hint.empty() ? "" : "; ", hint);
  return r;
}

}  // namespace twistar
