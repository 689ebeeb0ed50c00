#include "search/beam_search.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace twistar {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

void check_fit(const LevelDecoder& model, const PrefixTrie& trie) {
  if (trie.max_depth() != model.num_levels())
    throw_input_error("beam search: the SIDs have {} levels but the model writes {}", trie.max_depth(),
                      model.num_levels());
  for (int64_t l = 0; l < model.num_levels(); ++l)
    if (trie.level_sizes()[l] > model.level_size(l))
      throw_input_error("beam search: SID level {} uses codes up to {} but the model scores {}", l,
                        trie.level_sizes()[l] - 1, model.level_size(l));
}

/// Per-request exclusion lists, sorted for binary search.
std::vector<Sequence> sorted_lists(const std::vector<Sequence>& exclude) {
  std::vector<Sequence> out = exclude;
  for (auto& s : out) std::sort(s.begin(), s.end());
  return out;
}

}  // namespace

void BeamSearchOptions::validate() const {
  if (beam < 1) throw_input_error("beam: must be >= 1, got {}", beam);
  if (k < 1) throw_input_error("k: must be >= 1, got {}", k);
  if (k > beam) throw_input_error("k: must be <= beam ({}), got {}", beam, k);
}

std::vector<Ranking> constrained_beam_search(LevelDecoder& model, DecoderState state,
                                             const PrefixTrie& trie, const BeamSearchOptions& options,
                                             const std::vector<Sequence>& exclude) {
  options.validate();
  check_fit(model, trie);
  const int64_t B = state.rows();
  if (!exclude.empty() && static_cast<int64_t>(exclude.size()) != B)
    throw_error("beam search: {} exclusion lists for {} requests", exclude.size(), B);
  if (B == 0) return {};
  torch::NoGradGuard no_grad;
  const auto excluded = sorted_lists(exclude);
  const int64_t L = model.num_levels();

  std::vector<PrefixTrie::NodeId> nodes(B, trie.root());  // per row; kNoNode = dead hypothesis
  torch::Tensor scores, previous;                          // [rows] on the model's device
  int64_t width = 1;                                       // hypotheses per request
  for (int64_t level = 0; level < L; ++level) {
    auto logp = model.step(level, previous, state);  // [B * width, K]
    const int64_t rows = logp.size(0), K = logp.size(1);
    const bool last = level == L - 1;
    // One mask write per level: 0 where a code continues a live hypothesis's prefix. Excluded
    // items are dropped after normalising, so they do not shift their siblings' probabilities.
    auto mask = torch::full({rows, K}, kNegInf);
    float* m = mask.data_ptr<float>();
    std::vector<int64_t> dropped;  // flat row * K + code
    for (int64_t r = 0; r < rows; ++r) {
      if (nodes[r] == PrefixTrie::kNoNode) continue;
      auto children = trie.children(nodes[r]);
      const Sequence* skip = last && !excluded.empty() ? &excluded[r / width] : nullptr;
      for (int32_t i = 0; i < children.size(); ++i) {
        m[r * K + children.code(i)] = 0.0f;
        if (skip && std::binary_search(skip->begin(), skip->end(), trie.leaf_item(children.child(i))))
          dropped.push_back(r * K + children.code(i));
      }
    }
    auto total = logp + mask.to(logp.device());
    if (model.renormalize_over_valid()) {
      // A dead hypothesis (all codes masked; beam wider than the live prefixes) normalises to NaN:
      // keep it at -inf so top-k never prefers it.
      total = torch::log_softmax(total, 1);
      total = total.masked_fill(total.isnan(), kNegInf);
    }
    if (!dropped.empty())
      total.view({-1}).index_fill_(0, torch::tensor(dropped, torch::kLong).to(total.device()), kNegInf);
    if (level > 0) total = total + scores.unsqueeze(1);
    const int64_t next_width = std::min<int64_t>(options.beam, width * K);
    auto [top, index] = total.view({B, width * K}).topk(next_width, 1);  // sorted, best first
    auto origin = index.div(K, "floor");
    auto codes = index.remainder(K);
    auto parent = (torch::arange(B, index.options()).unsqueeze(1) * width + origin).flatten();
    state.select(parent);
    auto parent_cpu = parent.cpu(), codes_cpu = codes.flatten().cpu(), top_cpu = top.flatten().cpu();
    auto pa = parent_cpu.accessor<int64_t, 1>();
    auto co = codes_cpu.accessor<int64_t, 1>();
    auto sc = top_cpu.accessor<float, 1>();
    std::vector<PrefixTrie::NodeId> next(pa.size(0), PrefixTrie::kNoNode);
    for (int64_t j = 0; j < pa.size(0); ++j)
      if (std::isfinite(sc[j]) && nodes[pa[j]] != PrefixTrie::kNoNode)
        next[j] = trie.child(nodes[pa[j]], static_cast<SidCode>(co[j]));
    nodes = std::move(next);
    scores = top.flatten();
    previous = codes.flatten();
    width = next_width;
  }

  auto final_scores = scores.cpu();
  auto sc = final_scores.accessor<float, 1>();
  std::vector<Ranking> out(B);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < width && static_cast<int64_t>(out[b].size()) < options.k; ++j) {
      int64_t r = b * width + j;
      if (nodes[r] == PrefixTrie::kNoNode || !std::isfinite(sc[r])) continue;
      out[b].push_back({trie.leaf_item(nodes[r]), sc[r]});
    }
  return out;
}

torch::Tensor exhaustive_sid_log_probs(LevelDecoder& model, const DecoderState& state,
                                       const CodeMatrix& sids, const PrefixTrie& trie) {
  torch::NoGradGuard no_grad;
  const int64_t B = state.rows(), N = sids.rows(), L = model.num_levels();
  if (sids.cols() != L) throw_error("exhaustive scoring: SIDs have {} levels, model {}", sids.cols(), L);
  auto codes = torch::empty({N, L}, torch::kLong);
  auto c = codes.accessor<int64_t, 2>();
  for (int64_t i = 0; i < N; ++i)
    for (int64_t l = 0; l < L; ++l) c[i][l] = sids(i, l);
  // The state lives on the model's device; the indices that select and feed it must too.
  const auto device = B > 0 ? state.context[0].device() : torch::Device(torch::kCPU);
  DecoderState rows = state;
  rows.select(torch::arange(B, torch::TensorOptions().dtype(torch::kLong).device(device))
                  .repeat_interleave(N));  // request-major: b * N + i
  auto all = codes.repeat({B, 1});
  auto all_on_device = all.to(device);
  torch::Tensor total, previous;
  for (int64_t l = 0; l < L; ++l) {
    auto logp = model.step(l, previous, rows).cpu();
    if (model.renormalize_over_valid()) {
      // Normalise over the codes that continue each item's own prefix.
      auto mask = torch::full({N, logp.size(1)}, kNegInf);
      for (int64_t i = 0; i < N; ++i) {
        Sid prefix(sids.row(i).data(), sids.row(i).data() + l);
        for (SidCode code : trie.allowed(prefix)) mask[i][code] = 0.0f;
      }
      logp = torch::log_softmax(logp + mask.repeat({B, 1}), 1);
    }
    auto picked = logp.gather(1, all.select(1, l).unsqueeze(1)).squeeze(1);
    total = l == 0 ? picked : total + picked;
    previous = all_on_device.select(1, l);
  }
  return total.view({B, N});
}

}  // namespace twistar
