#include "agent/rank_candidates.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <unordered_set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/manifest.h"
#include "core/progress.h"
#include "data/split.h"
#include "models/sasrec_trainer.h"
#include "nn/device.h"
#include "nn/torch_io.h"

namespace twistar {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// A request's pool: candidates with the retrievers behind each and the backbone's logit of each.
struct Pool {
  Ranking items;
  std::vector<uint8_t> from;
  std::vector<float> logits;
  std::unordered_map<ItemIndex, size_t> slot;

  void add(ItemIndex item, float beam, uint8_t source) {
    auto [it, fresh] = slot.emplace(item, items.size());
    if (fresh) {
      items.push_back({item, beam});
      from.push_back(source);
    } else {
      from[it->second] |= source;
    }
  }
};

// Swing's top `k` items for the last `window` history items (summed similarity; history excluded).
void add_swing_items(const RankSources& sources, const Sequence& history, int64_t window, int64_t k,
                     float floor, Pool& pool) {
  std::unordered_map<ItemIndex, float> score;
  const size_t start = history.size() > static_cast<size_t>(window) ? history.size() - static_cast<size_t>(window) : 0;
  for (size_t h = start; h < history.size(); ++h)
    for (const auto& nb : sources.swing.neighbors(history[h])) score[nb.item] += nb.score;
  for (ItemIndex h : history) score.erase(h);
  std::vector<std::pair<float, ItemIndex>> best;
  for (const auto& [item, v] : score) best.push_back({v, item});
  const size_t keep = std::min(best.size(), static_cast<size_t>(k));
  std::partial_sort(best.begin(), best.begin() + static_cast<std::ptrdiff_t>(keep), best.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  for (size_t i = 0; i < keep; ++i) pool.add(best[i].second, floor, kFromSwing);
}

// The backbone's logit of each pool item, scoring those items alone (not the catalogue).
void add_pool_logits(Sasrec& model, const torch::Tensor& tokens, const torch::Tensor& lengths,
                     std::vector<Pool>::iterator first, std::vector<Pool>::iterator last) {
  const auto device = model->item_weights().device();
  size_t width = 1;
  for (auto p = first; p != last; ++p) width = std::max(width, p->items.size());
  auto idx = torch::zeros({last - first, static_cast<int64_t>(width)}, torch::kLong);
  auto ia = idx.accessor<int64_t, 2>();
  for (auto p = first; p != last; ++p)
    for (size_t c = 0; c < p->items.size(); ++c) ia[p - first][static_cast<int64_t>(c)] = p->items[c].item;
  auto got = model->score_items(tokens.to(device), lengths.to(device), idx.to(device)).to(torch::kCPU, torch::kFloat);
  auto ga = got.accessor<float, 2>();
  for (auto p = first; p != last; ++p) {
    p->logits.resize(p->items.size());
    for (size_t c = 0; c < p->items.size(); ++c) p->logits[c] = ga[p - first][static_cast<int64_t>(c)];
  }
}

// The backbone's top `k` items (history excluded) join each pool, with the pool's lowest beam score
// until fast_rec scores them; then every pool item gets its logit. Scored in chunks, so memory
// stays at chunk x catalogue; with k = 0 only the pool's items are scored.
void add_backbone_items(Sasrec& model, const std::vector<Sequence>& histories, int64_t k,
                        std::vector<Pool>& pools) {
  torch::NoGradGuard no_grad;
  auto device = model->item_weights().device();
  const size_t n = histories.size(), chunk = 512;
  for (size_t s = 0; s < n; s += chunk) {
    const size_t e = std::min(n, s + chunk);
    std::vector<Sequence> part(histories.begin() + static_cast<std::ptrdiff_t>(s),
                               histories.begin() + static_cast<std::ptrdiff_t>(e));
    torch::Tensor tokens, lengths;
    pack_histories(part, model->max_len(), tokens, lengths);
    const auto first = pools.begin() + static_cast<std::ptrdiff_t>(s), last = pools.begin() + static_cast<std::ptrdiff_t>(e);
    if (k == 0) {
      add_pool_logits(model, tokens, lengths, first, last);
      continue;
    }
    auto scores = model->score_last(tokens.to(device), lengths.to(device)).to(torch::kCPU, torch::kFloat).contiguous();
    auto sa = scores.accessor<float, 2>();
    auto masked = scores.clone();
    auto ma = masked.accessor<float, 2>();
    for (size_t r = s; r < e; ++r)
      for (ItemIndex h : histories[r]) ma[static_cast<int64_t>(r - s)][h] = -std::numeric_limits<float>::infinity();
    auto top = std::get<1>(masked.topk(std::min<int64_t>(k, masked.size(1)), 1)).contiguous();
    auto ta = top.accessor<int64_t, 2>();
    for (size_t r = s; r < e; ++r) {
      Pool& pool = pools[r];
      const float low = pool.items.empty() ? 0.0f : pool.items.back().score;
      for (int64_t j = 0; j < top.size(1); ++j) {
        const auto item = static_cast<ItemIndex>(ta[static_cast<int64_t>(r - s)][j]);
        if (std::isfinite(ma[static_cast<int64_t>(r - s)][item])) pool.add(item, low, kFromBackbone);
      }
    }
    for (size_t r = s; r < e; ++r) {
      Pool& pool = pools[r];
      pool.logits.resize(pool.items.size());
      for (size_t c = 0; c < pool.items.size(); ++c)
        pool.logits[c] = sa[static_cast<int64_t>(r - s)][pool.items[c].item];
    }
  }
}

// Each history's pool: its first m candidates by beam score, then the Swing and backbone items
// fast_rec did not return (RankInputs), at the list's lowest beam score. Scoring those with the SID
// generator (a teacher-forced decode per item) cost 1.6 of the call's 2.2 ms and bought nothing:
// Scientific validation NDCG@10 0.1053 with it, 0.1052 without (docs/RESULTS.md).
std::vector<Pool> build_pools(const RankInputs& in, const std::vector<Sequence>& histories,
                              const std::vector<Ranking>& candidates, int64_t m) {
  std::vector<Pool> pools(histories.size());
  for (size_t r = 0; r < histories.size(); ++r) {
    const auto& cand = candidates[r];
    const size_t slots = std::min(cand.size(), static_cast<size_t>(m));
    for (size_t c = 0; c < slots; ++c) pools[r].add(cand[c].item, cand[c].score, kFromFastRec);
    if (in.pool_swing > 0) {
      const float low = slots ? cand[slots - 1].score : 0.0f;
      add_swing_items(*in.sources, histories[r], in.history, in.pool_swing, low, pools[r]);
    }
  }
  if (in.sasrec) {
    Sasrec model = in.sasrec;  // shares the module
    add_backbone_items(model, histories, in.pool_backbone, pools);
  }
  for (auto& pool : pools) {
    // Best first by fast_rec's score; the other retrievers' items, all at the list's lowest beam
    // score, keep their own retriever's order (Swing's, then the backbone's).
    std::vector<size_t> order(pool.items.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return pool.items[a].score > pool.items[b].score; });
    Pool sorted;
    for (size_t c : order) {
      sorted.items.push_back(pool.items[c]);
      sorted.from.push_back(pool.from[c]);
      if (!pool.logits.empty()) sorted.logits.push_back(pool.logits[c]);
    }
    pool = std::move(sorted);
  }
  return pools;
}

// fast_rec(m) for many histories (history items excluded), in tool-sized batches.
std::vector<Ranking> fast_candidates(const FastRec& fast, const std::vector<Sequence>& histories, int64_t m,
                                     const std::string& label, bool progress) {
  std::vector<Ranking> out(histories.size());
  const size_t batch = 1024;
  Progress bar(label, histories.size(), progress);
  for (size_t s = 0; s < histories.size(); s += batch) {
    const size_t e = std::min(histories.size(), s + batch);
    std::vector<RequestState> requests(e - s);
    for (size_t i = s; i < e; ++i) requests[i - s].history = histories[i];
    auto obs = fast.run(requests, {static_cast<int>(m), 0});
    for (size_t i = s; i < e; ++i) out[i] = std::move(obs[i - s].items);
    bar.tick(e - s);
  }
  bar.finish();
  return out;
}

// The tensors of candidate lists under their names in the lists cache.
std::vector<std::pair<std::string, torch::Tensor*>> list_fields(RankLists& lists, const std::string& prefix) {
  return {{prefix + "history", &lists.history},
          {prefix + "items", &lists.items},
          {prefix + "features", &lists.features},
          {prefix + "label", &lists.label}};
}

std::string fast_rec_order_hint() {
  return "rank_candidates: needs the candidates of a prior fast_rec call in this episode (call "
         "fast_rec first)";
}

}  // namespace

