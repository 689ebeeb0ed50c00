#include "models/sid_generator.h"

#include <cmath>
#include <limits>
#include <unordered_map>

#include "core/error.h"

namespace twistar {

void SidGeneratorOptions::validate() const {
  TransformerOptions{dim, heads, layers, 0, dropout, attn_dropout}.validate();
  TransformerOptions{dim, heads, decoder_layers, 0, dropout, attn_dropout}.validate();
  if (max_len < 1) throw_input_error("max_len: must be >= 1, got {}", max_len);
  if (history_tokens != "item" && history_tokens != "code")
    throw_input_error("history_tokens: must be item or code, got '{}'", history_tokens);
  if (valid_users < 0) throw_input_error("valid_users: must be >= 0, got {}", valid_users);
  if (valid_beam < 1) throw_input_error("valid_beam: must be >= 1, got {}", valid_beam);
  train.validate();
}

nlohmann::json SidGeneratorOptions::to_json() const {
  nlohmann::json j = {{"dim", dim},
                      {"layers", layers},
                      {"heads", heads},
                      {"decoder_layers", decoder_layers},
                      {"dropout", dropout},
                      {"attn_dropout", attn_dropout},
                      {"max_len", max_len},
                      {"history_tokens", history_tokens},
                      {"item_id_input", item_id_input},
                      {"constrained_softmax", constrained_softmax},
                      {"valid_users", valid_users},
                      {"valid_beam", valid_beam}};
  train.add_to(j);
  return j;
}

SidGeneratorOptions SidGeneratorOptions::from_json(const nlohmann::json& j) {
  SidGeneratorOptions o;
  auto get = [&](const char* key, auto& field) { field = j.value(key, field); };
  get("dim", o.dim);
  get("layers", o.layers);
  get("heads", o.heads);
  get("decoder_layers", o.decoder_layers);
  get("dropout", o.dropout);
  get("attn_dropout", o.attn_dropout);
  get("max_len", o.max_len);
  get("history_tokens", o.history_tokens);
  get("item_id_input", o.item_id_input);
  get("constrained_softmax", o.constrained_softmax);
  get("valid_users", o.valid_users);
  get("valid_beam", o.valid_beam);
  o.train.read(j);
  o.validate();
  return o;
}

SidGeneratorImpl::SidGeneratorImpl(const CodeMatrix& sids, const std::vector<int32_t>& level_sizes,
                                   const SidGeneratorOptions& o)
    : options_(o), scale_(std::sqrt(static_cast<double>(o.dim))) {
  o.validate();
  const int64_t L = static_cast<int64_t>(level_sizes.size());
  if (L < 1 || sids.cols() != L)
    throw_input_error("sid generator: SIDs have {} levels but {} level sizes", sids.cols(), L);
  if (sids.rows() < 1) throw_input_error("sid generator: no items");
  for (int64_t l = 0; l < L; ++l) {
    level_sizes_.push_back(level_sizes[l]);
    for (int64_t i = 0; i < sids.rows(); ++i)
      if (sids(i, l) < 0 || sids(i, l) >= level_sizes[l])
        throw_input_error("sid generator: item {} has code {} at level {} (level size {})", i,
                          sids(i, l), l, level_sizes[l]);
  }
  auto table = torch::empty({sids.rows(), L}, torch::kLong);
  auto acc = table.accessor<int64_t, 2>();
  for (int64_t i = 0; i < sids.rows(); ++i)
    for (int64_t l = 0; l < L; ++l) acc[i][l] = sids(i, l);
  sids_ = register_buffer("sids", table);
  // Prefix ids level by level: the prefix of level l extends the prefix of level l - 1 by c_{l-1}.
  auto prefix = torch::zeros({sids.rows(), L}, torch::kLong);
  auto pa = prefix.accessor<int64_t, 2>();
  std::vector<int64_t> prefixes_at(L, 1);
  for (int64_t l = 1; l < L; ++l) {
    std::unordered_map<int64_t, int64_t> ids;
    for (int64_t i = 0; i < sids.rows(); ++i) {
      int64_t key = pa[i][l - 1] * level_sizes_[l - 1] + sids(i, l - 1);
      pa[i][l] = ids.emplace(key, static_cast<int64_t>(ids.size())).first->second;
    }
    prefixes_at[l] = static_cast<int64_t>(ids.size());
  }
  prefix_id_ = register_buffer("prefix_id", prefix);
  for (int64_t l = 0; l < L; ++l) {
    auto mask = torch::zeros({prefixes_at[l], level_sizes_[l]}, torch::kBool);
    auto ma = mask.accessor<bool, 2>();
    for (int64_t i = 0; i < sids.rows(); ++i) ma[pa[i][l]][sids(i, l)] = true;
    child_mask_.push_back(register_buffer("child_mask" + std::to_string(l), mask));
  }

  const double init_std = 1.0 / scale_;
  torch::NoGradGuard no_grad;
  for (int64_t l = 0; l < L; ++l) {
    auto e = register_module("code_emb" + std::to_string(l), torch::nn::Embedding(level_sizes_[l], o.dim));
    torch::nn::init::normal_(e->weight, 0.0, init_std);
    code_emb_.push_back(e);
  }
  level_emb_ = register_module("level_emb", torch::nn::Embedding(L, o.dim));
  pos_emb_ = register_module("pos_emb", torch::nn::Embedding(o.max_len, o.dim));
  dec_pos_emb_ = register_module("dec_pos_emb", torch::nn::Embedding(L, o.dim));
  for (auto* e : {&level_emb_, &pos_emb_, &dec_pos_emb_})
    torch::nn::init::normal_((*e)->weight, 0.0, 0.02);
  if (o.item_id_input) {
    item_emb_ = register_module("item_emb", torch::nn::Embedding(sids.rows(), o.dim));
    torch::nn::init::normal_(item_emb_->weight, 0.0, init_std);
  }
  emb_drop_ = register_module("emb_drop", torch::nn::Dropout(o.dropout));
  encoder_ = register_module(
      "encoder", TransformerStack(TransformerOptions{o.dim, o.heads, o.layers, 0, o.dropout, o.attn_dropout}));
  decoder_ = register_module("decoder", TransformerStack(TransformerOptions{
                                            o.dim, o.heads, o.decoder_layers, 0, o.dropout, o.attn_dropout}));
}

torch::Tensor SidGeneratorImpl::code_embedding(int64_t level, const torch::Tensor& codes) {
  return code_emb_[level](codes) * scale_;
}

torch::Tensor SidGeneratorImpl::valid_codes(int64_t level, const torch::Tensor& items) const {
  return child_mask_[level].index_select(0, prefix_id_.index_select(0, items).select(1, level));
}

torch::Tensor SidGeneratorImpl::encode(const torch::Tensor& items, const torch::Tensor& extra) {
  const int64_t B = items.size(0), T = items.size(1), L = num_levels(), D = options_.dim;
  if (T > options_.max_len)
    throw_error("sid generator: history length {} exceeds max_len {}", T, options_.max_len);
  auto valid = items.ge(0);                           // [B, T]
  auto codes = sids_.index_select(0, items.clamp_min(0).flatten()).view({B, T, L});
  auto positions = pos_emb_(torch::arange(T, items.options()));  // [T, D]
  if (options_.history_tokens == "item") {
    auto x = code_embedding(0, codes.select(2, 0));
    for (int64_t l = 1; l < L; ++l) x = x + code_embedding(l, codes.select(2, l));
    if (item_emb_) x = x + item_emb_(items.clamp_min(0)) * scale_;
    if (extra.defined()) x = x + extra;
    x = x + positions.unsqueeze(0);
    x = emb_drop_(x) * valid.unsqueeze(-1).to(x.dtype());
    return encoder_(x, causal_padding_mask(valid));
  }
  if (extra.defined()) throw_error("sid generator: extra history inputs need history_tokens = item");
  // One token per code: [B, T, L, D] -> [B, T * L, D]; the summary of item t is its last code's output.
  std::vector<torch::Tensor> per_level;
  for (int64_t l = 0; l < L; ++l) per_level.push_back(code_embedding(l, codes.select(2, l)));
  auto x = torch::stack(per_level, 2) + level_emb_->weight.view({1, 1, L, D}) +
           positions.view({1, T, 1, D});
  if (item_emb_) x = x + (item_emb_(items.clamp_min(0)) * scale_).unsqueeze(2);
  auto valid_tokens = valid.unsqueeze(2).expand({B, T, L}).reshape({B, T * L});
  x = emb_drop_(x.view({B, T * L, D})) * valid_tokens.unsqueeze(-1).to(x.dtype());
  auto h = encoder_(x, causal_padding_mask(valid_tokens));
  return h.view({B, T, L, D}).select(2, L - 1);
}

torch::Tensor SidGeneratorImpl::encode_last(const torch::Tensor& items, const torch::Tensor& lengths) {
  auto h = encode(items);
  auto idx = (lengths - 1).clamp_min(0).view({-1, 1, 1}).expand({h.size(0), 1, h.size(2)});
  return h.gather(1, idx).squeeze(1);
}

torch::Tensor SidGeneratorImpl::decode(const torch::Tensor& x, KVCache* cache) {
  if (cache) return decoder_(x, torch::Tensor(), cache);  // one new token: it may see everything cached
  const int64_t n = x.size(1);
  auto future = torch::triu(torch::ones({n, n}, torch::TensorOptions().dtype(torch::kBool).device(x.device())), 1);
  return decoder_(x, future.view({1, 1, n, n}), nullptr);
}

std::vector<float> SidGeneratorImpl::item_log_probs(const torch::Tensor& h, const std::vector<int64_t>& rows,
                                                   const std::vector<int64_t>& items) {
  if (items.empty()) return {};
  const auto device = h.device();
  auto row_t = torch::tensor(rows, torch::kLong).to(device);
  auto lp = code_log_probs(h.index_select(0, row_t), torch::tensor(items, torch::kLong).to(device))
                .sum(1)
                .to(torch::kCPU, torch::kFloat)
                .contiguous();
  return {lp.data_ptr<float>(), lp.data_ptr<float>() + lp.numel()};
}

torch::Tensor SidGeneratorImpl::code_log_probs(const torch::Tensor& h, const torch::Tensor& items) {
  const int64_t L = num_levels();
  auto codes = sids_.index_select(0, items);  // [P, L]
  std::vector<torch::Tensor> tokens{h + dec_pos_emb_->weight[0]};
  for (int64_t l = 1; l < L; ++l)
    tokens.push_back(code_embedding(l - 1, codes.select(1, l - 1)) + dec_pos_emb_->weight[l]);
  auto out = decode(torch::stack(tokens, 1), nullptr);  // [P, L, D]
  std::vector<torch::Tensor> per_level;
  for (int64_t l = 0; l < L; ++l) {
    auto logits = torch::matmul(out.select(1, l), code_emb_[l]->weight.t());
    if (options_.constrained_softmax) {
      auto valid = valid_codes(l, items);
      logits = logits.masked_fill(valid.logical_not(), -std::numeric_limits<float>::infinity());
    }
    auto logp = torch::log_softmax(logits, -1);
    per_level.push_back(logp.gather(1, codes.select(1, l).unsqueeze(1)).squeeze(1));
  }
  return torch::stack(per_level, 1);
}

torch::Tensor SidGeneratorImpl::loss(const torch::Tensor& items, const torch::Tensor& targets) {
  auto h = encode(items);
  auto valid = targets.ge(0);
  return -code_log_probs(h.index({valid}), targets.index({valid})).sum(1).mean();
}

DecoderState SidGeneratorImpl::start(const torch::Tensor& h_last) const {
  DecoderState state;
  state.context.push_back(h_last);
  return state;
}

torch::Tensor SidGeneratorImpl::step(int64_t level, const torch::Tensor& previous, DecoderState& state) {
  torch::Tensor x;
  if (level == 0)
    x = state.context[0] + dec_pos_emb_->weight[0];
  else
    x = code_embedding(level - 1, previous) + dec_pos_emb_->weight[level];
  auto out = decode(x.unsqueeze(1), &state.cache).squeeze(1);  // [N, D]
  return torch::log_softmax(torch::matmul(out, code_emb_[level]->weight.t()), -1);
}

void pack_item_histories(const std::vector<Sequence>& histories, int64_t max_len,
                         torch::Tensor& items, torch::Tensor& lengths) {
  pack_last_items(histories, max_len, 0, -1, items, lengths);
}

}  // namespace twistar
