#include "agent/think_and_rec.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <mutex>
#include <numeric>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "core/hash.h"
#include "core/manifest.h"
#include "nn/device.h"
#include "search/beam_search.h"

namespace twistar {
namespace fs = std::filesystem;

void ThinkAndRecOptions::validate() const {
  if (beam < 1) throw_input_error("think_and_rec beam: must be >= 1, got {}", beam);
  if (samples < 1) throw_input_error("think_and_rec samples: must be >= 1, got {}", samples);
  if (samples > 1 && temperature <= 0)
    throw_input_error("think_and_rec temperature: must be > 0 when sampling, got {}", temperature);
  if (chunk < 1) throw_input_error("think_and_rec chunk: must be >= 1, got {}", chunk);
  if (propose < 0) throw_input_error("think_and_rec propose: must be >= 0, got {}", propose);
  if (!(fuse >= 0 && fuse < 1)) throw_input_error("think_and_rec fuse: must be in [0, 1), got {}", fuse);
  if (!(fuse_offset >= 0)) throw_input_error("think_and_rec fuse_offset: must be >= 0, got {}", fuse_offset);
  if (rerank_pool < 1) throw_input_error("think_and_rec rerank_pool: must be >= 1, got {}", rerank_pool);
  if (!(thought_rank_weight >= 0 && std::isfinite(thought_rank_weight)))
    throw_input_error("think_and_rec thought_rank_weight: must be a finite number >= 0, got {}", thought_rank_weight);
  if (propose > 0 && !ground.enabled())
    throw_input_error(
        "think_and_rec propose: proposed candidates are ranked by grounding; set a grounding weight or propose 0 "
        "(--slow-propose 0)");
  ground.validate();
}

nlohmann::json ThinkAndRecOptions::to_json() const {
  return {{"beam", beam}, {"samples", samples}, {"temperature", temperature}, {"seed", seed},
          {"grammar", grammar}, {"ground", ground.to_json()}, {"propose", propose},
          {"fuse", fuse}, {"fuse_offset", fuse_offset}, {"rerank", rerank}, {"rerank_pool", rerank_pool},
          {"thought_rank_weight", thought_rank_weight}};
}

ThinkAndRecOptions ThinkAndRecOptions::greedy() {
  ThinkAndRecOptions o;
  o.beam = 20;
  o.samples = 1;
  o.temperature = 0.7;
  o.grammar = false;
  o.ground = {};
  o.propose = 0;
  return o;
}

namespace {

/// Throws InputError when the options ask for an aid (or the tokenizer grounding reads rationales
/// with) that is missing. `rationale` false: the rationale aids do not apply.
void require_aids(const ThinkAndRecOptions& o, const RationaleAids& aids, bool rationale, const SpTokenizer* tokenizer) {
  if (!rationale) return;
  if (o.ground.enabled() && (!aids.grounding || !tokenizer))
    throw_input_error("think_and_rec: grounding weights are set but the grounding tables or the tokenizer are missing");
  if (o.grammar && !aids.grammar) throw_input_error("think_and_rec: the grammar option is set but no grammar was given");
}

/// One seed per request for sample `sample`: a request's samples depend on the seed and its history
/// only, so it gets the same answer alone or in any batch.
std::vector<uint64_t> sample_seeds(const std::vector<Sequence>& histories, uint64_t seed, int sample) {
  std::vector<uint64_t> seeds;
  for (const Sequence& h : histories)
    seeds.push_back(fnv1a64(std::string_view(reinterpret_cast<const char*>(h.data()), h.size() * sizeof(ItemIndex)),
                            seed * 1000003ULL + static_cast<uint64_t>(sample)));
  return seeds;
}

/// The top k of the samples' merged probabilities, as log-probabilities (best first, ties to the
/// lower item).
Ranking merged_ranking(const std::unordered_map<ItemIndex, double>& merged, int64_t k) {
  Ranking r;
  for (const auto& [item, p] : merged) r.push_back({item, static_cast<float>(std::log(p))});
  sort_best_first(r, static_cast<size_t>(k));
  return r;
}

}  // namespace

Ranking fuse_ranks(const Ranking& ranked, const Ranking& own, double weight, int64_t k) {
  const size_t n = static_cast<size_t>(std::max<int64_t>(k, 0));
  if (weight <= 0) return Ranking(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(std::min(n, ranked.size())));
  const size_t absent = std::max(ranked.size(), own.size()) + 10;
  struct Entry {
    ItemIndex item;
    size_t in_ranked, in_own;
    double key;
  };
  std::unordered_map<ItemIndex, size_t> at;
  std::vector<Entry> entries;
  for (size_t r = 0; r < ranked.size(); ++r)
    if (at.emplace(ranked[r].item, entries.size()).second) entries.push_back({ranked[r].item, r, absent, 0});
  for (size_t r = 0; r < own.size(); ++r) {
    auto [it, added] = at.emplace(own[r].item, entries.size());
    if (added) entries.push_back({own[r].item, absent, r, 0});
    else entries[it->second].in_own = std::min(entries[it->second].in_own, r);
  }
  for (auto& e : entries)
    e.key = std::log(2.0 + static_cast<double>(e.in_ranked)) + weight * std::log(2.0 + static_cast<double>(e.in_own));
  const size_t keep = std::min(n, entries.size());
  std::partial_sort(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(keep), entries.end(),
                    [](const Entry& a, const Entry& b) {
                      return std::tie(a.key, a.in_ranked, a.in_own) < std::tie(b.key, b.in_ranked, b.in_own);
                    });
  Ranking out;
  out.reserve(keep);
  for (size_t i = 0; i < keep; ++i) out.push_back({entries[i].item, static_cast<float>(-entries[i].key)});
  return out;
}

Ranking fuse_rankings(const Ranking& ranked, const Ranking& own, double weight, double offset, int64_t k) {
  const size_t n = static_cast<size_t>(std::max<int64_t>(k, 0));
  if (weight <= 0) return Ranking(own.begin(), own.begin() + static_cast<std::ptrdiff_t>(std::min(n, own.size())));
  std::unordered_map<ItemIndex, double> score;
  auto add = [&](const Ranking& list, double w) {
    for (size_t r = 0; r < list.size(); ++r) score[list[r].item] += w / (offset + static_cast<double>(r + 1));
  };
  add(ranked, weight);
  add(own, 1.0 - weight);
  Ranking out;
  out.reserve(score.size());
  for (const auto& [item, v] : score) out.push_back({item, static_cast<float>(v)});
  sort_best_first(out, n);
  return out;
}

void add_proposals(SidGenerator& decoder, const torch::Tensor& h, const std::vector<std::string>& texts,
                   const std::vector<Sequence>& histories, bool exclude_history, int64_t n,
                   const RationaleGrounding& grounding, std::vector<Ranking>& rankings) {
  std::vector<int64_t> rows, items;
  for (size_t i = 0; i < histories.size(); ++i) {
    std::unordered_set<ItemIndex> taken;
    for (const auto& s : rankings[i]) taken.insert(s.item);
    if (exclude_history) taken.insert(histories[i].begin(), histories[i].end());
    int64_t added = 0;
    for (ItemIndex item : grounding.proposals(texts[i], histories[i], kProposalRecent)) {
      if (added == n) break;
      if (!taken.insert(item).second) continue;
      rows.push_back(static_cast<int64_t>(i));
      items.push_back(item);
      ++added;
    }
  }
  const auto lp = decoder->item_log_probs(h, rows, items);
  for (size_t r = 0; r < items.size(); ++r)
    if (std::isfinite(lp[r])) rankings[rows[r]].push_back({static_cast<ItemIndex>(items[r]), lp[r]});
}

ThoughtRankings think_and_rec_search(Reasoner& model, const PrefixTrie& trie, const SpTokenizer* tokenizer,
                                     const std::vector<Sequence>& histories, const ThinkAndRecOptions& o,
                                     int64_t k, bool exclude_history, bool rationale, const RationaleAids& aids) {
  torch::NoGradGuard no_grad;
  const int64_t beam = std::max(o.beam, k);
  const bool ground = rationale && o.ground.enabled();
  require_aids(o, aids, rationale, tokenizer);
  const TokenGrammar* grammar = rationale && o.grammar ? aids.grammar.get() : nullptr;
  // Greedy and ungrounded: the beam's top k is the answer; otherwise the whole beam is re-scored.
  // Without a rationale every sample would be the same search.
  const int samples = rationale ? o.samples : 1;
  const bool whole_beam = samples > 1 || ground;
  std::vector<size_t> order(histories.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return histories[a].size() < histories[b].size(); });
  ThoughtRankings out;
  out.rankings.resize(histories.size());
  out.rationales.resize(histories.size());
  for (size_t s = 0; s < order.size(); s += static_cast<size_t>(o.chunk)) {
    const size_t e = std::min(order.size(), s + static_cast<size_t>(o.chunk));
    const size_t n = e - s;
    // Every sample of every request of the chunk is one row (sample-major: row = sample·n + i), so a
    // request's samples share one encoding, decoding and search pass. Each row's rationale comes from
    // its own seed, so it is the same in any batch.
    std::vector<Sequence> part;
    for (size_t i = s; i < e; ++i) part.push_back(histories[order[i]]);
    std::vector<Sequence> rows, exclude;
    std::vector<uint64_t> seeds;
    for (int sample = 0; sample < samples; ++sample) {
      auto sample_seed = sample_seeds(part, o.seed, sample);
      seeds.insert(seeds.end(), sample_seed.begin(), sample_seed.end());
      rows.insert(rows.end(), part.begin(), part.end());
    }
    if (exclude_history) exclude = rows;
    auto state = model->start(rows);
    std::vector<std::string> texts(rows.size());
    if (rationale) {
      const double temperature = samples == 1 ? 0.0 : o.temperature;
      auto r = model->write_rationale(state, temperature, seeds, grammar);
      // Sample 0's rationale is the one the observation shows; grounding reads every sample's.
      const size_t decoded = ground ? rows.size() : n;
      if (tokenizer)
        for (size_t row = 0; row < decoded; ++row) texts[row] = tokenizer->decode(r.tokens[row]);
      for (size_t i = 0; i < n; ++i) out.rationales[order[s + i]] = texts[i];
    }
    DecoderState thought = model->finish_thought(state);
    const torch::Tensor h = thought.context[0];
    auto rankings = constrained_beam_search(*model->base(), std::move(thought), trie,
                                            {beam, whole_beam ? beam : k}, exclude);
    if (ground && o.propose > 0)
      add_proposals(model->base(), h, texts, rows, exclude_history, o.propose, *aids.grounding, rankings);
    if (ground)
      for (size_t row = 0; row < rows.size(); ++row) aids.grounding->apply(texts[row], rows[row], o.ground, rankings[row]);
    if (samples == 1) {
      for (size_t i = 0; i < n; ++i) {
        if (static_cast<int64_t>(rankings[i].size()) > k) rankings[i].resize(k);
        out.rankings[order[s + i]] = std::move(rankings[i]);
      }
      continue;
    }
    // Merged by mean probability, samples added in order.
    for (size_t i = 0; i < n; ++i) {
      std::unordered_map<ItemIndex, double> merged;
      for (int sample = 0; sample < samples; ++sample)
        for (const auto& si : rankings[static_cast<size_t>(sample) * n + i])
          merged[si.item] += std::exp(static_cast<double>(si.score)) / samples;
      out.rankings[order[s + i]] = merged_ranking(merged, k);
    }
  }
  return out;
}

