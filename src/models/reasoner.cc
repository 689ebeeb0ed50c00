#include "models/reasoner.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace twistar {

nlohmann::json ReasonerVocab::to_json() const {
  return {{"size", size},           {"think", think},       {"think_end", think_end},
          {"pad", pad},             {"text_ids", text_ids}, {"rationale_ids", rationale_ids}};
}

ReasonerVocab ReasonerVocab::from_json(const nlohmann::json& j) {
  ReasonerVocab v;
  v.size = j.at("size").get<int64_t>();
  v.think = j.at("think").get<int64_t>();
  v.think_end = j.at("think_end").get<int64_t>();
  v.pad = j.value("pad", int64_t{0});
  v.text_ids = j.at("text_ids").get<std::vector<int64_t>>();
  v.rationale_ids = j.value("rationale_ids", std::vector<int64_t>());
  return v;
}

void ReasonerOptions::validate() const {
  if (layers < 1) throw_input_error("reasoner layers: must be >= 1, got {}", layers);
  if (dropout < 0 || dropout >= 1) throw_input_error("reasoner dropout: must be in [0, 1), got {}", dropout);
  if (attn_dropout < 0 || attn_dropout >= 1)
    throw_input_error("reasoner attn_dropout: must be in [0, 1), got {}", attn_dropout);
  if (context_items < 1) throw_input_error("reasoner context_items: must be >= 1, got {}", context_items);
  if (item_text_pieces < 1)
    throw_input_error("reasoner item_text_pieces: must be >= 1, got {}", item_text_pieces);
  if (max_rationale < 1) throw_input_error("reasoner max_rationale: must be >= 1, got {}", max_rationale);
  if (rationale_weight < 0)
    throw_input_error("reasoner rationale_weight: must be >= 0, got {}", rationale_weight);
}

nlohmann::json ReasonerOptions::to_json() const {
  return {{"layers", layers},
          {"dropout", dropout},
          {"attn_dropout", attn_dropout},
          {"context_items", context_items},
          {"item_text_pieces", item_text_pieces},
          {"max_rationale", max_rationale},
          {"rationale_weight", rationale_weight}};
}

ReasonerOptions ReasonerOptions::from_json(const nlohmann::json& j) {
  ReasonerOptions o;
  auto get = [&](const char* key, auto& field) { field = j.value(key, field); };
  get("layers", o.layers);
  get("dropout", o.dropout);
  get("attn_dropout", o.attn_dropout);
  get("context_items", o.context_items);
  get("item_text_pieces", o.item_text_pieces);
  get("max_rationale", o.max_rationale);
  get("rationale_weight", o.rationale_weight);
  o.validate();
  return o;
}

namespace {

/// Ids as a long tensor with </think> appended (the token that ends any text).
torch::Tensor ids_with_end(const std::vector<int64_t>& ids, int64_t think_end, int64_t vocab) {
  std::vector<int64_t> v = ids;
  v.push_back(think_end);
  for (int64_t id : v)
    if (id < 0 || id >= vocab) throw_input_error("reasoner: token id {} outside the vocabulary of {}", id, vocab);
  return torch::tensor(v, torch::kLong);
}

}  // namespace

ReasonerImpl::ReasonerImpl(SidGenerator base, const ReasonerVocab& vocab, const torch::Tensor& item_text,
                           const ReasonerOptions& o)
    : vocab_(vocab), options_(o) {
  o.validate();
  const auto& bo = base->options();
  if (bo.history_tokens != "item")
    throw_input_error("reasoner: the SID generator must read one token per item (history_tokens = item)");
  const int64_t D = bo.dim;
  scale_ = std::sqrt(static_cast<double>(D));
  if (vocab.text_ids.empty()) throw_input_error("reasoner: the tokenizer has no text pieces");
  if (item_text.dim() != 2 || item_text.size(0) != base->num_items() ||
      item_text.size(1) != o.item_text_pieces)
    throw_input_error("reasoner: item text must be [{} items, {} pieces]", base->num_items(),
                      o.item_text_pieces);
  base_ = register_module("base", base);
  item_text_ = register_buffer("item_text", item_text.to(torch::kLong).clone());
  text_ids_ = register_buffer("text_ids", ids_with_end(vocab.text_ids, vocab.think_end, vocab.size));
  rationale_ids_ = register_buffer(
      "rationale_ids",
      ids_with_end(vocab.rationale_ids.empty() ? vocab.text_ids : vocab.rationale_ids, vocab.think_end, vocab.size));

  tok_emb_ = register_module("tok_emb", torch::nn::Embedding(vocab.size, D));
  pos_emb_ = register_module("pos_emb", torch::nn::Embedding(o.max_rationale + 2, D));
  recency_emb_ = register_module("recency_emb", torch::nn::Embedding(o.context_items, D));
  text_proj_ = register_module("text_proj", torch::nn::Linear(D, D));
  thought_proj_ = register_module("thought_proj", torch::nn::Linear(D, D));
  drop_ = register_module("drop", torch::nn::Dropout(o.dropout));
  lm_ = register_module("lm", TransformerStack(TransformerOptions{D, bo.heads, o.layers, 0, o.dropout,
                                                                  o.attn_dropout}));
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(tok_emb_->weight, 0.0, 1.0 / scale_);
  torch::nn::init::normal_(pos_emb_->weight, 0.0, 0.02);
  torch::nn::init::normal_(recency_emb_->weight, 0.0, 0.02);
  // Zero: item text and thought enter without disturbing the warm start (exactly fast_rec at first).
  for (auto* lin : {&text_proj_, &thought_proj_}) {
    (*lin)->weight.zero_();
    (*lin)->bias.zero_();
  }
}