RankLists make_rank_lists(const RankInputs& inputs, const std::vector<Sequence>& histories,
                          const std::vector<Ranking>& candidates, const std::vector<ItemIndex>& targets,
                          int64_t m) {
  const int64_t n = static_cast<int64_t>(histories.size());
  const int64_t h = inputs.history;
  const int64_t width = inputs.pool_width(m);
  RankLists lists;
  lists.history = torch::zeros({n, h}, torch::kLong);
  lists.items = torch::full({n, width}, -1, torch::kLong);
  lists.features = torch::zeros({n, width, kNumRankFeatures});
  lists.label = torch::full({n}, -1, torch::kLong);
  if (n == 0) return lists;
  const auto pools = build_pools(inputs, histories, candidates, m);
  auto ha = lists.history.accessor<int64_t, 2>();
  auto ia = lists.items.accessor<int64_t, 2>();
  auto la = lists.label.accessor<int64_t, 1>();
  float* fp = lists.features.data_ptr<float>();
  for (int64_t r = 0; r < n; ++r) {
    const auto& hist = histories[static_cast<size_t>(r)];
    const auto& pool = pools[static_cast<size_t>(r)];
    const int64_t keep = std::min<int64_t>(h, static_cast<int64_t>(hist.size()));
    for (int64_t j = 0; j < keep; ++j) ha[r][h - keep + j] = hist[hist.size() - static_cast<size_t>(keep - j)] + 1;
    const size_t slots = std::min(pool.items.size(), static_cast<size_t>(width));
    for (size_t c = 0; c < slots; ++c) {
      ia[r][static_cast<int64_t>(c)] = pool.items[c].item;
      if (!targets.empty() && pool.items[c].item == targets[static_cast<size_t>(r)]) la[r] = static_cast<int64_t>(c);
    }
    rank_features(*inputs.sources, hist, static_cast<int>(h), pool.items, slots,
                  pool.logits.empty() ? nullptr : pool.logits.data(), fp + r * width * kNumRankFeatures,
                  pool.from.data());
  }
  return lists;
}

