#include "tune/llm_advisor.h"

#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace twistar {

void LlmOptions::validate() const {
  if (enabled() && url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
    throw_input_error("llm_url: must start with http:// or https://, got '{}'", url);
  if (timeout_s < 1) throw_input_error("llm_timeout: must be >= 1, got {}", timeout_s);
}

namespace {

/// POSTs a two-message chat and returns the reply's content; nullopt with `why` on any failure.
std::optional<std::string> chat(const LlmOptions& o, const std::string& system, const std::string& user,
                                std::string& why) {
  // Split "http://host:port/base" into the client's scheme-host-port and the request path.
  size_t host_start = o.url.find("://") + 3;
  size_t path_start = o.url.find('/', host_start);
  std::string origin = o.url.substr(0, path_start);
  std::string base = path_start == std::string::npos ? "" : o.url.substr(path_start);
  while (!base.empty() && base.back() == '/') base.pop_back();
  httplib::Client client(origin);
  client.set_connection_timeout(o.timeout_s);
  client.set_read_timeout(o.timeout_s);
  nlohmann::json body = {{"model", o.model},
                         {"temperature", 0},
                         {"messages",
                          {{{"role", "system"}, {"content", system}}, {{"role", "user"}, {"content", user}}}}};
  auto res = client.Post(base + "/chat/completions", body.dump(), "application/json");
  if (!res) {
    why = fmt::format("{}: no reply ({})", o.url, httplib::to_string(res.error()));
    return std::nullopt;
  }
  if (res->status != 200) {
    why = fmt::format("{}: HTTP {}", o.url, res->status);
    return std::nullopt;
  }
  try {
    auto j = nlohmann::json::parse(res->body);
    return j.at("choices").at(0).at("message").at("content").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    why = fmt::format("{}: not a chat completion ({})", o.url, e.what());
    return std::nullopt;
  }
}

/// The first {...} object in a reply (models like to wrap JSON in prose or code fences).
std::optional<nlohmann::json> json_object_in(const std::string& text, std::string& why) {
  size_t start = text.find('{');
  size_t end = text.rfind('}');
  if (start == std::string::npos || end == std::string::npos || end < start) {
    why = "the reply holds no JSON object";
    return std::nullopt;
  }
  try {
    return nlohmann::json::parse(text.substr(start, end - start + 1));
  } catch (const nlohmann::json::parse_error& e) {
    why = fmt::format("the reply's JSON does not parse ({})", e.what());
    return std::nullopt;
  }
}

nlohmann::json trial_brief(const TrialRecord& t) {
  return {{"id", t.id},
          {"params", SearchSpace::to_json(t.params)},
          {"hypothesis", t.hypothesis.text},
          {"valid_ndcg@10", std::isfinite(t.outcome.valid) ? nlohmann::json(t.outcome.valid) : nlohmann::json()},
          {"curve", t.outcome.curve},
          {"best_epoch", t.outcome.best_epoch},
          {"epochs", t.outcome.epochs},
          {"stop", t.outcome.stop},
          {"diagnosis", t.reflection.diagnosis},
          {"rule", t.reflection.rule}};
}

}  // namespace

std::optional<Proposal> llm_propose(const LlmOptions& o, const ProposalContext& c, std::string& why) {
  const SearchSpace& space = *c.space;
  nlohmann::json trials = nlohmann::json::array();
  // The last 30 trials keep the prompt bounded.
  for (size_t i = c.trials.size() > 30 ? c.trials.size() - 30 : 0; i < c.trials.size(); ++i)
    trials.push_back(trial_brief(c.trials[i]));
  nlohmann::json heuristics = nlohmann::json::array();
  for (const auto& h : c.heuristics) heuristics.push_back(h.rule);
  std::string system =
      "You are an ML engineer tuning a sequential recommender. Propose the next configuration to "
      "train: change one axis (or two related ones) of the best configuration so far, following the "
      "evidence. Answer with one JSON object {\"params\": {axis: value, ...}, \"hypothesis\": "
      "\"one line\"}; values must lie in the search space.";
  std::string user = nlohmann::json{{"search_space", space.describe_space()},
                                    {"trials", trials},
                                    {"heuristics_from_other_datasets", heuristics}}
                         .dump(1);
  auto reply = chat(o, system, user, why);
  if (!reply) return std::nullopt;
  auto j = json_object_in(*reply, why);
  if (!j) return std::nullopt;
  if (!j->contains("params")) {
    why = "the reply has no \"params\"";
    return std::nullopt;
  }
  Proposal p;
  try {
    p.params = space.from_json((*j)["params"], "llm proposal");
  } catch (const InputError& e) {
    why = e.what();
    return std::nullopt;
  }
  for (const auto& t : c.trials)
    if (space.snap(t.params) == p.params) {
      why = fmt::format("the proposal repeats trial #{}", t.id);
      return std::nullopt;
    }
  const TrialRecord* best = nullptr;
  for (const auto& t : c.trials)
    if (std::isfinite(t.outcome.valid) && (!best || t.outcome.valid > best->outcome.valid)) best = &t;
  p.hypothesis.source = "llm";
  p.hypothesis.text = "llm: " + (*j).value("hypothesis", std::string("(no hypothesis given)"));
  p.hypothesis.parent = best ? best->id : 0;
  if (best)
    for (const auto& [axis, v] : p.params)
      if (space.snap(best->params).at(axis) != v) p.hypothesis.axes.push_back(axis);
  return p;
}

std::optional<std::string> llm_reflect(const LlmOptions& o, const TrialRecord& t, std::string& why) {
  std::string system =
      "You are an ML engineer reviewing one training run of a sequential recommender against its "
      "parent configuration. Answer with one JSON object {\"rule\": \"one short heuristic with its "
      "evidence (trial ids, deltas)\"}.";
  nlohmann::json user = {{"trial", trial_brief(t)},
                         {"parent", t.hypothesis.parent},
                         {"delta", t.reflection.delta},
                         {"rel_delta", t.reflection.rel_delta},
                         {"rule_based_reflection", t.reflection.rule}};
  auto reply = chat(o, system, user.dump(1), why);
  if (!reply) return std::nullopt;
  auto j = json_object_in(*reply, why);
  if (!j) return std::nullopt;
  if (!j->contains("rule") || !(*j)["rule"].is_string() || (*j)["rule"].get<std::string>().empty()) {
    why = "the reply has no \"rule\" string";
    return std::nullopt;
  }
  return (*j)["rule"].get<std::string>();
}

}  // namespace twistar
