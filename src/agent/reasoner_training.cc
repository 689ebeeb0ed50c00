#include "agent/reasoner_training.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "agent/fast_rec.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/manifest.h"
#include "core/progress.h"
#include "data/split.h"
#include "models/sid_generator_trainer.h"
#include "nn/device.h"
#include "search/beam_search.h"
#include "text/explanations.h"

namespace twistar {
namespace fs = std::filesystem;

namespace {

std::string join_path(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : " > ") + p;
  return out;
}

std::pair<ItemIndex, ItemIndex> pair_key(ItemIndex a, ItemIndex b) { return {std::min(a, b), std::max(a, b)}; }

}  // namespace

RationaleBuilder::RationaleBuilder(const Dataset& data, const ItemKnowledge& knowledge, int64_t recent)
    : data_(data), recent_(recent) {
  ExplanationOptions eo;
  auto facts = pair_facts(knowledge.pairs, data, eo);
  for (size_t i = 0; i < knowledge.pairs.size(); ++i) {
    const auto& p = knowledge.pairs[i];
    links_[pair_key(p.a, p.b)] = Link{facts[i].strength, p.same_brand, p.shared_categories};
  }
}

std::string RationaleBuilder::build(const Sequence& history, ItemIndex target) const {
  const ItemMeta& t = data_.items[target];
  const std::string out = rationale_header(category_tail(t), t.brand);
  // The most recent history item with a knowledge link to the target (strongest tier on ties of
  // recency is irrelevant: one item per position).
  const int64_t n = static_cast<int64_t>(history.size());
  for (int64_t back = 1; back <= std::min(n, recent_); ++back) {
    auto it = links_.find(pair_key(history[n - back], target));
    if (it == links_.end()) continue;
    const Link& l = it->second;
    const ItemMeta& h = data_.items[history[n - back]];
    std::string relation = l.same_brand ? "same brand"
                           : (l.shared_categories > 0 &&
                              l.shared_categories == static_cast<int32_t>(t.categories.size()) &&
                              t.categories.size() == h.categories.size())
                               ? "same need"
                           : l.shared_categories > 0 ? "complementary"
                                                     : "other line";
    return out + rationale_link(l.strength, back, relation);
  }
  return out + rationale_link("", 0, "");
}

std::string RationaleBuilder::describe(ItemIndex item) const {
  const ItemMeta& m = data_.items[item];
  std::string out = "item: " + item_name(m, data_.item_ids[item], 60) + ".";
  if (!m.categories.empty()) out += " category: " + join_path(m.categories) + ".";
  if (!m.brand.empty()) out += " brand: " + m.brand + ".";
  return out;
}

void ReasonerTrainOptions::validate() const {
  model.validate();
  train.validate();
  if (align_epochs < 0) throw_input_error("reasoner align_epochs: must be >= 0, got {}", align_epochs);
  if (commonsense_epochs < 0)
    throw_input_error("reasoner commonsense_epochs: must be >= 0, got {}", commonsense_epochs);
  if (prefixes_per_user < 1)
    throw_input_error("reasoner prefixes_per_user: must be >= 1, got {}", prefixes_per_user);
  if (explanations_per_pair < 1)
    throw_input_error("reasoner explanations_per_pair: must be >= 1, got {}", explanations_per_pair);
  if (valid_users < 0) throw_input_error("reasoner valid_users: must be >= 0, got {}", valid_users);
  if (valid_beam < 10) throw_input_error("reasoner valid_beam: must be >= 10, got {}", valid_beam);
}

nlohmann::json ReasonerTrainOptions::to_json() const {
  nlohmann::json j = model.to_json();
  train.add_to(j);
  j["align_epochs"] = align_epochs;
  j["commonsense_epochs"] = commonsense_epochs;
  j["commonsense"] = commonsense;
  j["rationale"] = rationale;
  j["prefixes_per_user"] = prefixes_per_user;
  j["self_condition"] = self_condition;
  j["explanations_per_pair"] = explanations_per_pair;
  j["valid_users"] = valid_users;
  j["valid_beam"] = valid_beam;
  return j;
}

