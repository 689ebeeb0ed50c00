// The tools the planner calls (ARCHITECTURE.md: fast_rec, rank_candidates, think_and_rec). A tool
// reads a request's state, returns an observation (items, scores, and the cost it spent) and
// records what it found in the state, so the next tool can build on it (rank_candidates re-scores
// fast_rec's candidates). Tools run on batches of requests; a single request is a batch of one.
//
// Any tool is also a Recommender (ToolRecommender), so `twistar eval` can evaluate it on its own.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "data/recommender.h"

namespace twistar {

struct RequestState {
  /// The user's full history, oldest first (models read its last max_len items; exclusion uses all).
  Sequence history;
  /// Drop history items from the results (the protocol's default).
  bool exclude_history = true;
  /// The latest retrieval's candidates, best first.
  Ranking candidates;
  /// fast_rec's latest candidates with their SID log-probabilities (kept when rank_candidates re-orders
  /// `candidates`): the pool a later call may add to and rank again.
  Ranking retrieved;
  /// Wall time spent on this request so far, in milliseconds.
  double cost_ms = 0.0;
  /// Tools called so far, in order.
  std::vector<std::string> calls;
};

/// One fresh request per history, excluding history items as `options` says (what ToolRecommender
/// and AgentRecommender start from).
std::vector<RequestState> request_states(const std::vector<Sequence>& histories, const RecommendOptions& options);

/// The arguments of a tool call: fast_rec(k), rank_candidates(m, k), think_and_rec(k).
struct ToolArgs {
  /// Items to return.
  int k = 10;
  /// Candidates to read (rank_candidates' m); 0 = the tool's default.
  int m = 0;
};

struct Observation {
  std::string tool;
  /// Best first, with the tool's scores.
  Ranking items;
  /// Wall time this call spent on the request (a batched call's time split evenly), milliseconds.
  double cost_ms = 0.0;
  /// Why the call was invalid (e.g. rank_candidates before any fast_rec); empty when it ran. An
  /// invalid call returns no items and leaves the request's candidates alone.
  std::string error;
  /// The rationale the slow path wrote (think_and_rec), empty otherwise.
  std::string rationale;
};

class Tool {
 public:
  virtual ~Tool() = default;
  virtual std::string name() const = 0;
  /// Runs on every request of the batch, updating each state (candidates, cost, calls); returns one
  /// observation per request. Must be safe to call concurrently on different batches.
  virtual std::vector<Observation> run(std::vector<RequestState>& requests,
                                       const ToolArgs& args) const = 0;
  /// How long an own list a call for k items searches: after_ranking reads all of it, the call's own
  /// answer is its first k.
  virtual int own_length(int k) const { return k; }
  /// How many requests one call should carry for throughput.
  virtual size_t preferred_batch_size() const { return 64; }
  /// The lists this tool returns when it is called right after rank_candidates: each request's own
  /// list (`own`, best first, one per request) combined with what the request holds (its ranked
  /// `candidates`, fast_rec's `retrieved` pool), at most k items each. run() applies it to such
  /// requests, and the planner's episode table applies it to the recorded states, so both agree.
  /// The default keeps the tool's own lists.
  virtual std::vector<Ranking> after_ranking(const std::vector<const RequestState*>& requests,
                                             std::vector<Ranking> own, int k) const;
  /// One request.
  Observation run_one(RequestState& request, const ToolArgs& args) const;
};

/// Records an observation in its request's state: candidates, cost and the call.
void record(RequestState& request, const Observation& observation);

/// True when the request's latest call was rank_candidates (its candidates are the ranked list).
bool after_rank(const RequestState& request);

/// One call of a fixed plan.
struct PlanStep {
  std::shared_ptr<const Tool> tool;
  ToolArgs args;
};

/// A fixed plan of tool calls as a Recommender: the steps run in order on the same requests and the
/// last step's k is each recommend call's k (fast_only = [fast_rec]; fast_rank = [fast_rec(50),
/// rank_candidates(50, k)]). An invalid call in a fixed plan is a programming error and throws.
class ToolRecommender : public Recommender {
 public:
  ToolRecommender(std::shared_ptr<const Tool> tool, std::string name, ToolArgs args = {});
  ToolRecommender(std::vector<PlanStep> plan, std::string name);
  std::string name() const override { return name_; }
  std::vector<Ranking> recommend(const std::vector<Sequence>& histories,
                                 const RecommendOptions& options) const override;
  size_t preferred_batch_size() const override;
  /// Each tool's cost (ms) on every single-request call so far: the per-tool latency breakdown of
  /// the evaluator's one-request-at-a-time timing.
  std::map<std::string, std::vector<double>> single_request_costs() const;

 private:
  std::vector<PlanStep> plan_;
  std::string name_;
  mutable std::mutex costs_mutex_;
  mutable std::map<std::string, std::vector<double>> costs_;
};

}  // namespace twistar
