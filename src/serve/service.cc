#include "serve/service.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "agent/fast_rec.h"
#include "agent/rank_candidates.h"
#include "agent/planner.h"
#include "agent/think_and_rec.h"
#include "core/json_depth.h"
#include "core/log.h"

namespace twistar {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* const kFields[] = {"history",         "k",     "mode", "explain", "latency_budget_ms",
                               "exclude_history", "strict"};
const char* const kModes[] = {"auto", "fast", "rank", "slow"};

[[noreturn]] void bad(const std::string& code, const std::string& field, const std::string& message,
                      int status = 400) {
  throw RequestError(status, code, field, message);
}

bool read_bool(const json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  if (!it->is_boolean()) bad("wrong_type", key, fmt::format("{}: expected true or false", key));
  return it->get<bool>();
}

double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since)
      .count();
}

}  // namespace

void ServeOptions::validate() const {
  if (max_body_bytes < 16)
    throw_input_error("max_body_bytes: must be >= 16, got {}", max_body_bytes);
  if (max_history < 1) throw_input_error("max_history: must be >= 1, got {}", max_history);
  if (max_k < 1) throw_input_error("max_k: must be >= 1, got {}", max_k);
  if (default_k < 1) throw_input_error("default_k: must be >= 1, got {}", default_k);
  if (fast_beam < 1) throw_input_error("fast_beam: must be >= 1, got {}", fast_beam);
  if (rank_candidates < 1)
    throw_input_error("rank_candidates: must be >= 1, got {}", rank_candidates);
  validate_latency_target(latency_target, latency_target_step);
}

json error_body(const std::string& code, const std::string& message, const std::string& field) {
  return {{"error", {{"code", code}, {"message", message}, {"field", field}}}};
}

std::string dump_json(const json& j, int indent) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

struct Service::Request {
  Sequence history;
  json unknown = json::array();
  int k = 10;
  std::string mode = "auto";
  bool explain = true;
  double budget_ms = 0;  // 0 = none
  bool exclude_history = true;
};

Service::Service(ItemTable items, ServeTools tools, ServeOptions options, fs::path run_dir)
    : items_(std::move(items)),
      tools_(std::move(tools)),
      options_(options),
      run_dir_(std::move(run_dir)) {
  options_.validate();
  if (!tools_.fast_rec) throw_input_error("serve: fast_rec is required (run/sid + run/sidgen)");
  if (tools_.planner && !tools_.beta) throw_input_error("serve: the planner needs its β");
}

Service::Request Service::parse(const std::string& body) const {
  if (body.size() > options_.max_body_bytes)
    bad("body_too_large", "",
        fmt::format("request body has {} bytes; the limit (max_body_bytes) is {}", body.size(),
                    options_.max_body_bytes),
        413);
  if (json_too_deep(body))
    bad("malformed_json", "", fmt::format("request body nests deeper than {} levels", kMaxJsonDepth));
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) bad("malformed_json", "", "request body is not valid JSON");
  if (!j.is_object()) bad("wrong_type", "", "request body must be a JSON object");
  for (const auto& item : j.items()) {
    bool known = false;
    for (const char* f : kFields) known = known || item.key() == f;
    if (!known)
      bad("unknown_field", item.key(),
          fmt::format("{}: unknown field (history, k, mode, explain, latency_budget_ms, "
                      "exclude_history, strict)",
                      item.key()));
  }
  Request r;
  r.k = std::min(options_.default_k, options_.max_k);
  bool strict = read_bool(j, "strict", options_.strict);
  r.explain = read_bool(j, "explain", true);
  r.exclude_history = read_bool(j, "exclude_history", true);

  auto h = j.find("history");
  if (h == j.end()) bad("missing_field", "history", "history: required (a list of item ids)");
  if (!h->is_array()) bad("wrong_type", "history", "history: expected a list of item ids");
  if (h->size() > static_cast<size_t>(options_.max_history))
    bad("history_too_long", "history",
        fmt::format("history: {} items; the limit (max_history) is {}", h->size(),
                    options_.max_history));
  for (size_t i = 0; i < h->size(); ++i) {
    const json& e = (*h)[i];
    std::string field = fmt::format("history[{}]", i);
    std::optional<ItemIndex> index;
    if (e.is_string()) {
      index = items_.find(e.get<std::string>());
    } else if (e.is_number_integer()) {
      bool in_range = e.is_number_unsigned()
                          ? e.get<uint64_t>() < static_cast<uint64_t>(items_.num_items())
                          : e.get<int64_t>() >= 0 && e.get<int64_t>() < items_.num_items();
      if (in_range) index = static_cast<ItemIndex>(e.get<int64_t>());
    } else {
      bad("wrong_type", field,
          field + ": expected a raw item id (string) or an item index (integer)");
    }
    if (index) {
      r.history.push_back(*index);
      continue;
    }
    if (strict)
      bad("unknown_item", field,
          fmt::format("{}: unknown item {} (not in this run's {} items)", field, dump_json(e),
                      items_.num_items()));
    r.unknown.push_back(e);
  }

  if (auto k = j.find("k"); k != j.end()) {
    if (!k->is_number_integer()) bad("wrong_type", "k", "k: expected an integer");
    bool in_range =
        !k->is_number_unsigned() || k->get<uint64_t>() <= static_cast<uint64_t>(options_.max_k);
    if (!in_range || k->get<int64_t>() < 1 || k->get<int64_t>() > options_.max_k)
      bad("out_of_range", "k",
          fmt::format("k: must be in [1, {}] (max_k), got {}", options_.max_k, dump_json(*k)));
    r.k = k->get<int>();
  }
  if (auto m = j.find("mode"); m != j.end()) {
    if (!m->is_string()) bad("wrong_type", "mode", "mode: expected a string");
    r.mode = m->get<std::string>();
    bool known = false;
    for (const char* mode : kModes) known = known || r.mode == mode;
    if (!known)
      bad("invalid_value", "mode",
          fmt::format("mode: expected auto, fast, rank or slow, got {}", dump_json(*m)));
  }
  if (auto b = j.find("latency_budget_ms"); b != j.end()) {
    if (!b->is_number())
      bad("wrong_type", "latency_budget_ms", "latency_budget_ms: expected a number");
    r.budget_ms = b->get<double>();
    if (!(r.budget_ms > 0) || !std::isfinite(r.budget_ms))
      bad("out_of_range", "latency_budget_ms", "latency_budget_ms: must be > 0");
  }
  return r;
}