torch::Tensor ReasonerImpl::embed_tokens(const torch::Tensor& ids) { return tok_emb_(ids) * scale_; }

torch::Tensor ReasonerImpl::text_log_probs(const torch::Tensor& out, const torch::Tensor& ids) {
  return torch::log_softmax(torch::matmul(out, tok_emb_->weight.index_select(0, ids).t()), -1);
}

void ReasonerImpl::context(const std::vector<Sequence>& histories, torch::Tensor& ctx, torch::Tensor& valid,
                           torch::Tensor& h_last) {
  auto device = tok_emb_->weight.device();
  torch::Tensor items, lengths;
  pack_item_histories(histories, base_->max_len(), items, lengths);
  items = items.to(device);
  lengths = lengths.to(device);
  const int64_t B = items.size(0), T = items.size(1), P = options_.item_text_pieces;
  const int64_t K = options_.context_items;
  auto ids = item_text_.index_select(0, items.clamp_min(0).flatten()).view({B, T, P});
  auto present = ids.ge(0).unsqueeze(-1).to(torch::kFloat);
  auto mean = (tok_emb_(ids.clamp_min(0)) * present).sum(2) / present.sum(2).clamp_min(1.0);
  auto h = base_->encode(items, text_proj_(mean * scale_));  // [B, T, D]
  // Slot k < n holds history position len - n + k (oldest first), n = min(len, K).
  auto n = lengths.clamp_max(K).unsqueeze(1);                  // [B, 1]
  auto slot = torch::arange(K, items.options()).unsqueeze(0);  // [1, K]
  valid = slot.lt(n);
  auto pos = (lengths.unsqueeze(1) - n + slot).clamp(0, T - 1);
  auto recency = (n - 1 - slot).clamp_min(0);
  auto picked = h.gather(1, pos.unsqueeze(-1).expand({B, K, h.size(2)}));
  h_last = h.gather(1, (lengths - 1).clamp_min(0).view({B, 1, 1}).expand({B, 1, h.size(2)})).squeeze(1);
  ctx = (picked + recency_emb_(recency)) * valid.unsqueeze(-1).to(picked.dtype());
}

torch::Tensor ReasonerImpl::loss(const std::vector<ReasonerExample>& batch, bool reasoning, double* sid_nll,
                                 double* text_nll) {
  auto [sid_loss, text_loss] = losses(batch, reasoning);
  if (sid_nll) *sid_nll = sid_loss.item<double>();
  if (text_nll) *text_nll = text_loss.item<double>();
  return sid_loss + options_.rationale_weight * text_loss;
}

