#include "models/ranker.h"

#include <cmath>
#include <limits>

#include "core/error.h"
#include "data/ranks.h"

namespace twistar {

RankerOptions::RankerOptions() {
  train.lr = 1e-3;
  train.batch_size = 256;
  train.epochs = 40;
  train.patience = 4;
  train.lr_patience = 2;
  train.weight_decay = 0.0;
}

void RankerOptions::validate() const {
  if (kind != "din" && kind != "gbdt")
    throw_input_error("ranker kind: must be din or gbdt, got '{}'", kind);
  if (dim < 1) throw_input_error("ranker dim: must be >= 1, got {}", dim);
  if (history < 1) throw_input_error("ranker history: must be >= 1, got {}", history);
  if (attention_hidden < 1 || hidden < 1)
    throw_input_error("ranker attention_hidden/hidden: must be >= 1, got {}/{}", attention_hidden, hidden);
  if (dropout < 0 || dropout >= 1) throw_input_error("ranker dropout: must be in [0, 1), got {}", dropout);
  if (candidates < 2) throw_input_error("ranker candidates: must be >= 2, got {}", candidates);
  if (pool_backbone < 0 || pool_swing < 0)
    throw_input_error("ranker pool_backbone/pool_swing: must be >= 0, got {}/{}", pool_backbone, pool_swing);
  if (training_lists != "heldout" && training_lists != "prefixes")
    throw_input_error("ranker training_lists: must be heldout or prefixes, got '{}'", training_lists);
  if (lists_per_user < 1) throw_input_error("ranker lists_per_user: must be >= 1, got {}", lists_per_user);
  if (gbdt_rounds < 1) throw_input_error("ranker gbdt_rounds: must be >= 1, got {}", gbdt_rounds);
  if (gbdt_depth < 1) throw_input_error("ranker gbdt_depth: must be >= 1, got {}", gbdt_depth);
  if (gbdt_eta <= 0) throw_input_error("ranker gbdt_eta: must be > 0, got {}", gbdt_eta);
  train.validate();
}

nlohmann::json RankerOptions::to_json() const {
  nlohmann::json j = {{"kind", kind},
                      {"dim", dim},
                      {"history", history},
                      {"attention_hidden", attention_hidden},
                      {"hidden", hidden},
                      {"dropout", dropout},
                      {"candidates", candidates},
                      {"pool_backbone", pool_backbone},
                      {"pool_swing", pool_swing},
                      // How the pool's items from other retrievers are scored (a constant, so a
                      // ranker trained when the SID generator scored them is retrained, not reused).
                      {"pool_extras", "lowest_beam"},
                      {"training_lists", training_lists},
                      {"lists_per_user", lists_per_user},
                      {"use_sasrec", use_sasrec},
                      {"add_missed_positive", add_missed_positive},
                      {"gbdt_rounds", gbdt_rounds},
                      {"gbdt_depth", gbdt_depth},
                      {"gbdt_eta", gbdt_eta}};
  train.add_to(j);
  return j;
}

RankerOptions RankerOptions::from_json(const nlohmann::json& j) {
  RankerOptions o;
  auto get = [&](const char* key, auto& field) { field = j.value(key, field); };
  get("kind", o.kind);
  get("dim", o.dim);
  get("history", o.history);
  get("attention_hidden", o.attention_hidden);
  get("hidden", o.hidden);
  get("dropout", o.dropout);
  get("candidates", o.candidates);
  // A ranker written before the pools ordered fast_rec's candidates alone.
  o.pool_backbone = j.value("pool_backbone", 0);
  o.pool_swing = j.value("pool_swing", 0);
  // A ranker written before held-out lists trained on the run's own generators' prefixes.
  o.training_lists = j.value("training_lists", std::string("prefixes"));
  get("lists_per_user", o.lists_per_user);
  get("use_sasrec", o.use_sasrec);
  get("add_missed_positive", o.add_missed_positive);
  get("gbdt_rounds", o.gbdt_rounds);
  get("gbdt_depth", o.gbdt_depth);
  get("gbdt_eta", o.gbdt_eta);
  o.train.read(j);
  o.validate();
  return o;
}

RankLists RankLists::select(const torch::Tensor& rows) const {
  return {history.index_select(0, rows), items.index_select(0, rows),
          features.index_select(0, rows), label.index_select(0, rows)};
}

RankLists RankLists::cat(const std::vector<RankLists>& parts) {
  std::vector<torch::Tensor> h, i, f, l;
  for (const auto& p : parts) {
    if (p.size() == 0) continue;
    h.push_back(p.history);
    i.push_back(p.items);
    f.push_back(p.features);
    l.push_back(p.label);
  }
  if (h.empty()) return {};
  return {torch::cat(h), torch::cat(i), torch::cat(f), torch::cat(l)};
}

RankerImpl::RankerImpl(int64_t num_items, int64_t num_features, const RankerOptions& o)
    : history_(o.history) {
  const int64_t d = o.dim;
  item_emb_ = register_module("item_emb", torch::nn::Embedding(
                                              torch::nn::EmbeddingOptions(num_items + 1, d).padding_idx(0)));
  torch::nn::init::normal_(item_emb_->weight, 0.0, 0.02);
  const int64_t a = o.attention_hidden;
  attn_h_ = register_module("attn_h", torch::nn::Linear(d, a));
  attn_c_ = register_module("attn_c", torch::nn::Linear(torch::nn::LinearOptions(d, a).bias(false)));
  attn_hc_ = register_parameter("attn_hc", torch::randn({a, d}) / std::sqrt(static_cast<double>(4 * d)));
  attn_out_ = register_module("attn_out", torch::nn::Linear(a, 1));
  mlp_ = register_module(
      "mlp", torch::nn::Sequential(torch::nn::Linear(3 * d + num_features, o.hidden), torch::nn::ReLU(),
                                   torch::nn::Dropout(o.dropout), torch::nn::Linear(o.hidden, o.hidden / 2),
                                   torch::nn::ReLU(), torch::nn::Linear(o.hidden / 2, 1)));
  wide_ = register_module("wide", torch::nn::Linear(num_features, 1));
  feat_mean_ = register_buffer("feat_mean", torch::zeros({num_features}));
  feat_std_ = register_buffer("feat_std", torch::ones({num_features}));
}

void RankerImpl::set_feature_scaling(const torch::Tensor& mean, const torch::Tensor& std) {
  torch::NoGradGuard no_grad;
  feat_mean_.copy_(mean);
  feat_std_.copy_(std.clamp_min(1e-6));
}

void RankerImpl::init_items(const torch::Tensor& table) {
  torch::NoGradGuard no_grad;
  item_emb_->weight.slice(0, 1).copy_(table);
}

torch::Tensor RankerImpl::forward(const torch::Tensor& history, const torch::Tensor& items,
                                  const torch::Tensor& features) {
  const int64_t n = items.size(0), m = items.size(1);
  auto valid = items.ge(0);
  auto c = item_emb_->forward(items.clamp_min(-1) + 1);  // [N, M, D] (empty slots read padding)
  auto h = item_emb_->forward(history);                 // [N, H, D]
  const int64_t hl = h.size(1), d = h.size(2);
  const int64_t a = attn_hc_.size(0);
  // (h*c) W3^T for every (candidate, history item): [N, M*A, D] x [N, D, H] -> [N, M, H, A].
  auto hc = torch::bmm((c.unsqueeze(2) * attn_hc_).reshape({n, m * a, d}), h.transpose(1, 2))
                .view({n, m, a, hl})
                .permute({0, 1, 3, 2});
  auto pre = attn_h_->forward(h).unsqueeze(1) + attn_c_->forward(c).unsqueeze(2) + hc;
  auto logits = attn_out_->forward(torch::relu(pre)).squeeze(-1);  // [N, M, H]
  auto hist_mask = history.gt(0).unsqueeze(1).expand({n, m, hl});
  logits = logits.masked_fill(hist_mask.logical_not(), -1e9);
  auto weights = torch::softmax(logits, -1) * hist_mask.to(logits.dtype());
  auto view = torch::matmul(weights, h);  // [N, M, D]
  auto f = (features - feat_mean_) / feat_std_;
  auto score = mlp_->forward(torch::cat({c, view, c * view, f}, -1)).squeeze(-1) +
               wide_->forward(f).squeeze(-1);
  return score.masked_fill(valid.logical_not(), -std::numeric_limits<float>::infinity());
}

double rank_lists_ndcg10(const torch::Tensor& scores, const torch::Tensor& label) {
  auto s = scores.detach().to(torch::kCPU, torch::kFloat).contiguous();
  auto l = label.to(torch::kCPU, torch::kLong).contiguous();
  if (s.size(0) == 0) return 0.0;
  auto sa = s.accessor<float, 2>();
  auto la = l.accessor<int64_t, 1>();
  double sum = 0;
  for (int64_t r = 0; r < s.size(0); ++r) {
    const int64_t t = la[r];
    if (t < 0) continue;
    // Rank of the target; ties go to the earlier slot (fast_rec's order).
    int64_t better = 0;
    for (int64_t j = 0; j < s.size(1); ++j)
      better += sa[r][j] > sa[r][t] || (sa[r][j] == sa[r][t] && j < t);
    sum += ndcg_at(static_cast<int>(better) + 1, 10);
  }
  return sum / static_cast<double>(s.size(0));
}

}  // namespace twistar
