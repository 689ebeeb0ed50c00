// think_and_rec(j): the slow path. The reasoning LM (models/reasoner.h) reads the history, writes a
// rationale `<think> ... </think>` (greedy, or n sampled rationales), then trie-constrained beam search
// writes SIDs after `</think>`; samples are merged by their mean probability per item (a Monte-Carlo
// estimate of P(item | history) marginalised over rationales). The top j come back with the
// rationale text in the observation. Optionally (agent/grounding.h) the rationale is kept to its
// trained format by a grammar (a catalogue category and brand, a valid link), and each rationale's
// whole beam is re-scored by the claims it makes, so the thought decides between candidates.
// A request's samples are rows of one batch (one encoding, decoding and search pass for all of them);
// each row has its own seed, so a request gets the same answer alone or beside others.
// Called right after rank_candidates, the thought widens the ranking: its best 50 join fast_rec's
// candidates and the ranker orders them all (rank_union; ThinkAndRecOptions::rerank); that order is
// then fused with the thought's own by log-rank (fuse_ranks; ThinkAndRecOptions::thought_rank_weight).
//
// The reasoning LM is trained by agent/reasoner_training.h; load_think_and_rec reads what it wrote to
// run/<name>.
#pragma once
#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>
#include "agent/grounding.h"
#include "agent/rank_candidates.h"
#include "agent/tool.h"
#include "core/context.h"
#include "data/dataset.h"
#include "models/reasoner.h"
#include "sid/sid_map.h"
#include "text/sp_tokenizer.h"

namespace twistar {

// The defaults (4 sampled rationales kept to the grammar, each grounding a beam of 50 plus up to 50
// candidates it proposes, link bonus 5) were chosen on Beauty's validation split (docs/experiments/2026-11-28-think-and-rec.md,
// "think_and_rec"): against one greedy free-running rationale and a beam of 20, NDCG@10 0.0520 vs
// 0.0493 and the oracle with fast_rec 1.18x vs 1.14x (first reasoner); against the same rationales
// without proposals and with link bonus 1, 0.0548 vs 0.0521 and 1.30x vs 1.19x (the current one).
// The fusion after rank_candidates (weight 0.65 on the ranking, offset 1) was chosen on the same 3,000
// users among weights 0.3-0.8 and offsets 0-60: fast_rank_slow 0.0631 against fast_rank's 0.0620
// (weight 0.5, offset 10: 0.0598). Re-ranking the joined candidates instead (rerank) gains more than
// twice as much on 4,000 Beauty validation users: 0.0628 against the fusion's 0.0614 and fast_rank's
// 0.0604 (docs/experiments/2026-11-28-think-and-rec.md, "think_and_rec after ranking").
struct ThinkAndRecOptions {
  /// SID beam width per rationale (raised to k when a call asks for more).
  int64_t beam = 50;
  /// Rationales per request: 1 = greedy; n > 1 = sampled at `temperature` and merged.
  int samples = 4;
  double temperature = 1.0;
  /// Requests decoded together.
  int64_t chunk = 64;
  /// Seeds the sampling (a request's samples depend on it and the request's history only).
  uint64_t seed = 42;
  /// Keeps greedy and sampled rationales to the reasoning format (RationaleGrammar): a catalogue
  /// category and brand, a well-formed link.
  bool grammar = true;
  /// Re-scores the whole beam with bonuses for what the rationale states (agent/grounding.h);
  /// all zero: the beam's own order.
  GroundingWeights ground = default_ground();
  /// Candidates the rationale proposes (RationaleGrounding::proposals over the last kProposalRecent
  /// items): up to this many knowledge neighbours of the history item its link points to, then of the
  /// last items in the category it names, scored by the LM's SID log-probability after the thought and
  /// added to that rationale's beam before grounding (0: the beam's candidates only). Needs grounding.
  int64_t propose = 50;
  /// Called right after rank_candidates, the list fuses the ranked candidates with the thought's own
  /// ranking by weighted reciprocal rank (fuse_rankings): this weight on the ranked list, 1 − it on
  /// the thought's (0: the thought's list alone, as when called without ranked candidates).
  double fuse = 0.65;
  /// The reciprocal-rank offset c in w / (c + rank).
  double fuse_offset = 1;
  /// Called right after rank_candidates with a ranker at hand (set_reranker), the thought's best
  /// `rerank_pool` items join fast_rec's candidates and the ranker re-scores them all (rank_union)
  /// instead of the reciprocal-rank fusion: the thought widens the candidate set the ranker orders.
  bool rerank = true;
  int64_t rerank_pool = 50;
  /// After re-ranking, the ranker's order over the joined pool (its best rerank_pool) is fused with
  /// the thought's own list (fuse_ranks): the weight of the thought's log-rank against the ranking's
  /// (0: the ranker's order alone). 0.3 was chosen on Beauty's validation users (docs/experiments/2026-11-28-think-and-rec.md,
  /// "A fusion of the thought's list with the joined ranking").
  double thought_rank_weight = 0.3;
  void validate() const;
  /// The search settings (for manifests that depend on them, e.g. the planner's episodes).
  nlohmann::json to_json() const;
  /// One greedy free-running rationale, beam 20, no grounding (the training stages' validation).
  static ThinkAndRecOptions greedy();