ThinkAndRec::ThinkAndRec(Reasoner model, std::shared_ptr<const SidMap> sids,
                         std::shared_ptr<const SpTokenizer> tokenizer, bool rationale, ThinkAndRecOptions options,
                         RationaleAids aids)
    : model_(std::move(model)), sids_(std::move(sids)), tokenizer_(std::move(tokenizer)), rationale_(rationale),
      options_(options), aids_(std::move(aids)) {
  options_.validate();
  require_aids(options_, aids_, rationale_, tokenizer_.get());
  if (aids_.grounding && aids_.grounding->num_items() != sids_->num_items())
    throw_input_error("think_and_rec: the grounding tables have {} items, the SID map {}",
                      aids_.grounding->num_items(), sids_->num_items());
  if (sids_->num_items() != model_->base()->num_items())
    throw_input_error("think_and_rec: the SID map has {} items, the model {}", sids_->num_items(),
                      model_->base()->num_items());
  model_->eval();
}

std::vector<Observation> ThinkAndRec::run(std::vector<RequestState>& requests, const ToolArgs& args) const {
  if (args.k < 1) throw_input_error("think_and_rec: k must be >= 1, got {}", args.k);
  auto t0 = std::chrono::steady_clock::now();
  const int64_t search_k = own_length(args.k);
  std::vector<size_t> with, without;
  for (size_t i = 0; i < requests.size(); ++i) (requests[i].exclude_history ? with : without).push_back(i);
  std::vector<Observation> out(requests.size());
  for (bool exclude : {true, false}) {
    const auto& idx = exclude ? with : without;
    if (idx.empty()) continue;
    // The requests' own answers: from the memo when it has them, the rest searched as one batch.
    std::vector<ThinkMemo::Entry> own(idx.size());
    std::vector<std::string> keys(idx.size());
    std::vector<size_t> todo;
    const bool memo = memo_ && memo_->active();
    for (size_t j = 0; j < idx.size(); ++j) {
      if (memo) {
        const Sequence& h = requests[idx[j]].history;
        keys[j] = fmt::format("{}|{}|{}|", memo_scope_, search_k, exclude) +
                  std::string(reinterpret_cast<const char*>(h.data()), h.size() * sizeof(ItemIndex));
        if (auto hit = memo_->find(keys[j])) {
          own[j] = std::move(*hit);
          continue;
        }
      }
      todo.push_back(j);
    }
    if (!todo.empty()) {
      std::vector<Sequence> hist;
      for (size_t j : todo) hist.push_back(requests[idx[j]].history);
      auto found = think_and_rec_search(model_, sids_->trie(), tokenizer_.get(), hist, options_, search_k,
                                        exclude, rationale_, aids_);
      for (size_t t = 0; t < todo.size(); ++t) {
        own[todo[t]] = {std::move(found.rankings[t]), std::move(found.rationales[t])};
        if (memo) memo_->put(keys[todo[t]], own[todo[t]]);
      }
    }
    // After rank_candidates the list combines the request's candidates with its own (after_ranking).
    std::vector<const RequestState*> ranked;
    std::vector<Ranking> ranked_own;
    std::vector<size_t> ranked_at;
    for (size_t j = 0; j < idx.size(); ++j) {
      const RequestState& request = requests[idx[j]];
      out[idx[j]].rationale = std::move(own[j].rationale);
      if (after_rank(request)) {
        ranked.push_back(&request);
        ranked_own.push_back(std::move(own[j].items));
        ranked_at.push_back(idx[j]);
      } else {
        auto& items = own[j].items;
        if (static_cast<int>(items.size()) > args.k) items.resize(static_cast<size_t>(args.k));
        out[idx[j]].items = std::move(items);
      }
    }
    if (!ranked.empty()) {
      auto combined = after_ranking(ranked, std::move(ranked_own), args.k);
      for (size_t j = 0; j < ranked.size(); ++j) out[ranked_at[j]].items = std::move(combined[j]);
    }
  }
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  for (size_t i = 0; i < requests.size(); ++i) {
    out[i].tool = name();
    out[i].cost_ms = ms / static_cast<double>(requests.size());
    record(requests[i], out[i]);
  }
  return out;
}

