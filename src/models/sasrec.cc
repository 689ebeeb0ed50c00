#include "models/sasrec.h"

#include <cmath>

#include "core/error.h"

namespace twistar {

namespace {
FrequencyMixOptions mix_options(const SasrecOptions& o) {
  return {o.dim, o.heads, o.layers, o.max_len, o.dropout, o.attn_dropout, o.alpha, o.freq_cutoff};
}
}  // namespace

SasrecOptions SasrecOptions::bsarec() {
  SasrecOptions o;
  o.arch = "bsarec";
  o.dropout = 0.5;
  o.attn_dropout = 0.5;
  o.train.lr = 5e-4;
  o.train.batch_size = 256;
  o.train.patience = 10;
  return o;
}

void SasrecOptions::validate() const {
  if (arch != "sasrec" && arch != "bsarec")
    throw_input_error("arch: must be sasrec or bsarec, got '{}'", arch);
  if (is_bsarec()) mix_options(*this).validate();
  else TransformerOptions{dim, heads, layers, 0, dropout, attn_dropout}.validate();
  if (max_len < 1) throw_input_error("max_len: must be >= 1, got {}", max_len);
  train.validate();
}

nlohmann::json SasrecOptions::to_json() const {
  nlohmann::json j = {{"dim", dim},         {"layers", layers},           {"heads", heads},
                      {"dropout", dropout}, {"attn_dropout", attn_dropout}, {"max_len", max_len}};
  // SASRec's configuration stays as it was before the architectures, so its runs are reused.
  if (is_bsarec()) {
    j["arch"] = arch;
    j["alpha"] = alpha;
    j["freq_cutoff"] = freq_cutoff;
  }
  train.add_to(j);
  return j;
}

SasrecOptions SasrecOptions::from_json(const nlohmann::json& j) {
  SasrecOptions o;
  o.arch = j.value("arch", o.arch);
  o.alpha = j.value("alpha", o.alpha);
  o.freq_cutoff = j.value("freq_cutoff", o.freq_cutoff);
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
  torch::NoGradGuard no_grad;
  if (o.is_bsarec()) {
    emb_ln_ = register_module("emb_ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim}).eps(1e-12)));
    mix_ = register_module("mix", FrequencyMixStack(mix_options(o)));
    // BERT's initialisation, as the reference model: N(0, 0.02) weights, zero biases.
    for (auto& m : modules(/*include_self=*/false)) {
      if (auto* lin = m->as<torch::nn::Linear>()) {
        torch::nn::init::normal_(lin->weight, 0.0, 0.02);
        torch::nn::init::zeros_(lin->bias);
      }
    }
    torch::nn::init::normal_(item_emb_->weight, 0.0, 0.02);
  } else {
    encoder_ = register_module(
        "encoder", TransformerStack(TransformerOptions{o.dim, o.heads, o.layers, 0, o.dropout, o.attn_dropout}));
    torch::nn::init::normal_(item_emb_->weight, 0.0, 1.0 / std::sqrt(static_cast<double>(o.dim)));
  }
  item_emb_->weight[0].zero_();
  torch::nn::init::normal_(pos_emb_->weight, 0.0, 0.02);
}

torch::Tensor SasrecImpl::bsarec_last_hidden(const torch::Tensor& tokens, const torch::Tensor& lengths) {
  // Move each right-padded history to the end of the window's last L positions: the newest item sits
  // at position max_len - 1, the item j steps back at max_len - 1 - j.
  const int64_t L = tokens.size(1), W = max_len_;
  if (L > W) throw_error("bsarec: sequence length {} exceeds max_len {}", L, W);
  auto cols = torch::arange(L, tokens.options()).unsqueeze(0);
  auto src = cols - (L - lengths.clamp_max(L)).unsqueeze(1);
  auto window = tokens.gather(1, src.clamp(0, L - 1)).masked_fill(src.lt(0), 0);
  auto x = emb_drop_(emb_ln_(item_emb_(window) + pos_emb_(cols + (W - L))));
  return mix_(x, window.ne(0));
}

torch::Tensor SasrecImpl::encode(const torch::Tensor& tokens) {
  if (!encoder_) throw_error("bsarec: encode() reads every position; use last_hidden()");
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
  if (!encoder_) return bsarec_last_hidden(tokens, lengths);
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

SasrecRecommender::SasrecRecommender(Sasrec model, std::string name)
    : model_(std::move(model)), name_(std::move(name)) {
  model_->eval();
}

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
