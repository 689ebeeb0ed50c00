#include "agent/rank_features.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "graph/popularity.h"
#include "nn/torch_io.h"

namespace twistar {
namespace fs = std::filesystem;

const char* const kRankFeatureNames[kNumRankFeatures] = {
    "beam_logp",    "beam_gap",          "log_rank",          "swing_sum",   "swing_max",
    "swing_last",   "log_popularity",    "brand_share",       "leaf_share",  "top_share",
    "sasrec_logit", "sasrec_gap",        "sasrec_log_rank",   "from_fast_rec", "from_backbone",
    "from_swing"};

namespace {

// Dense ids of the distinct non-empty strings, -1 for empty ones.
std::vector<int32_t> dense_ids(const std::vector<std::string>& values) {
  std::unordered_map<std::string, int32_t> ids;
  std::vector<int32_t> out(values.size(), -1);
  for (size_t i = 0; i < values.size(); ++i)
    if (!values[i].empty()) out[i] = ids.emplace(values[i], static_cast<int32_t>(ids.size())).first->second;
  return out;
}

torch::Tensor int_tensor(const std::vector<int32_t>& v) {
  return torch::tensor(std::vector<int32_t>(v), torch::kInt32);
}

std::vector<int32_t> int_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kInt32).contiguous();
  return {c.data_ptr<int32_t>(), c.data_ptr<int32_t>() + c.numel()};
}

}  // namespace

RankSources build_rank_sources(const Dataset& data, const std::vector<Sequence>& sequences,
                               const SwingOptions& swing) {
  RankSources s;
  s.swing = build_swing(sequences, data.num_items(), swing);
  s.log_popularity = item_popularity(sequences, data.num_items());
  for (auto& p : s.log_popularity) p = std::log1p(p);
  std::vector<std::string> brand, leaf, top;
  for (const auto& item : data.items) {
    brand.push_back(item.brand);
    leaf.push_back(item.categories.empty() ? "" : item.categories.back());
    top.push_back(item.categories.empty() ? "" : item.categories.front());
  }
  s.brand = dense_ids(brand);
  s.leaf_category = dense_ids(leaf);
  s.top_category = dense_ids(top);
  return s;
}

void RankSources::save(const fs::path& path) const {
  const int64_t n = num_items();
  size_t k = 0;
  for (int32_t i = 0; i < n; ++i) k = std::max(k, swing.neighbors(i).size());
  auto items = torch::full({n, static_cast<int64_t>(k)}, -1, torch::kInt32);
  auto scores = torch::zeros({n, static_cast<int64_t>(k)});
  auto ia = items.accessor<int32_t, 2>();
  auto sa = scores.accessor<float, 2>();
  for (int32_t i = 0; i < n; ++i) {
    const auto& row = swing.neighbors(i);
    for (size_t j = 0; j < row.size(); ++j) {
      ia[i][j] = row[j].item;
      sa[i][j] = row[j].score;
    }
  }
  torch::serialize::OutputArchive archive;
  archive.write("swing_items", items);
  archive.write("swing_scores", scores);
  archive.write("log_popularity", torch::tensor(log_popularity));
  archive.write("brand", int_tensor(brand));
  archive.write("leaf_category", int_tensor(leaf_category));
  archive.write("top_category", int_tensor(top_category));
  save_archive_atomic(path, archive);
}

