#include "models/sasrec.h"

#include <cmath>

#include "core/error.h"

namespace twistar {

void SasrecOptions::validate() const {
  TransformerOptions{dim, heads, layers, 0, dropout, attn_dropout}.validate();
  if (max_len < 1) throw_input_error("max_len: must be >= 1, got {}", max_len);
  train.validate();
}

nlohmann::json SasrecOptions::to_json() const {
  nlohmann::json j = {{"dim", dim},         {"layers", layers},           {"heads", heads},
                      {"dropout", dropout}, {"attn_dropout", attn_dropout}, {"max_len", max_len}};
  train.add_to(j);
  return j;
}

SasrecOptions SasrecOptions::from_json(const nlohmann::json& j) {
  SasrecOptions o;
  o.dim = j.value("dim", o.dim);
  o.layers = j.value("layers", o.layers);
  o.heads = j.value("heads", o.heads);
  o.dropout = j.value("dropout", o.dropout);
  o.attn_dropout = j.value("attn_dropout", o.attn_dropout);
  o.max_len = j.value("max_len", o.max_len);
  o.train.read(j);
  o.validate();
  return o;
}

SasrecImpl::SasrecImpl(int64_t num_items, const SasrecOptions& o)
    : num_items_(num_items), max_len_(o.max_len), dim_(o.dim) {
  o.validate();
  item_emb_ = register_module(
      "item_emb", torch::nn::Embedding(torch::nn::EmbeddingOptions(num_items + 1, o.dim).padding_idx(0)));
  pos_emb_ = register_module("pos_emb", torch::nn::Embedding(o.max_len, o.dim));
  emb_drop_ = register_module("emb_drop", torch::nn::Dropout(o.dropout));
  encoder_ = register_module(
      "encoder", TransformerStack(TransformerOptions{o.dim, o.heads, o.layers, 0, o.dropout, o.attn_dropout}));
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(item_emb_->weight, 0.0, 1.0 / std::sqrt(static_cast<double>(o.dim)));
  item_emb_->weight[0].zero_();
  torch::nn::init::normal_(pos_emb_->weight, 0.0, 0.02);
}

torch::Tensor SasrecImpl::encode(const torch::Tensor& tokens) {
  const int64_t L = tokens.size(1);
  if (L > max_len_) throw_error("sasrec: sequence length {} exceeds max_len {}", L, max_len_);
  auto valid = tokens.ne(0);
  auto positions = torch::arange(L, tokens.options()).unsqueeze(0);
  auto x = item_emb_(tokens) * std::sqrt(static_cast<double>(dim_)) + pos_emb_(positions);
  x = emb_drop_(x) * valid.unsqueeze(-1).to(x.dtype());
  return encoder_(x, causal_padding_mask(valid));
}

torch::Tensor SasrecImpl::item_weights() { return item_emb_->weight.slice(0, 1); }

torch::Tensor SasrecImpl::last_hidden(const torch::Tensor& tokens, const torch::Tensor& lengths) {
  auto h = encode(tokens);
  auto idx = (lengths - 1).clamp_min(0).view({-1, 1, 1}).expand({h.size(0), 1, h.size(2)});
  return h.gather(1, idx).squeeze(1);
}

torch::Tensor SasrecImpl::score_last(const torch::Tensor& tokens, const torch::Tensor& lengths) {
  return torch::matmul(last_hidden(tokens, lengths), item_weights().t());
}

torch::Tensor SasrecImpl::score_items(const torch::Tensor& tokens, const torch::Tensor& lengths,
                                      const torch::Tensor& items) {
  auto last = last_hidden(tokens, lengths);                                        // [B, D]
  auto w = item_weights().index_select(0, items.reshape(-1)).view({items.size(0), items.size(1), -1});
  return torch::bmm(w, last.unsqueeze(2)).squeeze(2);                              // [B, M]
}

void pack_histories(const std::vector<Sequence>& histories, int64_t max_len, torch::Tensor& tokens,
                    torch::Tensor& lengths) {
  pack_last_items(histories, max_len, 1, 0, tokens, lengths);
}

SasrecRecommender::SasrecRecommender(Sasrec model) : model_(std::move(model)) { model_->eval(); }

std::vector<Ranking> SasrecRecommender::recommend(const std::vector<Sequence>& histories,
                                                  const RecommendOptions& options) const {
  torch::NoGradGuard no_grad;
  torch::Tensor tokens, lengths;
  pack_histories(histories, model_->max_len(), tokens, lengths);
  auto device = model_->item_weights().device();
  auto scores = model_->score_last(tokens.to(device), lengths.to(device)).cpu();
  if (options.exclude_history) {
    // Mask every history item, not only the truncated window the model read.
    std::vector<int64_t> rows, cols;
    for (size_t b = 0; b < histories.size(); ++b)
      for (ItemIndex i : histories[b]) {
        rows.push_back(static_cast<int64_t>(b));
        cols.push_back(i);
      }
    if (!rows.empty())
      scores.index_put_({torch::tensor(rows), torch::tensor(cols)},
                        -std::numeric_limits<float>::infinity());
  }
  int64_t k = std::min<int64_t>(options.k, model_->num_items());
  auto [values, indices] = scores.topk(k, 1);
  auto v = values.accessor<float, 2>();
  auto ix = indices.accessor<int64_t, 2>();
  std::vector<Ranking> out(histories.size());
  for (size_t b = 0; b < histories.size(); ++b)
    for (int64_t r = 0; r < k; ++r)
      if (std::isfinite(v[b][r])) out[b].push_back({static_cast<ItemIndex>(ix[b][r]), v[b][r]});
  return out;
}

}  // namespace twistar