RankCandidates::RankCandidates(RankInputs inputs, Ranker din, int64_t default_m)
    : inputs_(std::move(inputs)), din_(std::move(din)), default_m_(default_m) {
  din_->eval();
}

RankCandidates::RankCandidates(RankInputs inputs, std::shared_ptr<const GbdtRanker> gbdt, int64_t default_m)
    : inputs_(std::move(inputs)), gbdt_(std::move(gbdt)), default_m_(default_m) {}

torch::Tensor RankCandidates::score(const RankLists& lists) const {
  if (gbdt_) return gbdt_->score(lists.items, lists.features);
  torch::NoGradGuard no_grad;
  return din_->forward(lists.history, lists.items, lists.features);
}

std::vector<Ranking> RankCandidates::rank(const std::vector<Sequence>& histories,
                                          const std::vector<Ranking>& candidates, int64_t m, int64_t n) const {
  std::vector<Ranking> out(histories.size());
  if (histories.empty()) return out;
  auto lists = make_rank_lists(inputs_, histories, candidates, {}, m);
  auto scores = score(lists).to(torch::kCPU, torch::kFloat).contiguous();
  auto sa = scores.accessor<float, 2>();
  auto ia = lists.items.accessor<int64_t, 2>();
  for (size_t j = 0; j < histories.size(); ++j) {
    const int64_t row = static_cast<int64_t>(j);
    std::vector<int64_t> slots;
    for (int64_t c = 0; c < lists.items.size(1) && ia[row][c] >= 0; ++c) slots.push_back(c);
    std::stable_sort(slots.begin(), slots.end(), [&](int64_t a, int64_t b) { return sa[row][a] > sa[row][b]; });
    if (slots.size() > static_cast<size_t>(n)) slots.resize(static_cast<size_t>(n));
    for (int64_t s : slots) out[j].push_back({static_cast<ItemIndex>(ia[row][s]), sa[row][s]});
  }
  return out;
}