RankSources RankSources::load(const fs::path& path) {
  if (!fs::exists(path)) throw_input_error("{}: missing (train the ranker first)", path.string());
  RankSources s;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path.string());
    torch::Tensor items, scores, pop, brand, leaf, top;
    archive.read("swing_items", items);
    archive.read("swing_scores", scores);
    archive.read("log_popularity", pop);
    archive.read("brand", brand);
    archive.read("leaf_category", leaf);
    archive.read("top_category", top);
    const int64_t n = pop.size(0);
    if (items.dim() != 2 || items.size(0) != n || scores.sizes() != items.sizes() ||
        brand.size(0) != n || leaf.size(0) != n || top.size(0) != n)
      throw_input_error("{}: inconsistent ranker statistics (tensor sizes differ)", path.string());
    auto ia = items.accessor<int32_t, 2>();
    auto sa = scores.accessor<float, 2>();
    std::vector<std::vector<Neighbor>> rows(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < items.size(1) && ia[i][j] >= 0; ++j)
        rows[static_cast<size_t>(i)].push_back({ia[i][j], sa[i][j]});
    s.swing = ItemGraph(std::move(rows));
    auto p = pop.to(torch::kFloat).contiguous();
    s.log_popularity.assign(p.data_ptr<float>(), p.data_ptr<float>() + n);
    s.brand = int_vector(brand);
    s.leaf_category = int_vector(leaf);
    s.top_category = int_vector(top);
  } catch (const c10::Error& e) {
    throw_input_error("{}: not a ranker statistics file ({})", path.string(), e.what_without_backtrace());
  }
  return s;
}

void rank_features(const RankSources& sources, const Sequence& history, int history_window,
                   const Ranking& candidates, size_t m, const float* sasrec_logits, float* out,
                   const uint8_t* from) {
  m = std::min(m, candidates.size());
  std::fill(out, out + m * kNumRankFeatures, 0.0f);
  if (m == 0) return;
  const size_t start = history.size() > static_cast<size_t>(history_window)
                           ? history.size() - static_cast<size_t>(history_window)
                           : 0;
  const size_t window = history.size() - start;
  std::unordered_map<ItemIndex, size_t> slot;
  slot.reserve(m * 2);
  for (size_t c = 0; c < m; ++c) slot.emplace(candidates[c].item, c);
  auto row = [&](size_t c) { return out + c * kNumRankFeatures; };
  // Swing: walk each recent history item's neighbour list once and credit the candidates in it.
  for (size_t h = start; h < history.size(); ++h) {
    const bool last = h + 1 == history.size();
    for (const auto& nb : sources.swing.neighbors(history[h])) {
      auto it = slot.find(nb.item);
      if (it == slot.end()) continue;
      float* f = row(it->second);
      f[3] += nb.score;
      f[4] = std::max(f[4], nb.score);
      if (last) f[5] = nb.score;
    }
  }
  const float top_beam = candidates[0].score;
  float top_sasrec = sasrec_logits ? *std::max_element(sasrec_logits, sasrec_logits + m) : 0.0f;
  for (size_t c = 0; c < m; ++c) {
    float* f = row(c);
    const ItemIndex item = candidates[c].item;
    f[0] = candidates[c].score;
    f[1] = candidates[c].score - top_beam;
    f[2] = std::log1p(static_cast<float>(c));
    f[6] = sources.log_popularity[static_cast<size_t>(item)];
    int brand = 0, leaf = 0, top = 0;
    for (size_t h = start; h < history.size(); ++h) {
      auto same = [&](const std::vector<int32_t>& ids) {
        int32_t a = ids[static_cast<size_t>(item)];
        return a >= 0 && a == ids[static_cast<size_t>(history[h])];
      };
      brand += same(sources.brand);
      leaf += same(sources.leaf_category);
      top += same(sources.top_category);
    }
    if (window > 0) {
      f[7] = static_cast<float>(brand) / static_cast<float>(window);
      f[8] = static_cast<float>(leaf) / static_cast<float>(window);
      f[9] = static_cast<float>(top) / static_cast<float>(window);
    }
    if (sasrec_logits) {
      f[10] = sasrec_logits[c];
      f[11] = sasrec_logits[c] - top_sasrec;
      size_t better = 0;
      for (size_t o = 0; o < m; ++o)
        better += sasrec_logits[o] > sasrec_logits[c] || (sasrec_logits[o] == sasrec_logits[c] && o < c);
      f[12] = std::log1p(static_cast<float>(better));
    }
    const uint8_t source = from ? from[c] : static_cast<uint8_t>(kFromFastRec);
    f[13] = (source & kFromFastRec) ? 1.0f : 0.0f;
    f[14] = (source & kFromBackbone) ? 1.0f : 0.0f;
    f[15] = (source & kFromSwing) ? 1.0f : 0.0f;
  }
}

}  // namespace twistar