std::optional<ThinkMemo::Entry> ThinkMemo::find(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  ++hits_;
  return it->second;
}

void ThinkMemo::put(std::string key, Entry entry) {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.insert_or_assign(std::move(key), std::move(entry));
}

size_t ThinkMemo::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

void ThinkAndRec::set_memo(std::shared_ptr<ThinkMemo> memo, const std::string& source) {
  memo_ = std::move(memo);
  memo_scope_ = fmt::format("{}|{}|{}", source, options_.to_json().dump(), rationale_);
}

int ThinkAndRec::own_length(int k) const {
  return reranks() ? std::max(k, static_cast<int>(options_.rerank_pool)) : k;
}

void ThinkAndRec::set_reranker(std::shared_ptr<const FastRec> fast, std::shared_ptr<const RankCandidates> rank) {
  rerank_fast_ = std::move(fast);
  rerank_rank_ = std::move(rank);
}

std::vector<Ranking> ThinkAndRec::after_ranking(const std::vector<const RequestState*>& requests,
                                                std::vector<Ranking> own, int k) const {
  std::vector<Ranking> out(requests.size());
  std::vector<size_t> pooled;
  std::vector<Sequence> histories;
  std::vector<Ranking> retrieved, extra;
  for (size_t i = 0; i < requests.size(); ++i) {
    if (reranks() && !requests[i]->retrieved.empty()) {
      pooled.push_back(i);
      histories.push_back(requests[i]->history);
      retrieved.push_back(requests[i]->retrieved);
      extra.push_back(std::move(own[i]));
    } else {
      // As without re-ranking: the thought's own top k fused with the ranked candidates.
      if (static_cast<int>(own[i].size()) > k) own[i].resize(static_cast<size_t>(k));
      out[i] = fuse_rankings(requests[i]->candidates, own[i], options_.fuse, options_.fuse_offset, k);
    }
  }
  if (!pooled.empty()) {
    // The ranking at the pool's length whatever k is, so a request's first k do not depend on k.
    const int64_t length = std::max<int64_t>(k, options_.rerank_pool);
    auto ranked = rank_union(*rerank_fast_, *rerank_rank_, histories, retrieved, extra, length);
    for (size_t j = 0; j < pooled.size(); ++j)
      out[pooled[j]] = fuse_ranks(ranked[j], extra[j], options_.thought_rank_weight, k);
  }
  return out;
}

