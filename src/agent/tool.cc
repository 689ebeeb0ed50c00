#include "agent/tool.h"

namespace twistar {

Observation Tool::run_one(RequestState& request, const ToolArgs& args) const {
  std::vector<RequestState> batch{std::move(request)};
  auto out = run(batch, args);
  request = std::move(batch[0]);
  return std::move(out.at(0));
}

void record(RequestState& request, const Observation& observation) {
  request.candidates = observation.items;
  request.cost_ms += observation.cost_ms;
  request.calls.push_back(observation.tool);
}

ToolRecommender::ToolRecommender(std::shared_ptr<const Tool> tool, std::string name, ToolArgs args)
    : tool_(std::move(tool)), name_(std::move(name)), args_(args) {}

std::vector<Ranking> ToolRecommender::recommend(const std::vector<Sequence>& histories,
                                                const RecommendOptions& options) const {
  std::vector<RequestState> requests(histories.size());
  for (size_t i = 0; i < histories.size(); ++i) {
    requests[i].history = histories[i];
    requests[i].exclude_history = options.exclude_history;
  }
  ToolArgs args = args_;
  args.k = options.k;
  auto observations = tool_->run(requests, args);
  std::vector<Ranking> out;
  out.reserve(observations.size());
  for (auto& o : observations) out.push_back(std::move(o.items));
  return out;
}

}  // namespace twistar