namespace {

/// Each item's name as text pieces [num_items, pieces], -1 = padding.
torch::Tensor item_text_table(const Dataset& data, const SpTokenizer& tok, int64_t pieces) {
  auto table = torch::full({static_cast<int64_t>(data.num_items()), pieces}, -1, torch::kLong);
  auto a = table.accessor<int64_t, 2>();
  for (size_t i = 0; i < data.items.size(); ++i) {
    auto ids = tok.encode(item_name(data.items[i], data.item_ids[i], 60));
    for (int64_t j = 0; j < pieces && j < static_cast<int64_t>(ids.size()); ++j) a[i][j] = ids[j];
  }
  return table;
}

ReasonerVocab make_vocab(const SpTokenizer& tok) {
  ReasonerVocab v;
  v.size = tok.vocab_size();
  v.think = tok.think_id();
  v.think_end = tok.think_end_id();
  v.pad = tok.pad_id();
  std::vector<bool> special(v.size, false);
  for (const auto& s : SpTokenizer::special_tokens()) {
    auto ids = tok.encode(s);
    if (ids.size() == 1) special[ids[0]] = true;
  }
  special[tok.pad_id()] = special[tok.unk_id()] = true;
  for (int64_t id = 0; id < v.size; ++id)
    if (!special[id] && !tok.is_sid_token(static_cast<int>(id))) v.text_ids.push_back(id);
  return v;
}

std::vector<int> cut(std::vector<int> ids, int64_t n) {
  if (static_cast<int64_t>(ids.size()) > n) ids.resize(n);
  return ids;
}

/// Explanations of the corpus: (a, b, text) per line of corpus.jsonl, grouped by pair in file order.
std::vector<std::vector<ReasonerExample>> read_corpus(const fs::path& path, const SpTokenizer& tok,
                                                      int64_t max_pieces, int64_t num_items) {
  std::ifstream in(path);
  if (!in) throw_input_error("{}: cannot open (run `twistar knowledge` first)", path.string());
  std::vector<std::vector<ReasonerExample>> pairs;
  std::pair<int64_t, int64_t> last{-1, -1};
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      throw_input_error("{}:{}: not JSON ({})", path.string(), n, e.what());
    }
    for (const char* f : {"a", "b", "text"})
      if (!j.contains(f)) throw_input_error("{}:{}: field '{}' missing", path.string(), n, f);
    int64_t a = j["a"].get<int64_t>(), b = j["b"].get<int64_t>();
    if (a < 0 || b < 0 || a >= num_items || b >= num_items)
      throw_input_error("{}:{}: field 'a'/'b': item index outside 0..{}", path.string(), n, num_items - 1);
    if (std::make_pair(a, b) != last) pairs.emplace_back();
    last = {a, b};
    ReasonerExample ex;
    ex.history = {static_cast<ItemIndex>(a)};
    ex.target = static_cast<ItemIndex>(b);
    ex.rationale = cut(tok.encode(j["text"].get<std::string>()), max_pieces);
    pairs.back().push_back(std::move(ex));
  }
  return pairs;
}

/// Every training target of every user with its history (cut to max_len) and rationale, by user.
std::vector<std::vector<ReasonerExample>> reasoning_examples(const Dataset& data, const RationaleBuilder& builder,
                                                             const SpTokenizer& tok, int64_t max_len,
                                                             int64_t max_pieces, bool rationale) {
  std::vector<std::vector<ReasonerExample>> users;
  for (const Sequence& train : training_parts(data)) {
    if (train.size() < 2) continue;
    users.emplace_back();
    for (size_t t = 1; t < train.size(); ++t) {
      ReasonerExample ex;
      size_t from = t > static_cast<size_t>(max_len) ? t - max_len : 0;
      ex.history.assign(train.begin() + from, train.begin() + t);
      ex.target = train[t];
      if (rationale) ex.rationale = cut(tok.encode(builder.build(ex.history, ex.target)), max_pieces);
      users.back().push_back(std::move(ex));
    }
  }
  return users;
}