std::vector<Ranking> rank_union(const FastRec& fast, const RankCandidates& ranker,
                                const std::vector<Sequence>& histories, const std::vector<Ranking>& retrieved,
                                const std::vector<Ranking>& extra, int64_t k) {
  if (retrieved.size() != histories.size() || extra.size() != histories.size())
    throw Error(fmt::format("rank_union: {} histories, {} pools and {} extra lists", histories.size(),
                            retrieved.size(), extra.size()));
  // The extra items fast_rec did not return, to be scored by its SID generator.
  std::vector<std::vector<ItemIndex>> missing(histories.size());
  for (size_t i = 0; i < histories.size(); ++i) {
    std::unordered_set<ItemIndex> seen;
    for (const auto& s : retrieved[i]) seen.insert(s.item);
    for (const auto& s : extra[i])
      if (seen.insert(s.item).second) missing[i].push_back(s.item);
  }
  const auto scores = fast.log_probs(histories, missing);
  std::vector<Ranking> pools(histories.size());
  int64_t m = 0;
  for (size_t i = 0; i < histories.size(); ++i) {
    pools[i] = retrieved[i];
    for (size_t j = 0; j < missing[i].size(); ++j) pools[i].push_back({missing[i][j], scores[i][j]});
    // Best first by fast_rec's score, as fast_rec would have returned them (ties to the lower item).
    std::stable_sort(pools[i].begin(), pools[i].end(), [](const ScoredItem& a, const ScoredItem& b) {
      return a.score > b.score || (a.score == b.score && a.item < b.item);
    });
    m = std::max(m, static_cast<int64_t>(pools[i].size()));
  }
  return ranker.rank(histories, pools, std::max<int64_t>(m, 1), k);
}

std::vector<Observation> RankCandidates::run(std::vector<RequestState>& requests, const ToolArgs& args) const {
  auto t0 = Clock::now();
  std::vector<Observation> out(requests.size());
  std::string invalid;
  if (args.k < 1) invalid = fmt::format("rank_candidates: n must be >= 1, got {}", args.k);
  if (args.m < 0) invalid = fmt::format("rank_candidates: m must be >= 1, got {}", args.m);
  const int64_t m = args.m > 0 ? args.m : default_m_;
  std::vector<size_t> ok;
  for (size_t i = 0; i < requests.size(); ++i) {
    out[i].tool = name();
    const auto& calls = requests[i].calls;
    if (!invalid.empty())
      out[i].error = invalid;
    else if (std::find(calls.begin(), calls.end(), "fast_rec") == calls.end() || requests[i].candidates.empty())
      out[i].error = fast_rec_order_hint();
    else
      ok.push_back(i);
  }
  if (!ok.empty()) {
    std::vector<Sequence> histories;
    std::vector<Ranking> candidates;
    for (size_t i : ok) {
      histories.push_back(requests[i].history);
      candidates.push_back(requests[i].candidates);
    }
    auto ranked = rank(histories, candidates, m, args.k);
    for (size_t j = 0; j < ok.size(); ++j) out[ok[j]].items = std::move(ranked[j]);
  }
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  for (size_t i = 0; i < requests.size(); ++i) {
    out[i].cost_ms = ms / static_cast<double>(requests.size());
    record(requests[i], out[i]);
  }
  return out;
}

