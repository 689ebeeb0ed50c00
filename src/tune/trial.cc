#include "tune/trial.h"

#include <cmath>

#include "core/error.h"

namespace twistar {

namespace {

/// JSON has no NaN: a diverged value is written as null and read back as NaN.
nlohmann::json numbers(const std::vector<double>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (double x : v) a.push_back(std::isfinite(x) ? nlohmann::json(x) : nlohmann::json());
  return a;
}

template <typename T>
T field(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) throw_input_error("{}: missing field '{}'", where, key);
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw_input_error("{}: field '{}' has the wrong type ({})", where, key, j.at(key).dump());
  }
}

std::vector<double> read_numbers(const nlohmann::json& j, const char* key, const std::string& where) {
  std::vector<double> out;
  const auto& a = j.contains(key) ? j.at(key) : nlohmann::json::array();
  if (!a.is_array()) throw_input_error("{}: field '{}' must be an array", where, key);
  for (const auto& x : a) {
    if (!x.is_number() && !x.is_null()) throw_input_error("{}: field '{}' holds {}", where, key, x.dump());
    out.push_back(x.is_number() ? x.get<double>() : std::nan(""));
  }
  return out;
}

}  // namespace

nlohmann::json TrialRecord::to_json() const {
  nlohmann::json changes = nlohmann::json::array();
  for (const auto& c : reflection.changes)
    changes.push_back({{"axis", c.axis}, {"from", c.from}, {"to", c.to}, {"direction", c.direction}});
  return {
      {"id", id}, {"run", run}, {"index", index}, {"method", method}, {"seed", seed},
      {"model", model}, {"dataset", dataset}, {"budget", budget},
      {"params", SearchSpace::to_json(params)},
      {"hypothesis",
       {{"source", hypothesis.source}, {"text", hypothesis.text}, {"parent", hypothesis.parent},
        {"axes", hypothesis.axes}}},
      {"outcome",
       {{"valid_ndcg@10", std::isfinite(outcome.valid) ? nlohmann::json(outcome.valid) : nlohmann::json()},
        {"best_epoch", outcome.best_epoch}, {"epochs", outcome.epochs},
        {"curve", numbers(outcome.curve)}, {"losses", numbers(outcome.losses)},
        {"seconds", outcome.seconds}, {"parameters", outcome.parameters}, {"stop", outcome.stop},
        {"resumed", outcome.resumed}}},
      {"reflection",
       {{"diagnosis", reflection.diagnosis}, {"verdict", reflection.verdict}, {"changes", changes},
        {"delta", reflection.delta}, {"rel_delta", reflection.rel_delta}, {"rule", reflection.rule},
        {"evidence", reflection.evidence}, {"author", reflection.author}}},
      {"finished_at", finished_at}};
}

TrialRecord TrialRecord::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw_input_error("{}: a trial must be a JSON object", where);
  TrialRecord r;
  r.id = field<int>(j, "id", where);
  r.run = field<std::string>(j, "run", where);
  r.index = field<int>(j, "index", where);
  r.method = field<std::string>(j, "method", where);
  r.seed = field<uint64_t>(j, "seed", where);
  r.model = field<std::string>(j, "model", where);
  r.dataset = field<std::string>(j, "dataset", where);
  r.budget = j.value("budget", nlohmann::json::object());
  auto params = field<nlohmann::json>(j, "params", where);
  if (!params.is_object()) throw_input_error("{}: field 'params' must be an object", where);
  for (const auto& [k, v] : params.items()) {
    if (!v.is_number()) throw_input_error("{}: params.{} must be a number, got {}", where, k, v.dump());
    r.params[k] = v.get<double>();
  }
  auto h = field<nlohmann::json>(j, "hypothesis", where);
  std::string hw = where + ": hypothesis";
  r.hypothesis.source = field<std::string>(h, "source", hw);
  r.hypothesis.text = field<std::string>(h, "text", hw);
  r.hypothesis.parent = field<int>(h, "parent", hw);
  r.hypothesis.axes = h.value("axes", std::vector<std::string>{});
  auto o = field<nlohmann::json>(j, "outcome", where);
  std::string ow = where + ": outcome";
  if (!o.contains("valid_ndcg@10")) throw_input_error("{}: missing field 'valid_ndcg@10'", ow);
  r.outcome.valid = o["valid_ndcg@10"].is_number() ? o["valid_ndcg@10"].get<double>() : std::nan("");
  r.outcome.best_epoch = field<int>(o, "best_epoch", ow);
  r.outcome.epochs = field<int>(o, "epochs", ow);
  r.outcome.curve = read_numbers(o, "curve", ow);
  r.outcome.losses = read_numbers(o, "losses", ow);
  r.outcome.seconds = field<double>(o, "seconds", ow);
  r.outcome.parameters = o.value("parameters", int64_t{0});
  r.outcome.stop = o.value("stop", std::string());
  r.outcome.resumed = o.value("resumed", false);
  auto f = j.value("reflection", nlohmann::json::object());
  r.reflection.diagnosis = f.value("diagnosis", std::string());
  r.reflection.verdict = f.value("verdict", std::string());
  for (const auto& c : f.value("changes", nlohmann::json::array())) {
    std::string cw = where + ": reflection.changes";
    r.reflection.changes.push_back({field<std::string>(c, "axis", cw), field<double>(c, "from", cw),
                                    field<double>(c, "to", cw), field<int>(c, "direction", cw)});
  }
  r.reflection.delta = f.value("delta", 0.0);
  r.reflection.rel_delta = f.value("rel_delta", 0.0);
  r.reflection.rule = f.value("rule", std::string());
  r.reflection.evidence = f.value("evidence", nlohmann::json::object());
  r.reflection.author = f.value("author", std::string("rules"));
  r.finished_at = j.value("finished_at", std::string());
  return r;
}

}  // namespace twistar