const Tool& Service::need(const std::shared_ptr<const Tool>& tool, const std::string& mode,
                          const std::string& what) const {
  if (tool) return *tool;
  std::string message =
      fs::exists(run_dir_ / what)
          ? fmt::format("mode {} needs run/{}: it exists, but this build cannot load it yet", mode,
                        what)
          : fmt::format("mode {} needs run/{}: train it first", mode, what);
  bad("mode_unavailable", "mode", message, 422);
}

ServiceAnswer Service::answer(const Request& r) const {
  auto t0 = std::chrono::steady_clock::now();
  std::string ran = r.mode == "auto" ? "fast" : r.mode;
  // Every tool the mode needs is checked before any runs: a 422 costs nothing.
  const Tool* rank = ran == "rank" ? &need(tools_.rank_candidates, ran, "ranker") : nullptr;
  const Tool* slow = ran == "slow" ? &need(tools_.think_and_rec, ran, "reasoner") : nullptr;

  json out = json::object();
  json plan = json::array();
  json latency = json::object();
  Ranking items;
  std::vector<std::string> calls;
  auto step = [&](const std::string& tool, json args, double ms, size_t n) {
    plan.push_back({{"tool", tool}, {"args", std::move(args)}, {"latency_ms", ms}, {"items", n}});
    latency[tool] = latency.value(tool, 0.0) + ms;
    calls.push_back(tool);
  };
  std::vector<std::string> notes;
  const bool planned = r.mode == "auto" && tools_.planner && !r.history.empty();
  if (r.mode == "auto" && !tools_.planner && !r.history.empty())
    notes.push_back("no planner in this run directory: auto ran mode fast");
  if (planned) {
    // The planner's episode: its calls, their arguments and what each cost.
    Toolbox box{tools_.fast_rec, tools_.rank_candidates, tools_.think_and_rec, tools_.wide};
    std::vector<RequestState> state(1);
    state[0].history = r.history;
    state[0].exclude_history = r.exclude_history;
    AgentOptions agent;
    agent.beta = tools_.beta->beta();
    agent.budget_ms = r.budget_ms;
    auto a = run_agent(box, *tools_.planner, state, r.k, agent, tools_.costs);
    tools_.beta->observe({a[0].cost_ms});
    for (const auto& call : a[0].trace) {
      if (call.at("tool") == "finish") continue;
      json entry = {{"tool", call.at("tool")}, {"args", call.at("arguments")}};
      if (call.contains("error")) entry["error"] = call.at("error");
      else entry["latency_ms"] = a[0].tool_ms.count(call.at("tool")) ? a[0].tool_ms.at(call.at("tool")) : 0.0;
      plan.push_back(std::move(entry));
      if (!call.contains("error")) calls.push_back(call.at("tool").get<std::string>());
    }
    if (a[0].plan.find("fallback") != std::string::npos) {
      notes.push_back("the planner made no valid call that returns items: fast_rec ran as a fallback");
      calls.push_back("fast_rec");
    }
    for (const auto& [tool, ms] : a[0].tool_ms) latency[tool] = ms;
    if (!a[0].rationale.empty()) out["rationale"] = a[0].rationale;
    items = std::move(a[0].items);
    ran = a[0].plan;
  } else if (r.history.empty()) {
    auto p0 = std::chrono::steady_clock::now();
    items = items_.most_popular(r.history, {r.k, r.exclude_history});
    step("popularity", {{"k", r.k}}, elapsed_ms(p0), items.size());
    notes.push_back(
        r.unknown.empty()
            ? "empty history: the most popular items of the training data"
            : "no known item in the history: the most popular items of the training data");
    ran = "popularity";
  } else {
    RequestState state;
    state.history = r.history;
    state.exclude_history = r.exclude_history;
    auto call = [&](const Tool& tool, ToolArgs args) {
      auto obs = tool.run_one(state, args);
      if (!obs.rationale.empty()) out["rationale"] = obs.rationale;
      json a = {{"k", args.k}};
      if (args.m > 0) a["m"] = args.m;
      step(obs.tool, std::move(a), obs.cost_ms, obs.items.size());
      items = std::move(obs.items);
    };
    if (ran == "fast") call(*tools_.fast_rec, {r.k});
    if (rank) {
      int m = std::max(options_.rank_candidates, r.k);
      call(*tools_.fast_rec, {m});
      call(*rank, {r.k, m});
    }
    if (slow) call(*slow, {r.k});
  }

  json list = json::array();
  for (const auto& s : items)
    list.push_back({{"id", items_.id(s.item)}, {"index", s.item}, {"score", s.score}});
  double total = elapsed_ms(t0);
  latency["total"] = total;
  out["items"] = std::move(list);
  out["mode"] = r.mode;
  out["ran"] = ran;
  if (r.explain) {
    out["plan"] = std::move(plan);
    out["latency_ms"] = std::move(latency);
  } else {
    out["latency_ms"] = {{"total", total}};
  }
  out["history_used"] = r.history.size();
  out["unknown_items"] = r.unknown;
  if (!notes.empty()) {
    std::string note = notes[0];
    for (size_t i = 1; i < notes.size(); ++i) note += "; " + notes[i];
    out["note"] = note;
  }
  if (r.budget_ms > 0) {
    out["latency_budget_ms"] = r.budget_ms;
    out["over_budget"] = total > r.budget_ms;
  }
  std::string key;
  for (const auto& c : calls) key += (key.empty() ? "" : ">") + c;
  return {200, std::move(out), key};
}

