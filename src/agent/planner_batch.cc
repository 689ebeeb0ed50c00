#include "agent/planner_batch.h"

namespace twistar {

namespace {

torch::Tensor allowed_tensor(const DecisionBatch& b) {
  auto t = torch::empty({static_cast<int64_t>(b.allowed.size()), kNumActions}, torch::kFloat);
  auto a = t.accessor<float, 2>();
  for (size_t r = 0; r < b.allowed.size(); ++r)
    for (int c = 0; c < kNumActions; ++c) a[static_cast<int64_t>(r)][c] = b.allowed[r][c];
  return t;
}

}  // namespace

void add_decision(DecisionBatch& b, const Sequence& history, const RequestFeatures& request, const EpisodeState& s,
                  double beta, double budget, const CostModel& costs) {
  b.histories.push_back(&history);
  b.features.push_back(feature_vector(request, s, beta, budget, costs));
  std::array<float, kNumActions> allowed{};
  for (int a = 0; a < kNumActions; ++a) allowed[a] = affordable(s, a, budget, costs) ? 1.0f : 0.0f;
  b.allowed.push_back(allowed);
}

torch::Tensor masked_log_probs(PlannerPolicy& policy, const DecisionBatch& b) {
  auto logits = policy->forward(b.histories, feature_tensor(b.features));
  auto allowed = allowed_tensor(b).to(logits.device());
  logits = logits.masked_fill(allowed == 0, -1e9);
  return torch::log_softmax(logits, 1);
}

double descend(torch::optim::Optimizer& optimizer, const torch::Tensor& loss) {
  optimizer.zero_grad();
  loss.backward();
  optimizer.step();
  return loss.item<double>();
}

}  // namespace twistar