/// One epoch. With `self_condition` (the reasoning stage with rationales) the SID is trained after
/// the rationale the model itself writes (greedy, no gradient), as at inference, while the
/// rationale is trained on the gold one: otherwise the SID learns to trust a gold rationale that
/// inference never has.
double train_epoch(const std::string& name, Reasoner& model, torch::optim::Optimizer& opt,
                   std::vector<ReasonerExample> examples, bool reasoning, bool self_condition,
                   int64_t batch_size, std::mt19937_64& rng, bool progress) {
  std::shuffle(examples.begin(), examples.end(), rng);
  const size_t batches = (examples.size() + batch_size - 1) / batch_size;
  Progress bar(name, batches, progress);
  double total = 0, sid_total = 0, text_total = 0;
  const double weight = model->options().rationale_weight;
  for (size_t b = 0; b < batches; ++b) {
    std::vector<ReasonerExample> batch(examples.begin() + b * batch_size,
                                       examples.begin() + std::min(examples.size(), (b + 1) * batch_size));
    torch::Tensor sid, text;
    if (self_condition) {
      std::vector<ReasonerExample> own = batch;
      {
        torch::NoGradGuard no_grad;
        model->eval();
        std::vector<Sequence> histories;
        for (const auto& ex : batch) histories.push_back(ex.history);
        auto state = model->start(histories);
        auto written = model->write_rationale(state, 0.0);
        for (size_t i = 0; i < own.size(); ++i) own[i].rationale = std::move(written.tokens[i]);
      }
      model->train();
      text = model->losses(batch, reasoning).second;
      sid = model->losses(own, reasoning).first;
    } else {
      model->train();
      std::tie(sid, text) = model->losses(batch, reasoning);
    }
    auto loss = sid + weight * text;
    opt.zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(model->parameters(), 5.0);
    opt.step();
    total += loss.item<double>();
    sid_total += sid.item<double>();
    text_total += text.item<double>();
    bar.tick();
  }
  const double n = static_cast<double>(std::max<size_t>(1, batches));
  bar.set_note(fmt::format("loss {:.4f} (sid {:.4f}, text {:.4f})", total / n, sid_total / n, text_total / n));
  return total / n;
}

/// A copy of `base` (fine-tuning must not change the run's fast_rec model).
SidGenerator base_in_copy(const SidGenerator& base, const SidMap& sids, const torch::Device& device) {
  SidGenerator copy(sids.sids(), sids.level_sizes(), base->options());
  std::stringstream buffer;
  torch::save(base, buffer);
  torch::load(copy, buffer);
  copy->to(device);
  return copy;
}

}  // namespace

