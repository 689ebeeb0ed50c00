// The recommendation service without its transport: a request body (JSON) goes in, a status and an
// answer body (JSON) come out. The HTTP server (serve/http_server.h) and `twistar recommend` both
// call it, so the command line prints exactly what the API answers.
//
// Request (every field but `history` optional):
//   {"history": ["B00X", 17, ...],   raw item ids (strings) or item indices (integers), oldest
//   first
//    "k": 10, "mode": "auto|fast|rank|slow", "explain": true, "latency_budget_ms": 50,
//    "exclude_history": true, "strict": false}
// Answer: items [{id, index, score}], mode (asked) and plan (the tool calls that ran, each with its
// arguments and latency), total latency_ms, unknown_items, and a note when the service answered
// differently from what was asked (auto without a planner, popularity for an empty history).
// Errors: {"error": {"code", "message", "field"}} with a 4xx status (5xx for internal failures).
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "agent/agent_loop.h"
#include "agent/tool.h"
#include "core/context.h"
#include "core/error.h"
#include "serve/item_table.h"
#include "serve/metrics.h"

namespace twistar {

struct ServeOptions {
  /// Largest request body accepted, in bytes (413 beyond).
  size_t max_body_bytes = 64 * 1024;
  /// Longest history accepted, in items (models read only the last ones they were trained on).
  int max_history = 1000;
  /// Largest k accepted.
  int max_k = 100;
  /// k when a request does not say (capped at max_k).
  int default_k = 10;
  /// Unknown history items are a 400 (otherwise they are dropped and listed in the answer); a
  /// request's own "strict" overrides this.
  bool strict = false;
  /// fast_rec's beam width (raised to k when smaller).
  int64_t fast_beam = 20;
  /// Candidates fast_rec hands to rank_candidates in mode rank.
  int rank_candidates = 50;
  /// Mode auto: the mean cost per request the planner holds by moving β, as a share of
  /// think_and_rec's cost (BetaController); 0 = the planner's selected β, fixed.
  double latency_target = kLatencyTargetShare;
  /// Mode auto: how fast β moves towards the target (BetaController's step), > 0.
  double latency_target_step = kLatencyTargetStep;

  /// Throws InputError naming the bad field.
  void validate() const;
};

/// The tools a run directory provides; null when it lacks them. Modes that need an absent tool
/// are answered with 422.
struct ServeTools {
  /// fast_rec (run/sid + run/sidgen); every mode needs it.
  std::shared_ptr<const Tool> fast_rec;
  /// rank_candidates (run/ranker), for mode rank.
  std::shared_ptr<const Tool> rank_candidates;
  /// think_and_rec (the reasoner), for mode slow.
  std::shared_ptr<const Tool> think_and_rec;
  /// The trained planner (run/planner), for mode auto; without it auto runs mode fast.
  std::shared_ptr<const Policy> planner;
  /// The planner's cost model, served β (moved by the latency target, shared by every request) and
  /// fast_rec's candidates for the ranker.
  CostModel costs;
  std::shared_ptr<BetaController> beta;
  int wide = 50;
};

/// A request the service cannot answer: the HTTP status, a stable code and the request field.
class RequestError : public InputError {
 public:
  RequestError(int status, std::string code, std::string field, const std::string& message)
      : InputError(message), status(status), code(std::move(code)), field(std::move(field)) {}
  int status;
  std::string code;
  std::string field;
};

struct ServiceAnswer {
  int status = 200;
  nlohmann::json body;
  /// The tool calls joined by '>' ("fast_rec", "fast_rec>rank_candidates", "popularity"); empty
  /// for errors. Metrics count plans by it.
  std::string plan;
};

/// The `{"error": ...}` body of a failed request.
nlohmann::json error_body(const std::string& code, const std::string& message,
                          const std::string& field = "");

/// JSON text of an answer; invalid UTF-8 echoed from a request is replaced, never thrown on.
std::string dump_json(const nlohmann::json& j, int indent = -1);

class Service {
 public:
  /// `run_dir` is only used to name what is missing in the 422 answers.
  Service(ItemTable items, ServeTools tools, ServeOptions options,
          std::filesystem::path run_dir = {});

  /// Answers one request body. Never throws: bad input becomes a 4xx answer, anything else a 500.
  /// Safe to call from many threads at once (the models are shared read-only).
  ServiceAnswer handle(const std::string& body) const;

  const ServeOptions& options() const { return options_; }
  const ItemTable& items() const { return items_; }
  /// Mode auto's planner's served β and target; none without a planner.
  std::optional<PlannerGauges> planner_gauges() const;

 private:
  struct Request;
  Request parse(const std::string& body) const;
  ServiceAnswer answer(const Request& request) const;
  const Tool& need(const std::shared_ptr<const Tool>& tool, const std::string& mode,
                   const std::string& what) const;

  ItemTable items_;
  ServeTools tools_;
  ServeOptions options_;
  std::filesystem::path run_dir_;
};

/// Loads what a run directory provides: fast_rec (required) and the item table (run/items.tsv, or
/// rebuilt from `data_dir`, see load_item_table). Models run under one intra-op thread per request.
std::shared_ptr<const Service> load_service(const std::filesystem::path& run_dir,
                                            const ServeOptions& options, const Context& ctx,
                                            const std::string& data_dir = "");

}  // namespace twistar