namespace {

/// The reasoners this process holds, by weights file (path, size, write time) and device: the
/// think_and_rec tools of one reasoner (always-slow's, the planner's, the routers') share one copy of
/// its weights while any of them lives. Besides the memory, an evaluation that times two such systems
/// in turns then keeps one set of weights in the caches, as each would serving alone. Inference only
/// reads the module, and one tool already serves concurrent requests with it.
Reasoner shared_reasoner(const fs::path& file, const torch::Device& device, const std::function<Reasoner()>& load) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<ReasonerImpl>> held;
  const std::string key =
      fmt::format("{}|{}|{}|{}", fs::weakly_canonical(file).string(), fs::file_size(file),
                  fs::last_write_time(file).time_since_epoch().count(), device.str());
  std::lock_guard<std::mutex> lock(mutex);
  for (auto it = held.begin(); it != held.end();)  // forget the weights no tool holds any more
    it = it->second.expired() ? held.erase(it) : std::next(it);
  if (auto impl = held[key].lock()) return Reasoner(std::move(impl));
  Reasoner model = load();
  held[key] = model.ptr();
  return model;
}

}  // namespace

std::shared_ptr<ThinkAndRec> load_think_and_rec(const fs::path& run_dir, const Context& ctx,
                                                ThinkAndRecOptions options, const std::string& name,
                                                std::shared_ptr<ThinkMemo> memo) {
  const fs::path dir = run_dir / name;
  auto m = Manifest::load(dir);
  if (!m || m->stage != "reasoner")
    throw_input_error("{}: no finished reasoner (run `twistar train reasoner --run {}`)", dir.string(),
                      run_dir.string());
  const fs::path map_path = run_dir / "sid" / "sid_map.json", tok_path = run_dir / "knowledge" / "tokenizer.model";
  if (!fs::exists(map_path)) throw_input_error("{}: missing; run `twistar sid` first", map_path.string());
  if (!fs::exists(tok_path)) throw_input_error("{}: missing; run `twistar knowledge` first", tok_path.string());
  if (hash_file(tok_path) != m->inputs["tokenizer"])
    throw_input_error("{}: the tokenizer changed since {} was trained; retrain it", tok_path.string(),
                      dir.string());
  auto sids = std::make_shared<const SidMap>(SidMap::load(map_path));
  auto tokenizer = std::make_shared<const SpTokenizer>(SpTokenizer::load(tok_path));
  auto o = ReasonerOptions::from_json(m->config);
  auto vocab = ReasonerVocab::from_json(m->config.at("vocab"));
  if (!fs::exists(dir / "model.pt"))
    throw_input_error("{}: missing; retrain with `twistar train reasoner --run {}`", (dir / "model.pt").string(),
                      run_dir.string());
  Reasoner model = shared_reasoner(dir / "model.pt", torch_device(ctx), [&] {
    SidGenerator base(sids->sids(), sids->level_sizes(), SidGeneratorOptions::from_json(m->config.at("base")));
    auto placeholder = torch::full({sids->num_items(), o.item_text_pieces}, -1, torch::kLong);
    Reasoner loaded(base, vocab, placeholder, o);
    torch::load(loaded, (dir / "model.pt").string());
    loaded->to(torch_device(ctx));
    loaded->eval();
    return loaded;
  });
  const bool rationale = m->config.value("rationale", true);
  if ((options.ground.enabled() || options.grammar) && !rationale) {
    spdlog::warn("think_and_rec: {} writes no rationale; the grammar, grounding and proposals are off", dir.string());
    options.ground = {};
    options.grammar = false;
    options.propose = 0;
  }
  RationaleAids aids;
  const auto num_items = static_cast<int32_t>(sids->num_items());
  if (options.ground.enabled())
    aids.grounding = std::make_shared<const RationaleGrounding>(RationaleGrounding::load(run_dir / "knowledge", num_items));
  if (options.grammar) {
    auto facts = ItemFacts::load(run_dir / "knowledge" / "item_facts.tsv", num_items);
    aids.grammar = std::make_shared<const RationaleGrammar>(
        facts, *tokenizer, o.context_items, vocab.rationale_ids.empty() ? vocab.text_ids : vocab.rationale_ids,
                                                            vocab.think_end);
    spdlog::info("think_and_rec: rationale grammar of {} headers and {} links", aids.grammar->headers(),
                 aids.grammar->links());
  }
  auto tool = std::make_shared<ThinkAndRec>(model, sids, tokenizer, rationale, options, std::move(aids));
  tool->set_memo(std::move(memo), dir.string());
  return tool;
}

}  // namespace twistar