 private:
  static GroundingWeights default_ground() {
    GroundingWeights g;
    g.category = 1.0;
    g.brand = 0.5;
    g.link = 5.0;
    return g;
  }
};

/// What think_and_rec reads besides the model to act on its rationales (either may be null).
struct RationaleAids {
  std::shared_ptr<const RationaleGrammar> grammar;
  std::shared_ptr<const RationaleGrounding> grounding;
};

/// Rankings (best first) and the first rationale of each history.
struct ThoughtRankings {
  std::vector<Ranking> rankings;
  std::vector<std::string> rationales;
};

/// The slow path's search for a batch of histories. `rationale` false feeds an empty rationale
/// (models trained without rationales). `tokenizer` decodes the rationales (may be null: none).
/// `aids.grammar` constrains the rationales when options.grammar is set; `aids.grounding` re-scores
/// each rationale's beam when options.ground is set (each is required then).
ThoughtRankings think_and_rec_search(Reasoner& model, const PrefixTrie& trie, const SpTokenizer* tokenizer,
                                     const std::vector<Sequence>& histories, const ThinkAndRecOptions& options,
                                     int64_t k, bool exclude_history, bool rationale,
                                     const RationaleAids& aids = {});

/// Log-rank fusion of two best-first lists: an item scores log(2 + its rank in `ranked`) + weight ·
/// log(2 + its rank in `own`) (ranks from 0; an item a list lacks ranks 10 past the longer list's
/// end), lowest first; ties go to the better rank in `ranked`, then in `own`. The best k, scored by
/// minus that sum. Weight 0 gives `ranked`'s first k.
Ranking fuse_ranks(const Ranking& ranked, const Ranking& own, double weight, int64_t k);

/// Weighted reciprocal-rank fusion of two best-first lists: item score
/// weight / (offset + rank in `ranked`) + (1 − weight) / (offset + rank in `own`), ranks from 1 and an
/// absent item contributing nothing; the best k, ties to the lower item. weight 0 returns `own`'s first k.
Ranking fuse_rankings(const Ranking& ranked, const Ranking& own, double weight, double offset, int64_t k);

/// History items whose knowledge neighbours a rationale's category claim may propose.
constexpr int64_t kProposalRecent = 3;

/// Adds to each ranking up to `n` of the candidates its rationale (`texts`) proposes
/// (RationaleGrounding::proposals; not already ranked, not in the history when `exclude_history`), scored
/// by `decoder`'s SID log-probability from that request's thought `h` [B, D] (options.propose).
void add_proposals(SidGenerator& decoder, const torch::Tensor& h, const std::vector<std::string>& texts,
                   const std::vector<Sequence>& histories, bool exclude_history, int64_t n,
                   const RationaleGrounding& grounding, std::vector<Ranking>& rankings);

/// think_and_rec's own answers (its list before any fusion, and the rationale), kept per request for
/// the length of one evaluation: a request's search depends only on its history, k and the exclusion
/// (each request's samples are seeded by its history), so every system of `twistar eval` that thinks
/// for the same user (slow, fast_rank_slow, the routers, twistar at each β) can share one search.
/// Switched off while the evaluator times requests, so latency is always measured on real searches.
/// Thread-safe.
class ThinkMemo {
 public:
  struct Entry {
    Ranking items;
    std::string rationale;
  };
  void set_active(bool on) { active_ = on; }
  bool active() const { return active_; }
  std::optional<Entry> find(const std::string& key) const;
  void put(std::string key, Entry entry);
  size_t size() const;
  /// Searches answered from the memo since it was made.
  size_t hits() const { return hits_; }

