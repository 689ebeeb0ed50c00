#include "agent/tool.h"

#include <algorithm>

#include "core/error.h"

namespace twistar {

Observation Tool::run_one(RequestState& request, const ToolArgs& args) const {
  std::vector<RequestState> batch{std::move(request)};
  auto out = run(batch, args);
  request = std::move(batch[0]);
  return std::move(out.at(0));
}

std::vector<Ranking> Tool::after_ranking(const std::vector<const RequestState*>&, std::vector<Ranking> own,
                                        int k) const {
  for (auto& list : own)
    if (static_cast<int>(list.size()) > k) list.resize(static_cast<size_t>(std::max(k, 0)));
  return own;
}

bool after_rank(const RequestState& request) {
  return !request.calls.empty() && request.calls.back() == "rank_candidates";
}

void record(RequestState& request, const Observation& observation) {
  if (observation.error.empty()) request.candidates = observation.items;
  request.cost_ms += observation.cost_ms;
  request.calls.push_back(observation.tool);
}

ToolRecommender::ToolRecommender(std::shared_ptr<const Tool> tool, std::string name, ToolArgs args)
    : ToolRecommender(std::vector<PlanStep>{{std::move(tool), args}}, std::move(name)) {}

ToolRecommender::ToolRecommender(std::vector<PlanStep> plan, std::string name)
    : plan_(std::move(plan)), name_(std::move(name)) {
  if (plan_.empty()) throw Error(fmt::format("{}: a plan needs at least one tool call", name_));
  for (const auto& step : plan_)
    if (!step.tool) throw Error(fmt::format("{}: a plan step has no tool", name_));
}

std::map<std::string, std::vector<double>> ToolRecommender::single_request_costs() const {
  std::lock_guard<std::mutex> lock(costs_mutex_);
  return costs_;
}

size_t ToolRecommender::preferred_batch_size() const {
  size_t best = plan_.front().tool->preferred_batch_size();
  for (const auto& step : plan_) best = std::min(best, step.tool->preferred_batch_size());
  return best;
}

std::vector<RequestState> request_states(const std::vector<Sequence>& histories, const RecommendOptions& options) {
  std::vector<RequestState> requests(histories.size());
  for (size_t i = 0; i < histories.size(); ++i) {
    requests[i].history = histories[i];
    requests[i].exclude_history = options.exclude_history;
  }
  return requests;
}

std::vector<Ranking> ToolRecommender::recommend(const std::vector<Sequence>& histories,
                                                const RecommendOptions& options) const {
  auto requests = request_states(histories, options);
  std::vector<Observation> observations;
  for (size_t s = 0; s < plan_.size(); ++s) {
    ToolArgs args = plan_[s].args;
    if (s + 1 == plan_.size()) args.k = options.k;
    observations = plan_[s].tool->run(requests, args);
    for (size_t i = 0; i < requests.size(); ++i) {
      if (!observations[i].error.empty())
        throw Error(fmt::format("{}: {}", name_, observations[i].error));
    }
    if (requests.size() == 1) {
      std::lock_guard<std::mutex> lock(costs_mutex_);
      costs_[observations[0].tool].push_back(observations[0].cost_ms);
    }
  }
  std::vector<Ranking> out;
  out.reserve(observations.size());
  for (auto& o : observations) out.push_back(std::move(o.items));
  return out;
}

}  // namespace twistar
