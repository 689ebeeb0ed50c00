#include "agent/fast_rec.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "data/ranks.h"
#include "data/split.h"
#include "models/sid_generator_trainer.h"

namespace twistar {
namespace fs = std::filesystem;

void FastRecOptions::validate() const {
  if (beam < 1) throw_input_error("fast_rec beam: must be >= 1, got {}", beam);
  if (chunk < 1) throw_input_error("fast_rec chunk: must be >= 1, got {}", chunk);
}

FastRec::FastRec(SidGenerator model, std::shared_ptr<const SidMap> sids, FastRecOptions options)
    : model_(std::move(model)), sids_(std::move(sids)), options_(options) {
  options_.validate();
  const auto& codes = sids_->sids();
  auto table = model_->sids().cpu();
  bool same = table.size(0) == codes.rows() && table.size(1) == codes.cols();
  if (same) {
    auto t = table.accessor<int64_t, 2>();
    for (int64_t i = 0; i < codes.rows() && same; ++i)
      for (int64_t l = 0; l < codes.cols() && same; ++l) same = t[i][l] == codes(i, l);
  }
  if (!same)
    throw_input_error(
        "fast_rec: the SID generator was trained on other semantic IDs than the SID map given "
        "(retrain it after rerunning the sid stage)");
  model_->eval();
}

std::vector<Ranking> sid_generator_recommend(SidGenerator& model, const PrefixTrie& trie,
                                             const std::vector<Sequence>& histories,
                                             const BeamSearchOptions& search, bool exclude_history,
                                             int64_t chunk) {
  torch::NoGradGuard no_grad;
  auto device = model->sids().device();
  // Shorter histories together: each chunk pads to its own longest history only.
  std::vector<size_t> order(histories.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return histories[a].size() < histories[b].size(); });
  std::vector<Ranking> out(histories.size());
  for (size_t s = 0; s < order.size(); s += static_cast<size_t>(chunk)) {
    size_t e = std::min(order.size(), s + static_cast<size_t>(chunk));
    std::vector<Sequence> part, exclude;
    for (size_t i = s; i < e; ++i) {
      part.push_back(histories[order[i]]);
      if (exclude_history) exclude.push_back(histories[order[i]]);
    }
    torch::Tensor items, lengths;
    pack_item_histories(part, model->max_len(), items, lengths);
    auto h = model->encode_last(items.to(device), lengths.to(device));
    auto rankings = constrained_beam_search(*model, model->start(h), trie, search, exclude);
    for (size_t i = s; i < e; ++i) out[order[i]] = std::move(rankings[i - s]);
  }
  return out;
}

std::vector<Observation> FastRec::run(std::vector<RequestState>& requests, const ToolArgs& args) const {
  if (args.k < 1) throw_input_error("fast_rec: k must be >= 1, got {}", args.k);
  auto t0 = std::chrono::steady_clock::now();
  BeamSearchOptions search{std::max<int64_t>(options_.beam, args.k), args.k};
  // Requests are searched in two groups by their exclusion setting (usually all alike).
  std::vector<size_t> with, without;
  for (size_t i = 0; i < requests.size(); ++i)
    (requests[i].exclude_history ? with : without).push_back(i);
  std::vector<Observation> out(requests.size());
  for (bool exclude : {true, false}) {
    const auto& idx = exclude ? with : without;
    if (idx.empty()) continue;
    std::vector<Sequence> hist;
    for (size_t i : idx) hist.push_back(requests[i].history);
    auto rankings = sid_generator_recommend(model_, sids_->trie(), hist, search, exclude, options_.chunk);
    for (size_t j = 0; j < idx.size(); ++j) out[idx[j]].items = std::move(rankings[j]);
  }
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  for (size_t i = 0; i < requests.size(); ++i) {
    out[i].tool = name();
    out[i].cost_ms = ms / static_cast<double>(requests.size());
    record(requests[i], out[i]);
    requests[i].retrieved = requests[i].candidates;
  }
  return out;
}

std::vector<std::vector<float>> FastRec::log_probs(const std::vector<Sequence>& histories,
                                                   const std::vector<std::vector<ItemIndex>>& items) const {
  if (histories.size() != items.size())
    throw Error(fmt::format("fast_rec log_probs: {} histories but {} item lists", histories.size(), items.size()));
  torch::NoGradGuard no_grad;
  std::vector<std::vector<float>> out(histories.size());
  std::vector<Sequence> part;
  std::vector<int64_t> rows, flat;
  for (size_t i = 0; i < histories.size(); ++i) {
    if (items[i].empty()) continue;
    for (ItemIndex item : items[i]) {
      rows.push_back(static_cast<int64_t>(part.size()));
      flat.push_back(item);
    }
    part.push_back(histories[i]);
  }
  if (part.empty()) return out;
  const auto device = model_->sids().device();
  torch::Tensor packed, lengths;
  pack_item_histories(part, model_->max_len(), packed, lengths);
  const auto scores = model_->item_log_probs(model_->encode_last(packed.to(device), lengths.to(device)), rows, flat);
  size_t p = 0;
  for (size_t i = 0; i < histories.size(); ++i)
    for (size_t j = 0; j < items[i].size(); ++j) out[i].push_back(scores[p++]);
  return out;
}

std::string FastRec::fingerprint() const { return module_fingerprint(*model_); }

std::vector<Example> spaced_valid_examples(const Dataset& data, int64_t users, size_t max_history) {
  auto examples = make_examples(data, Split::kValid, {max_history});
  if (users <= 0 || static_cast<size_t>(users) >= examples.size()) return examples;
  std::vector<Example> picked;
  double stride = static_cast<double>(examples.size()) / static_cast<double>(users);
  for (int64_t i = 0; i < users; ++i) picked.push_back(examples[static_cast<size_t>(i * stride)]);
  return picked;
}

double mean_ndcg10(const std::vector<Ranking>& rankings, const std::vector<Example>& examples) {
  if (examples.empty()) return 0.0;
  double sum = 0;
  for (size_t i = 0; i < examples.size(); ++i) sum += ndcg_at(rank_of(rankings[i], examples[i].target), 10);
  return sum / static_cast<double>(examples.size());
}

double fast_rec_valid_ndcg10(SidGenerator& model, const PrefixTrie& trie, const Dataset& data,
                             int64_t users, int64_t beam) {
  auto picked = spaced_valid_examples(data, users, static_cast<size_t>(model->max_len()));
  if (picked.empty()) return 0.0;
  std::vector<Sequence> histories;
  for (const auto& e : picked) histories.push_back(e.history);
  auto rankings = sid_generator_recommend(model, trie, histories, {std::max<int64_t>(beam, 10), 10},
                                          true, 256);
  return mean_ndcg10(rankings, picked);
}

std::shared_ptr<FastRec> load_fast_rec(const fs::path& run_dir, const Context& ctx, FastRecOptions options) {
  fs::path map_path = run_dir / "sid" / "sid_map.json";
  if (!fs::exists(map_path))
    throw_input_error("{}: missing; run `twistar sid --run {}` first", map_path.string(), run_dir.string());
  auto sids = std::make_shared<const SidMap>(SidMap::load(map_path));
  auto model = load_sid_generator(run_dir / "sidgen", sids->sids(), sids->level_sizes(), ctx);
  return std::make_shared<FastRec>(model, sids, options);
}

}  // namespace twistar