std::pair<torch::Tensor, torch::Tensor> ReasonerImpl::losses(const std::vector<ReasonerExample>& batch,
                                                              bool reasoning) {
  const int64_t B = static_cast<int64_t>(batch.size()), K = options_.context_items;
  if (B == 0) throw_error("reasoner: empty batch");
  auto device = tok_emb_->weight.device();
  const auto& vocab_ids = reasoning ? rationale_ids_ : text_ids_;
  // Position of each id inside vocab_ids (-1 = not allowed there).
  auto slot_of = torch::full({vocab_.size}, -1, torch::kLong);
  {
    auto ids_cpu = vocab_ids.to(torch::kCPU);
    slot_of.index_put_({ids_cpu}, torch::arange(ids_cpu.size(0), torch::kLong));
  }
  auto slot_acc = slot_of.accessor<int64_t, 1>();
  std::vector<Sequence> histories;
  std::vector<int64_t> n(B);
  int64_t longest = 0;
  for (int64_t b = 0; b < B; ++b) {
    histories.push_back(batch[b].history);
    n[b] = std::min<int64_t>(batch[b].rationale.size(), options_.max_rationale);
    longest = std::max(longest, n[b]);
  }
  // Text part per row: <think> r_1..r_n </think>, then padding.
  const int64_t S = longest + 2;
  auto tokens = torch::full({B, S}, vocab_.pad, torch::kLong);
  auto tvalid = torch::zeros({B, S}, torch::kBool);
  auto targets = torch::empty({B}, torch::kLong);
  std::vector<int64_t> text_rows, text_cols, text_targets;
  auto ta = tokens.accessor<int64_t, 2>();
  auto va = tvalid.accessor<bool, 2>();
  auto tg = targets.accessor<int64_t, 1>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& ex = batch[b];
    if (ex.target < 0 || ex.target >= base_->num_items())
      throw_error("reasoner: target item {} outside the catalogue", ex.target);
    tg[b] = ex.target;
    ta[b][0] = vocab_.think;
    for (int64_t j = 0; j < n[b]; ++j) ta[b][1 + j] = ex.rationale[j];
    ta[b][n[b] + 1] = vocab_.think_end;
    for (int64_t j = 0; j < n[b] + 2; ++j) va[b][j] = true;
    for (int64_t j = 0; j <= n[b]; ++j) {  // position j predicts token j + 1 (a piece or </think>)
      int64_t slot = slot_acc[ta[b][j + 1]];
      if (slot < 0) continue;  // a piece outside this format's vocabulary is context only
      text_rows.push_back(b);
      text_cols.push_back(j);
      text_targets.push_back(slot);
    }
  }
  tokens = tokens.to(device);
  targets = targets.to(device);
  torch::Tensor ctx, cvalid, h_last;
  context(histories, ctx, cvalid, h_last);
  auto x = torch::cat({ctx, embed_tokens(tokens) + pos_emb_(torch::arange(S, tokens.options()))}, 1);
  auto valid = torch::cat({cvalid, tvalid.to(device)}, 1);
  auto out = lm_(drop_(x), causal_padding_mask(valid)).narrow(1, K, S);  // [B, S, D]

  auto as_tensor = [&](const std::vector<int64_t>& v) { return torch::tensor(v, torch::kLong).to(device); };
  auto text_out = out.index({as_tensor(text_rows), as_tensor(text_cols)});  // [M, D]
  auto text_loss = torch::nn::functional::nll_loss(text_log_probs(text_out, vocab_ids), as_tensor(text_targets));
  auto ends = torch::tensor(n, torch::kLong).to(device) + 1;  // position of </think>
  auto thought = out.index({torch::arange(B, tokens.options()), ends});
  auto sid_loss = -base_->code_log_probs(h_last + thought_proj_(thought), targets).sum(1).mean();
  return {sid_loss, text_loss};
}

DecoderState ReasonerImpl::start(const std::vector<Sequence>& histories) {
  torch::Tensor ctx, cvalid, h_last;
  context(histories, ctx, cvalid, h_last);
  const int64_t B = ctx.size(0);
  auto device = ctx.device();
  auto think = torch::full({B, 1}, vocab_.think, torch::TensorOptions().dtype(torch::kLong).device(device));
  auto x = torch::cat({ctx, embed_tokens(think) + pos_emb_->weight[0]}, 1);
  auto valid = torch::cat({cvalid, torch::ones({B, 1}, cvalid.options())}, 1);
  DecoderState state;
  auto out = lm_(x, causal_padding_mask(valid), &state.cache);
  state.context = {valid, torch::ones({B}, think.options()), out.select(1, out.size(1) - 1), h_last};
  return state;
}

torch::Tensor ReasonerImpl::feed(const torch::Tensor& tokens, DecoderState& state, const torch::Tensor& live) {
  auto& key_valid = state.context[0];
  auto& next_pos = state.context[1];
  const int64_t N = tokens.size(0);
  auto x = (embed_tokens(tokens) + pos_emb_(next_pos.clamp_max(options_.max_rationale + 1))).unsqueeze(1);
  key_valid = torch::cat({key_valid, live.unsqueeze(1)}, 1);
  auto blocked = key_valid.logical_not().view({N, 1, 1, key_valid.size(1)});
  auto out = lm_(x, blocked, &state.cache).squeeze(1);
  next_pos = next_pos + live.to(torch::kLong);
  state.context[2] = torch::where(live.unsqueeze(1), out, state.context[2]);
  return out;
}