 private:
  std::atomic<bool> active_{true};
  mutable std::atomic<size_t> hits_{0};
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

class ThinkAndRec : public Tool {
 public:
  /// `aids` are required as options.grammar and options.ground ask (load_think_and_rec reads them
  /// from the run).
  ThinkAndRec(Reasoner model, std::shared_ptr<const SidMap> sids, std::shared_ptr<const SpTokenizer> tokenizer,
              bool rationale, ThinkAndRecOptions options = {}, RationaleAids aids = {});
  std::string name() const override { return "think_and_rec"; }
  std::vector<Observation> run(std::vector<RequestState>& requests, const ToolArgs& args) const override;
  size_t preferred_batch_size() const override { return 64; }
  /// rank_union of the request's fast_rec pool and its own list when it reranks (set_reranker and
  /// options.rerank, the request holding fast_rec's candidates); otherwise fuse_rankings of the
  /// ranked candidates and its own list with the options' fuse weight and offset.
  std::vector<Ranking> after_ranking(const std::vector<const RequestState*>& requests, std::vector<Ranking> own,
                                     int k) const override;
  /// The fast_rec and rank_candidates whose ranker orders the joined candidates after ranking.
  void set_reranker(std::shared_ptr<const FastRec> fast, std::shared_ptr<const RankCandidates> rank);
  bool reranks() const { return options_.rerank && rerank_fast_ && rerank_rank_; }
  /// The rerank pool's length when it reranks (one memo entry then serves a request with and without
  /// ranked candidates), k otherwise.
  int own_length(int k) const override;
  const ThinkAndRecOptions& options() const { return options_; }
  /// True when both tools read one copy of the reasoner's weights (load_think_and_rec shares them).
  bool shares_weights_with(const ThinkAndRec& other) const { return model_.get() == other.model_.get(); }
  /// Shares searches through `memo` while it is active (nullptr: none). Only tools of the same
  /// reasoner (`source`, e.g. its directory) and the same search options share entries.
  void set_memo(std::shared_ptr<ThinkMemo> memo, const std::string& source = "");

 private:
  mutable Reasoner model_;
  std::shared_ptr<const SidMap> sids_;
  std::shared_ptr<const SpTokenizer> tokenizer_;
  bool rationale_;
  ThinkAndRecOptions options_;
  RationaleAids aids_;
  std::shared_ptr<ThinkMemo> memo_;
  std::shared_ptr<const FastRec> rerank_fast_;
  std::shared_ptr<const RankCandidates> rerank_rank_;
  /// Every memo key starts with it: the reasoner, the search options and whether it writes rationales.
  std::string memo_scope_;
};

/// think_and_rec from a run directory: run/<name> (the reasoner), run/sid, run/knowledge's tokenizer.
/// Throws InputError naming whatever is missing or inconsistent.
/// With a memo, it shares searches with the other tools of the same reasoner and options (ThinkMemo).
/// Tools loaded from the same weights file (unchanged since) share one copy of the weights.
std::shared_ptr<ThinkAndRec> load_think_and_rec(const std::filesystem::path& run_dir, const Context& ctx,
                                                ThinkAndRecOptions options = {},
                                                const std::string& name = "reasoner",
                                                std::shared_ptr<ThinkMemo> memo = nullptr);

}  // namespace twistar