RankerFit fit_ranker(const RankLists& train, const RankLists& valid, int64_t num_items,
                     const RankerOptions& o, const Context& ctx, const fs::path& dir,
                     const nlohmann::json& config, const torch::Tensor& item_init,
                     const TrainControl& control) {
  RankerFit fit;
  auto t0 = Clock::now();
  if (o.kind == "gbdt") {
    auto model = GbdtRanker::train(train, valid, o, ctx.resolved_threads(), &fit.curve);
    model.save(dir / "gbdt.json");
    fit.best = fit.curve.empty() ? 0.0 : *std::max_element(fit.curve.begin(), fit.curve.end());
    fit.best_epoch = model.rounds();
    fit.seconds = seconds_since(t0);
    fit.finished = true;
    Manifest man;
    man.stage = "ranker";
    man.config = config;
    man.metrics = {{"valid_ndcg@10", fit.best}, {"best_round", model.rounds()}, {"curve", fit.curve}};
    man.wall_seconds = fit.seconds;
    man.save(dir);
    return fit;
  }
  Ranker model(num_items, kNumRankFeatures, o);
  auto valid_slots = train.items.ge(0).unsqueeze(-1).to(torch::kFloat);
  auto count = valid_slots.sum();
  auto mean = (train.features * valid_slots).sum(std::vector<int64_t>{0, 1}) / count;
  auto var = ((train.features - mean).pow(2) * valid_slots).sum(std::vector<int64_t>{0, 1}) / count;
  model->set_feature_scaling(mean, var.sqrt());
  if (item_init.defined() && item_init.size(0) == num_items && item_init.size(1) == o.dim)
    model->init_items(item_init);
  auto opt = make_adamw(*model, o.train);
  nlohmann::json identity = {{"config", config}, {"seed", ctx.seed}};
  LoopCallbacks cb;
  cb.train_epoch = [&](int epoch) {
    model->train();
    torch::manual_seed(ctx.seed + 7919ULL * static_cast<uint64_t>(epoch));
    auto perm = torch::randperm(train.size(), torch::kLong);
    const int64_t b = o.train.batch_size;
    Progress bar(fmt::format("ranker epoch {}", epoch), static_cast<size_t>((train.size() + b - 1) / b),
                 control.progress);
    double total = 0;
    int64_t batches = 0;
    for (int64_t s = 0; s < train.size(); s += b) {
      auto batch = train.select(perm.slice(0, s, std::min(train.size(), s + b)));
      auto loss = torch::nn::functional::cross_entropy(
          model->forward(batch.history, batch.items, batch.features), batch.label);
      opt.zero_grad();
      loss.backward();
      opt.step();
      total += loss.item<double>();
      ++batches;
      bar.tick();
    }
    bar.finish();
    return total / static_cast<double>(std::max<int64_t>(batches, 1));
  };
  cb.validate = [&] {
    torch::NoGradGuard no_grad;
    model->eval();
    std::vector<torch::Tensor> scores;
    for (int64_t s = 0; s < valid.size(); s += 1024) {
      auto part = valid.select(torch::arange(s, std::min(valid.size(), s + 1024), torch::kLong));
      scores.push_back(model->forward(part.history, part.items, part.features));
    }
    return rank_lists_ndcg10(torch::cat(scores), valid.label);
  };
  auto loop = run_training_loop("ranker", dir, model.ptr(), opt, identity, o.train, cb, control);
  fit.best = loop.best;
  fit.best_epoch = loop.best_epoch;
  fit.curve = loop.curve;
  fit.finished = loop.finished;
  fit.seconds = loop.seconds;
  if (loop.finished) finish_training_stage(dir, "ranker", config, "valid_ndcg@10", loop);
  return fit;
}