Rationales ReasonerImpl::write_rationale(DecoderState& state, double temperature, const std::vector<uint64_t>& seeds,
                                         const TokenGrammar* grammar) {
  const int64_t N = state.rows();
  auto device = state.context[0].device();
  if (temperature > 0 && static_cast<int64_t>(seeds.size()) != N)
    throw_error("reasoner: sampling {} rationales needs one seed per row, got {}", N, seeds.size());
  std::vector<at::Generator> gens;
  if (temperature > 0)
    for (uint64_t seed : seeds) gens.push_back(at::make_generator<at::CPUGeneratorImpl>(seed));
  auto ids_cpu = rationale_ids_.to(torch::kCPU);
  auto ids = ids_cpu.accessor<int64_t, 1>();
  const int64_t V = ids_cpu.size(0);
  // Position of each vocabulary id among the rationale ids (-1: not one), for the grammar's masks.
  std::vector<int64_t> slot_of;
  std::vector<int32_t> at(N, 0);
  if (grammar) {
    slot_of.assign(static_cast<size_t>(vocab_.size), -1);
    for (int64_t j = 0; j < V; ++j) slot_of[ids[j]] = j;
  }
  Rationales r;
  r.tokens.assign(N, {});
  r.log_probs.assign(N, 0.0);
  std::vector<bool> done(N, false);
  for (int64_t step = 0; step < options_.max_rationale; ++step) {
    auto logp = text_log_probs(state.context[2], rationale_ids_);
    if (grammar) {
      auto mask = torch::full({N, V}, -std::numeric_limits<float>::infinity());
      auto m = mask.accessor<float, 2>();
      for (int64_t i = 0; i < N; ++i) {
        bool any = false;
        for (int64_t id : grammar->allowed(at[i])) {
          const int64_t slot = id >= 0 && id < vocab_.size ? slot_of[id] : -1;
          if (slot >= 0) m[i][slot] = 0.0f, any = true;
        }
        if (!any) m[i][slot_of[vocab_.think_end]] = 0.0f;  // nothing can follow: end here
      }
      logp = logp + mask.to(device);
    }
    torch::Tensor choice;
    if (temperature <= 0) {
      choice = logp.argmax(-1);
    } else {
      auto probs = torch::softmax(logp / temperature, -1).to(torch::kCPU);
      choice = torch::zeros({N}, torch::kLong);
      auto c = choice.accessor<int64_t, 1>();
      for (int64_t i = 0; i < N; ++i)
        if (!done[i]) c[i] = torch::multinomial(probs[i], 1, false, gens[i]).item<int64_t>();
      choice = choice.to(device);
    }
    auto chosen_logp = logp.gather(1, choice.unsqueeze(1)).squeeze(1).to(torch::kCPU);
    auto chosen = choice.to(torch::kCPU);
    auto next = torch::full({N}, vocab_.pad, torch::kLong);
    auto live = torch::zeros({N}, torch::kBool);
    auto lp = chosen_logp.accessor<float, 1>();
    auto ch = chosen.accessor<int64_t, 1>();
    auto nx = next.accessor<int64_t, 1>();
    auto lv = live.accessor<bool, 1>();
    bool any = false;
    for (int64_t i = 0; i < N; ++i) {
      if (done[i]) continue;
      r.log_probs[i] += lp[i];
      const int64_t id = ids[ch[i]];
      if (id == vocab_.think_end) {
        done[i] = true;
        continue;
      }
      r.tokens[i].push_back(static_cast<int>(id));
      if (grammar) at[i] = grammar->next(at[i], id);
      nx[i] = id;
      lv[i] = true;
      any = true;
    }
    if (!any) break;
    feed(next.to(device), state, live.to(device));
  }
  return r;
}

DecoderState ReasonerImpl::finish_thought(DecoderState& state) {
  const int64_t N = state.rows();
  auto opts = torch::TensorOptions().dtype(torch::kLong).device(state.context[0].device());
  auto out = feed(torch::full({N}, vocab_.think_end, opts), state, torch::ones({N}, opts.dtype(torch::kBool)));
  return base_->start(state.context[3] + thought_proj_(out));
}

}  // namespace twistar
