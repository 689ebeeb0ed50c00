// The planner's policy network: reads the history's semantic IDs and the episode's observation
// features (agent/agent_loop.h feature_vector) and scores the menu's next calls.
//
// Each history item is the sum of its SID code embeddings (one table per level); the last `history`
// items are mean-pooled and the last one is kept on its own. An MLP reads [pooled, last, features]
// into one logit per menu action. The item SIDs and training popularity are buffers of the module,
// so a saved policy needs nothing else to compute its request features. Small on purpose: a decision
// costs tens of microseconds on one CPU thread.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "agent/agent_loop.h"
#include "data/dataset.h"
#include "sid/sid_types.h"

namespace twistar {

struct PlannerPolicyOptions {
  /// Small on purpose: with 32/64 the policy memorised which training users a plan happened to hit,
  /// and GRPO's holdout reward fell after its first epoch; with 8/32 it rises for several epochs and
  /// the plan mix follows β (docs/experiments/2026-11-28-planner.md).
  int64_t dim = 8;
  int64_t hidden = 32;
  /// History items the policy reads.
  int64_t history = 20;
  double dropout = 0.1;
  nlohmann::json to_json() const;
  void read(const nlohmann::json& j);
  void validate() const;
};

class PlannerPolicyImpl : public torch::nn::Module {
 public:
  /// `sids` [items x levels] with per-level sizes; `popularity` training counts per item.
  PlannerPolicyImpl(const CodeMatrix& sids, const std::vector<int32_t>& level_sizes,
                    const std::vector<int64_t>& popularity, PlannerPolicyOptions options);
  /// Logits [B, kNumActions] for histories (each cut to its last `history` items) and features [B, F].
  torch::Tensor forward(const std::vector<const Sequence*>& histories, const torch::Tensor& features);
  /// The request's own features: history length, SID first-level diversity, popularity.
  RequestFeatures request_features(const Sequence& history) const;
  /// Standardises the feature vector, (x − shift) / scale clamped to ±5 (scale at least 0.1), before
  /// the MLP; an observation statistic still 0 (nothing observed yet) stays 0. The observation statistics
  /// differ in scale by orders of magnitude (the ranker's top score varies by ±0.05, fast_rec's
  /// log-probability by ±0.9), so raw they are nearly invisible to the MLP. Buffers: saved with the
  /// weights. Set from the training episodes (shift 0, scale 1 until then).
  void set_feature_scale(const std::vector<float>& shift, const std::vector<float>& scale);
  /// Refreshes the host copies of the SID and popularity buffers after torch::load.
  void sync_host();
  const PlannerPolicyOptions& options() const { return options_; }
  int64_t num_items() const { return num_items_; }

 private:
  PlannerPolicyOptions options_;
  int64_t num_items_ = 0, levels_ = 0;
  torch::Tensor codes_;    // [items, levels] offset into one table (buffer)
  torch::Tensor log_pop_;  // [items] (buffer)
  torch::Tensor feature_shift_, feature_scale_;  // [kNumFeatures] (buffers)
  torch::Tensor observation_mask_;               // [kNumFeatures], 1 on the observation statistics
  std::vector<int32_t> first_code_;
  std::vector<float> log_pop_host_;
  torch::nn::Embedding code_emb_{nullptr};
  torch::nn::Sequential mlp_{nullptr};
};
TORCH_MODULE(PlannerPolicy);

/// Stacks feature vectors into a [B, kNumFeatures] tensor.
torch::Tensor feature_tensor(const std::vector<std::vector<float>>& rows);

}  // namespace twistar