RankerTrainResult train_ranker(const Dataset& data, const FastRec& fast, Sasrec sasrec,
                               const RankerOptions& o, const Context& ctx, const fs::path& dir,
                               const TrainControl& control, const HeldoutGenerators* heldout) {
  o.validate();
  ctx.apply();
  const bool held = o.training_lists == "heldout";
  if (held && (!heldout || !heldout->fast))
    throw Error("train_ranker: training_lists = heldout needs the held-out generators (run/heldout)");
  // A ranker that does not read the backbone gets neither its features nor its items.
  const bool reads_sasrec = o.use_sasrec && sasrec;
  if (!reads_sasrec) sasrec = Sasrec{nullptr};
  Sasrec train_sasrec = held && reads_sasrec ? heldout->sasrec : sasrec;
  if (reads_sasrec && !train_sasrec)
    throw Error("train_ranker: the run has a backbone and run/heldout has none");
  const FastRec& train_fast = held ? *heldout->fast : fast;
  const int lists_per_user = held ? 1 : o.lists_per_user;
  RankerTrainResult result;
  const int64_t m = o.candidates;
  SwingOptions swing;
  swing.threads = ctx.resolved_threads();
  fs::create_directories(dir);
  // The candidate lists depend on the data, fast_rec, SASRec and the list options only: they are
  // cached beside the model and rebuilt when any of those changes.
  nlohmann::json lists_identity = {{"data", data.fingerprint()},
                                   {"candidates", m},
                                   {"history", o.history},
                                   {"training_lists", o.training_lists},
                                   {"lists_per_user", lists_per_user},
                                   {"add_missed_positive", o.add_missed_positive},
                                   {"sasrec", static_cast<bool>(sasrec)},
                                   {"fast_beam", fast.options().beam},
                                   {"fast_model", fast.fingerprint()},
                                   {"pool_backbone", o.pool_backbone},
                                   {"pool_swing", o.pool_swing},
                                   {"sasrec_model", sasrec ? module_fingerprint(*sasrec) : ""}};
  if (held) {
    lists_identity["heldout_fast_model"] = train_fast.fingerprint();
    lists_identity["heldout_sasrec_model"] = train_sasrec ? module_fingerprint(*train_sasrec) : "";
  }
  const fs::path lists_path = dir / "lists.pt", lists_meta = dir / "lists.json";
  // The backbone behind a list's logits and top items (the run's, or the held-out one).
  auto pool_inputs = [&](std::shared_ptr<const RankSources> sources, Sasrec backbone) {
    RankInputs in;
    in.sources = std::move(sources);
    in.sasrec = backbone;
    in.history = o.history;
    in.pool_backbone = o.pool_backbone;
    in.pool_swing = o.pool_swing;
    return in;
  };
  RankLists train, valid;
  auto t0 = Clock::now();
  auto valid_sources = std::make_shared<RankSources>(build_rank_sources(data, training_parts(data), swing));
  nlohmann::json cached_meta;
  if (fs::exists(lists_path) && fs::exists(lists_meta))
    cached_meta = nlohmann::json::parse(read_file(lists_meta), nullptr, false);
  const bool cached = cached_meta.is_object() && cached_meta.value("identity", nlohmann::json()) == lists_identity;
  if (cached) {
    result.train_hit_rate = cached_meta.value("train_hit_rate", 0.0);
    result.list_seconds = cached_meta.value("seconds", 0.0);
    torch::serialize::InputArchive a;
    a.load_from(lists_path.string());
    for (auto* part : {&train, &valid})
      for (auto& [name, tensor] : list_fields(*part, part == &train ? "train_" : "valid_")) a.read(name, *tensor);
    spdlog::info("ranker: reusing the candidate lists in {}", lists_path.string());
  } else {
    std::vector<RankLists> parts;
    int64_t generated = 0, hits = 0;
    for (int d = 1; d <= lists_per_user; ++d) {
      // Training prefix d of each user: target s[n-2-d], statistics from the items before it.
      std::vector<Sequence> before, histories;
      std::vector<ItemIndex> targets;
      for (const auto& s : data.sequences) {
        const int64_t cut = static_cast<int64_t>(s.size()) - 2 - d;
        before.emplace_back(s.begin(), s.begin() + std::max<int64_t>(cut, 0));
        if (cut < 1) continue;
        histories.push_back(truncate_history(before.back(), 50));
        targets.push_back(s[static_cast<size_t>(cut)]);
      }
      if (histories.empty()) break;
      RankInputs in = pool_inputs(std::make_shared<RankSources>(build_rank_sources(data, before, swing)),
                                  train_sasrec);
      auto cands = fast_candidates(train_fast, histories, m,
                                   fmt::format("ranker lists ({} {})", held ? "held out" : "prefix", d),
                                   control.progress);
      for (size_t r = 0; r < cands.size(); ++r) {
        auto& c = cands[r];
        const size_t slots = std::min(c.size(), static_cast<size_t>(m));
        bool found = false;
        for (size_t j = 0; j < slots; ++j) found = found || c[j].item == targets[r];
        hits += found;
        if (!found && o.add_missed_positive) {
          // The missed target takes the last slot (with that slot's beam score).
          const float score = slots ? c[slots - 1].score : 0.0f;
          if (slots == static_cast<size_t>(m)) c[slots - 1] = {targets[r], score};
          else c.push_back({targets[r], score});
        }
      }
      generated += static_cast<int64_t>(cands.size());
      auto lists = make_rank_lists(in, histories, cands, targets, m);
      parts.push_back(lists.select(torch::nonzero(lists.label.ge(0)).squeeze(1)));
    }
    train = RankLists::cat(parts);
    result.train_hit_rate = generated ? static_cast<double>(hits) / static_cast<double>(generated) : 0.0;
    auto examples = make_examples(data, Split::kValid, {50});
    std::vector<Sequence> histories;
    std::vector<ItemIndex> targets;
    for (const auto& e : examples) {
      histories.push_back(e.history);
      targets.push_back(e.target);
    }
    valid = make_rank_lists(pool_inputs(valid_sources, sasrec), histories,
                            fast_candidates(fast, histories, m, "ranker lists (validation)", control.progress),
                            targets, m);
    torch::serialize::OutputArchive a;
    for (auto* part : {&train, &valid})
      for (auto& [name, tensor] : list_fields(*part, part == &train ? "train_" : "valid_")) a.write(name, *tensor);
    save_archive_atomic(lists_path, a);
    write_file_atomic(lists_meta,
                      nlohmann::json{{"identity", lists_identity},
                                     {"train_hit_rate", result.train_hit_rate},
                                     {"seconds", seconds_since(t0)}}
                          .dump(2));
    result.list_seconds = seconds_since(t0);
  }
  if (train.size() == 0) throw_input_error("{}: fast_rec found no training target; cannot train a ranker", data.name);
  result.train_lists = train.size();
  result.valid_lists = valid.size();
  result.valid_hit_rate = valid.label.ge(0).to(torch::kDouble).mean().item<double>();
  // The pools are in fast_rec's order (its own candidates by beam score, then the others).
  const int64_t width = valid.items.size(1);
  auto fast_order = torch::arange(width, torch::kFloat).neg().expand({valid.size(), width});
  result.fast_valid_ndcg10 = rank_lists_ndcg10(fast_order.masked_fill(valid.items.lt(0), -1e9), valid.label);
  spdlog::info("ranker: {} training lists, {} validation lists (the pools of fast_rec({}) and {} backbone and {} "
               "Swing items held {:.1f}% of the validation targets; fast_rec's order scores NDCG@10 {:.4f})",
               result.train_lists, result.valid_lists, m, sasrec ? o.pool_backbone : 0, o.pool_swing,
               100.0 * result.valid_hit_rate, result.fast_valid_ndcg10);
  valid_sources->save(dir / "sources.pt");

  nlohmann::json config = o.to_json();
  config["seed"] = ctx.seed;
  config["num_items"] = data.num_items();
  config["num_features"] = kNumRankFeatures;
  config["reads_sasrec"] = reads_sasrec;
  // Which of the run's backbones the SASRec features came from.
  if (reads_sasrec && sasrec->is_bsarec()) config["backbone"] = "bsarec";
  config["lists"] = lists_identity;
  auto fit = fit_ranker(train, valid, data.num_items(), o, ctx, dir, config,
                        reads_sasrec ? sasrec->item_weights().detach().cpu() : torch::Tensor(), control);
  result.best_valid_ndcg10 = fit.best;
  result.best_epoch = fit.best_epoch;
  result.curve = fit.curve;
  result.finished = fit.finished;
  result.train_seconds = fit.seconds;
  spdlog::info("ranker ({}): validation NDCG@10 {:.4f} against fast_rec's {:.4f}", o.kind,
               result.best_valid_ndcg10, result.fast_valid_ndcg10);
  return result;
}

