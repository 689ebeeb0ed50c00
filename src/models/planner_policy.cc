#include "models/planner_policy.h"

#include <cmath>
#include <set>

#include "core/error.h"

namespace twistar {

nlohmann::json PlannerPolicyOptions::to_json() const {
  // "policy_features" names the input transform, so planners trained with another one are retrained.
  return {{"policy_dim", dim},
          {"policy_hidden", hidden},
          {"policy_history", history},
          {"policy_dropout", dropout},
          {"policy_features", "standardised"}};
}

void PlannerPolicyOptions::read(const nlohmann::json& j) {
  dim = j.value("policy_dim", dim);
  hidden = j.value("policy_hidden", hidden);
  history = j.value("policy_history", history);
  dropout = j.value("policy_dropout", dropout);
}

void PlannerPolicyOptions::validate() const {
  if (dim < 1) throw_input_error("planner: policy_dim = {} must be positive", dim);
  if (hidden < 1) throw_input_error("planner: policy_hidden = {} must be positive", hidden);
  if (history < 1) throw_input_error("planner: policy_history = {} must be positive", history);
  if (dropout < 0 || dropout >= 1) throw_input_error("planner: policy_dropout = {} must be in [0, 1)", dropout);
}

PlannerPolicyImpl::PlannerPolicyImpl(const CodeMatrix& sids, const std::vector<int32_t>& level_sizes,
                                     const std::vector<int64_t>& popularity, PlannerPolicyOptions options)
    : options_(options), num_items_(sids.rows()), levels_(sids.cols()) {
  options_.validate();
  if (static_cast<int64_t>(level_sizes.size()) != levels_)
    throw InputError(fmt::format("planner: {} level sizes for SIDs of {} levels", level_sizes.size(), levels_));
  if (static_cast<int64_t>(popularity.size()) != num_items_)
    throw InputError(fmt::format("planner: popularity of {} items for {} SIDs", popularity.size(), num_items_));
  std::vector<int64_t> offsets(levels_, 0);
  int64_t total = 0;
  for (int64_t l = 0; l < levels_; ++l) {
    offsets[l] = total;
    total += level_sizes[l];
  }
  auto codes = torch::empty({num_items_, levels_}, torch::kLong);
  auto acc = codes.accessor<int64_t, 2>();
  first_code_.resize(num_items_);
  log_pop_host_.resize(num_items_);
  for (int64_t i = 0; i < num_items_; ++i) {
    for (int64_t l = 0; l < levels_; ++l) acc[i][l] = offsets[l] + sids(i, l);
    first_code_[i] = sids(i, 0);
    log_pop_host_[i] = static_cast<float>(std::log1p(static_cast<double>(popularity[i])));
  }
  codes_ = register_buffer("codes", codes);
  log_pop_ = register_buffer("log_pop", torch::from_blob(log_pop_host_.data(), {num_items_}, torch::kFloat).clone());
  feature_shift_ = register_buffer("feature_shift", torch::zeros({kNumFeatures}));
  feature_scale_ = register_buffer("feature_scale", torch::ones({kNumFeatures}));
  auto mask = torch::zeros({kNumFeatures}, torch::kBool);
  mask.slice(0, kFirstObservationFeature, kEndObservationFeature).fill_(true);
  observation_mask_ = register_buffer("observation_mask", mask);
  code_emb_ = register_module("code_emb", torch::nn::Embedding(total, options_.dim));
  torch::nn::init::normal_(code_emb_->weight, 0.0, 0.1);
  const int64_t in = 2 * options_.dim + kNumFeatures;
  mlp_ = register_module("mlp", torch::nn::Sequential(torch::nn::Linear(in, options_.hidden), torch::nn::ReLU(),
                                                      torch::nn::Dropout(options_.dropout),
                                                      torch::nn::Linear(options_.hidden, options_.hidden),
                                                      torch::nn::ReLU(), torch::nn::Linear(options_.hidden, kNumActions)));
}

torch::Tensor PlannerPolicyImpl::forward(const std::vector<const Sequence*>& histories, const torch::Tensor& features) {
  const int64_t b = static_cast<int64_t>(histories.size()), t = options_.history;
  auto items = torch::zeros({b, t}, torch::kLong);
  auto mask = torch::zeros({b, t}, torch::kFloat);
  auto last = torch::zeros({b}, torch::kLong);
  auto ia = items.accessor<int64_t, 2>();
  auto ma = mask.accessor<float, 2>();
  auto la = last.accessor<int64_t, 1>();
  for (int64_t r = 0; r < b; ++r) {
    const Sequence& h = *histories[r];
    const int64_t n = std::min<int64_t>(t, static_cast<int64_t>(h.size()));
    for (int64_t j = 0; j < n; ++j) {
      const ItemIndex item = h[h.size() - n + j];
      if (item < 0 || item >= num_items_) throw InputError(fmt::format("planner: item {} is out of range", item));
      ia[r][j] = item;
      ma[r][j] = 1.0f;
    }
    la[r] = n > 0 ? ia[r][n - 1] : 0;
  }
  const auto dev = code_emb_->weight.device();
  items = items.to(dev);
  mask = mask.to(dev);
  auto item_vec = code_emb_->forward(codes_.index({items})).sum(2);  // [B, T, D]
  auto pooled = (item_vec * mask.unsqueeze(2)).sum(1) / mask.sum(1, true).clamp_min(1.0);
  auto last_vec = code_emb_->forward(codes_.index({last.to(dev)})).sum(1);
  auto has_history = (mask.sum(1, true) > 0).to(torch::kFloat);
  auto f = features.to(dev);
  const auto unobserved = observation_mask_.unsqueeze(0) & (f == 0);
  f = torch::where(unobserved, f, ((f - feature_shift_) / feature_scale_).clamp(-5.0, 5.0));
  return mlp_->forward(torch::cat({pooled, last_vec * has_history, f}, 1));
}

void PlannerPolicyImpl::set_feature_scale(const std::vector<float>& shift, const std::vector<float>& scale) {
  if (shift.size() != kNumFeatures || scale.size() != kNumFeatures)
    throw Error(fmt::format("planner: feature scale needs {} entries", kNumFeatures));
  for (float v : scale)
    if (!(v > 0)) throw Error("planner: feature scales must be positive");
  torch::NoGradGuard no_grad;
  const auto dev = feature_shift_.device();
  feature_shift_.copy_(torch::tensor(shift).to(dev));
  feature_scale_.copy_(torch::tensor(scale).to(dev));
}

RequestFeatures PlannerPolicyImpl::request_features(const Sequence& history) const {
  RequestFeatures f;
  const size_t n = std::min<size_t>(history.size(), static_cast<size_t>(options_.history));
  f.log_length = static_cast<float>(std::log1p(static_cast<double>(history.size())) / std::log(51.0));
  if (n == 0) return f;
  std::set<int32_t> firsts;
  double pop = 0;
  for (size_t j = history.size() - n; j < history.size(); ++j) {
    const ItemIndex item = history[j];
    if (item < 0 || item >= num_items_) throw InputError(fmt::format("planner: item {} is out of range", item));
    firsts.insert(first_code_[item]);
    pop += log_pop_host_[item];
  }
  f.diversity = static_cast<float>(firsts.size()) / static_cast<float>(n);
  f.mean_log_pop = static_cast<float>(pop / static_cast<double>(n) / 10.0);
  f.last_log_pop = log_pop_host_[history.back()] / 10.0f;
  return f;
}

void PlannerPolicyImpl::sync_host() {
  auto codes = codes_.to(torch::kCPU);
  auto pop = log_pop_.to(torch::kCPU).contiguous();
  auto ca = codes.accessor<int64_t, 2>();
  for (int64_t i = 0; i < num_items_; ++i) {
    first_code_[i] = static_cast<int32_t>(ca[i][0]);  // level 0's offset is 0
    log_pop_host_[i] = pop.data_ptr<float>()[i];
  }
}

torch::Tensor feature_tensor(const std::vector<std::vector<float>>& rows) {
  auto t = torch::empty({static_cast<int64_t>(rows.size()), kNumFeatures}, torch::kFloat);
  auto a = t.accessor<float, 2>();
  for (size_t r = 0; r < rows.size(); ++r) {
    if (rows[r].size() != static_cast<size_t>(kNumFeatures))
      throw Error(fmt::format("planner: feature row of {} values, expected {}", rows[r].size(), kNumFeatures));
    for (int c = 0; c < kNumFeatures; ++c) a[static_cast<int64_t>(r)][c] = rows[r][c];
  }
  return t;
}

}  // namespace twistar