std::optional<PlannerGauges> Service::planner_gauges() const {
  if (!tools_.planner) return std::nullopt;
  return PlannerGauges{tools_.beta->beta(), tools_.beta->target_ms()};
}

ServiceAnswer Service::handle(const std::string& body) const {
  try {
    return answer(parse(body));
  } catch (const RequestError& e) {
    return {e.status, error_body(e.code, e.what(), e.field), ""};
  } catch (const InputError& e) {
    return {400, error_body("invalid_request", e.what()), ""};
  } catch (const std::exception& e) {
    spdlog::error("request failed: {}", e.what());
    return {500, error_body("internal", e.what()), ""};
  }
}

std::shared_ptr<const Service> load_service(const fs::path& run_dir, const ServeOptions& options,
                                            const Context& ctx, const std::string& data_dir) {
  options.validate();
  // One intra-op thread: each worker thread runs one request end to end (ARCHITECTURE: serving).
  Context one = ctx;
  one.threads = 1;
  one.apply();
  ItemTable items = load_item_table(run_dir, data_dir);
  FastRecOptions fast;
  fast.beam = options.fast_beam;
  ServeTools tools;
  tools.fast_rec = load_fast_rec(run_dir, one, fast);
  // rank_candidates when the run has a trained ranker, think_and_rec when it has a reasoner
  // (otherwise modes rank and slow answer 422).
  if (fs::exists(run_dir / "ranker" / "manifest.json")) tools.rank_candidates = load_rank_candidates(run_dir, one);
  if (fs::exists(run_dir / "reasoner" / "manifest.json")) tools.think_and_rec = load_think_and_rec(run_dir, one);
  // Mode auto runs the trained planner when the run has one (over its own tools).
  if (fs::exists(run_dir / "planner" / "manifest.json")) {
    auto planner = load_planner(run_dir, one);
    tools.fast_rec = planner.tools.fast;
    tools.rank_candidates = planner.tools.rank;
    tools.think_and_rec = planner.tools.think;
    tools.planner = planner.grpo;
    tools.costs = planner.costs;
    tools.beta = std::make_shared<BetaController>(planner.beta, planner.costs.think_share(options.latency_target),
                                                  options.latency_target_step);
    tools.wide = planner.tools.wide;
  }
  if (SidMap::load(run_dir / "sid" / "sid_map.json").num_items() != items.num_items())
    throw_input_error(
        "{}: {} items, but run/sid/sid_map.json has another count (a run directory "
        "made on other data?)",
        item_table_path(run_dir).string(), items.num_items());
  return std::make_shared<const Service>(std::move(items), std::move(tools), options, run_dir);
}

}  // namespace twistar