std::shared_ptr<RankCandidates> load_rank_candidates(const fs::path& run_dir, const Context& ctx) {
  const fs::path dir = run_dir / "ranker";
  auto man = Manifest::load(dir);
  if (!man || man->stage != "ranker")
    throw_input_error("{}: no finished ranker stage; run `twistar train ranker --run {}` first",
                      dir.string(), run_dir.string());
  auto o = RankerOptions::from_json(man->config);
  const int features = man->config.value("num_features", 13);
  if (features != kNumRankFeatures)
    throw_input_error("{}: the ranker reads {} features and this build writes {}; retrain it with "
                      "`twistar train ranker --force --run {}`",
                      dir.string(), features, kNumRankFeatures, run_dir.string());
  RankInputs in;
  in.sources = std::make_shared<RankSources>(RankSources::load(dir / "sources.pt"));
  in.history = o.history;
  in.pool_backbone = o.pool_backbone;
  in.pool_swing = o.pool_swing;
  const std::string backbone = man->config.value("backbone", "sasrec");
  if (man->config.value("reads_sasrec", false)) in.sasrec = load_sasrec(run_dir / backbone, ctx);
  if (in.sasrec && in.sasrec->num_items() != in.sources->num_items())
    throw_input_error("{}: the ranker and run/{} were trained on different item sets", dir.string(), backbone);
  if (o.kind == "gbdt")
    return std::make_shared<RankCandidates>(
        in, std::make_shared<const GbdtRanker>(GbdtRanker::load(dir / "gbdt.json", 1)), o.candidates);
  Ranker model(man->config.value("num_items", in.sources->num_items()), kNumRankFeatures, o);
  try {
    torch::load(model, (dir / "model.pt").string());
  } catch (const c10::Error& e) {
    throw_input_error("{}: cannot load the ranker ({})", (dir / "model.pt").string(), e.what_without_backtrace());
  }
  model->eval();
  return std::make_shared<RankCandidates>(in, model, o.candidates);
}

}  // namespace twistar