ReasonerTrainResult train_reasoner(const Dataset& data, const SidGenerator& base_in, const SidMap& sids,
                                   const SpTokenizer& tok, const fs::path& knowledge_dir,
                                   const ReasonerTrainOptions& o, const Context& ctx, const fs::path& dir,
                                   const TrainControl& control) {
  o.validate();
  ctx.apply();
  if (sids.num_items() != static_cast<int32_t>(data.num_items()))
    throw_input_error("reasoner: the SID map has {} items but {} has {}", sids.num_items(), data.name,
                      data.num_items());
  if (tok.sid_level_sizes() != sids.level_sizes())
    throw_input_error("reasoner: {} was trained for other SID levels than the SID map's",
                      (knowledge_dir / "tokenizer.model").string());
  auto device = torch_device(ctx);
  ReasonerVocab vocab = make_vocab(tok);
  const auto& mo = o.model;
  auto knowledge = load_item_knowledge(knowledge_dir / "knowledge.tsv");
  RationaleBuilder builder(data, knowledge, mo.context_items);
  const int64_t max_len = base_in->max_len();
  auto by_user = reasoning_examples(data, builder, tok, max_len, mo.max_rationale, o.rationale);
  if (by_user.empty()) throw_input_error("{}: no user has a training part of 2+ items", data.name);
  {
    // The reasoning format's vocabulary: the pieces its training rationales use.
    std::vector<bool> used(vocab.size, false);
    for (const auto& user : by_user)
      for (const auto& ex : user)
        for (int id : ex.rationale) used[id] = true;
    for (int64_t id : vocab.text_ids)
      if (used[id]) vocab.rationale_ids.push_back(id);
  }
  auto item_text = item_text_table(data, tok, mo.item_text_pieces);
  SidGenerator base = base_in_copy(base_in, sids, device);
  Reasoner model(base, vocab, item_text, mo);
  model->to(device);

  auto valid = spaced_valid_examples(data, o.valid_users, static_cast<size_t>(max_len));
  std::vector<Sequence> valid_histories;
  for (const auto& e : valid) valid_histories.push_back(e.history);
  ReasonerTrainResult result;
  {
    torch::NoGradGuard no_grad;
    result.fast_valid_ndcg10 = fast_rec_valid_ndcg10(base, sids.trie(), data, o.valid_users, o.valid_beam);
  }
  spdlog::info("reasoner: fast_rec's validation NDCG@10 on the same {} users: {:.4f}", valid.size(),
               result.fast_valid_ndcg10);
  auto validate = [&] {
    torch::NoGradGuard no_grad;
    model->eval();
    ThinkAndRecOptions search = ThinkAndRecOptions::greedy();
    search.beam = o.valid_beam;
    search.chunk = 256;
    auto found = think_and_rec_search(model, sids.trie(), nullptr, valid_histories, search, 10, true, o.rationale);
    return mean_ndcg10(found.rankings, valid);
  };

  nlohmann::json identity = {{"config", o.to_json()},
                             {"seed", ctx.seed},
                             {"data", data.fingerprint()},
                             {"base", module_fingerprint(*base_in)},
                             {"tokenizer", hash_file(knowledge_dir / "tokenizer.model")},
                             {"knowledge", hash_file(knowledge_dir / "knowledge.tsv")}};
  struct Stage {
    std::string name;
    int epochs;
    std::function<std::vector<ReasonerExample>(std::mt19937_64&)> examples;
  };
  std::vector<std::vector<ReasonerExample>> corpus;
  std::vector<ReasonerExample> align;
  std::vector<Stage> stages;
  if (o.align_epochs > 0) {
    for (int64_t i = 0; i < static_cast<int64_t>(data.num_items()); ++i) {
      ReasonerExample ex;  // no history: the item's text alone must lead to its SID
      ex.target = static_cast<ItemIndex>(i);
      ex.rationale = cut(tok.encode(builder.describe(static_cast<ItemIndex>(i))), mo.max_rationale);
      align.push_back(std::move(ex));
    }
    stages.push_back({"align", o.align_epochs, [&](std::mt19937_64&) { return align; }});
  }
  if (o.commonsense && o.commonsense_epochs > 0) {
    corpus = read_corpus(knowledge_dir / "corpus.jsonl", tok, mo.max_rationale, data.num_items());
    if (corpus.empty()) throw_input_error("{}: no explanations", (knowledge_dir / "corpus.jsonl").string());
    stages.push_back({"commonsense", o.commonsense_epochs, [&, round = 0](std::mt19937_64&) mutable {
                        std::vector<ReasonerExample> out;
                        for (const auto& pair : corpus)
                          for (int64_t j = 0; j < o.explanations_per_pair; ++j)
                            out.push_back(pair[(round * o.explanations_per_pair + j) % pair.size()]);
                        ++round;
                        return out;
                      }});
  }
  stages.push_back({"reasoning", o.train.epochs, [&](std::mt19937_64& rng) {
                      std::vector<ReasonerExample> out;
                      for (const auto& user : by_user) {
                        out.push_back(user.back());
                        std::vector<size_t> rest(user.size() - 1);
                        std::iota(rest.begin(), rest.end(), 0);
                        std::shuffle(rest.begin(), rest.end(), rng);
                        for (int64_t j = 0; j + 1 < o.prefixes_per_user && j < static_cast<int64_t>(rest.size()); ++j)
                          out.push_back(user[rest[j]]);
                      }
                      return out;
                    }});

  std::string previous = identity["base"];
  // The final model is the stage with the best validation NDCG@10 (a later stage that lowers it is
  // reported, not kept); "fast_rec" when no stage beat the warm start.
  std::string kept = "fast_rec";
  double kept_ndcg = result.fast_valid_ndcg10;
  fs::path kept_path;
  for (const Stage& stage : stages) {
    const fs::path sdir = dir / stage.name;
    TrainOptions topt = o.train;
    topt.epochs = stage.epochs;
    if (stage.name != "reasoning") topt.patience = topt.lr_patience = stage.epochs + 1;
    nlohmann::json sid = identity;
    sid["stage"] = stage.name;
    sid["previous"] = previous;
    auto opt = make_adamw(*model, topt);
    LoopCallbacks cb;
    cb.train_epoch = [&](int epoch) {
      std::mt19937_64 rng(ctx.seed * 1000003ULL + epoch * 7919ULL + std::hash<std::string>{}(stage.name));
      torch::manual_seed(ctx.seed + 7919ULL * epoch);
      const bool reasoning = stage.name == "reasoning";
      return train_epoch(fmt::format("reasoner {} epoch {}", stage.name, epoch), model, opt, stage.examples(rng),
                         reasoning, reasoning && o.rationale && o.self_condition, topt.batch_size, rng,
                         control.progress);
    };
    cb.validate = validate;
    auto loop = run_training_loop("reasoner " + stage.name, sdir, model.ptr(), opt, sid, topt, cb, control);
    result.seconds[stage.name] = loop.seconds;
    if (!loop.finished) return result;
    result.valid_ndcg10[stage.name] = loop.best;
    if (stage.name == "reasoning") {
      result.best_epoch = loop.best_epoch;
      result.curve = loop.curve;
    }
    nlohmann::json config = o.to_json();
    config["seed"] = ctx.seed;
    finish_training_stage(sdir, "reasoner_" + stage.name, config, "valid_ndcg@10", loop);
    previous = hash_file(sdir / "model.pt");
    if (loop.best > kept_ndcg) {
      kept = stage.name;
      kept_ndcg = loop.best;
      kept_path = sdir / "model.pt";
    }
    spdlog::info("reasoner: after {}: validation NDCG@10 {:.4f} (fast_rec {:.4f})", stage.name, loop.best,
                 result.fast_valid_ndcg10);
  }
  if (!kept_path.empty()) {
    torch::load(model, kept_path.string());
  } else {
    // No stage beat fast_rec: the untrained LM on fast_rec's own weights is exactly fast_rec.
    Reasoner fresh(base_in_copy(base_in, sids, device), vocab, item_text, mo);
    model = fresh;
  }
  {
    std::stringstream buffer;
    torch::save(model, buffer);
    write_file_atomic(dir / "model.pt", buffer.str());
  }
  spdlog::info("reasoner: keeping the model after {} (validation NDCG@10 {:.4f})", kept, kept_ndcg);
  result.kept_stage = kept;
  Manifest m;
  m.stage = "reasoner";
  m.config = o.to_json();
  m.config["seed"] = ctx.seed;
  m.config["vocab"] = vocab.to_json();
  m.config["base"] = base_in->options().to_json();
  m.inputs = {{"data", data.fingerprint()},
              {"tokenizer", identity["tokenizer"]},
              {"knowledge", identity["knowledge"]},
              {"base", identity["base"]}};
  m.metrics["fast_valid_ndcg@10"] = result.fast_valid_ndcg10;
  for (const auto& [stage, v] : result.valid_ndcg10) m.metrics["valid_ndcg@10_after_" + stage] = v;
  m.metrics["valid_ndcg@10"] = kept_ndcg;
  m.metrics["kept_stage"] = kept;
  m.metrics["best_epoch"] = result.best_epoch;
  double total = 0;
  for (const auto& [stage, s] : result.seconds) {
    m.metrics["seconds_" + stage] = s;
    total += s;
  }
  m.wall_seconds = total;
  m.save(dir);
  result.finished = true;
  return result;
}

}  // namespace twistar
