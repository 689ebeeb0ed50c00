// Rationale grounding: think_and_rec acting on what it wrote. The reasoning LM's rationale states the
// next item's category and brand and the history item it is linked to ("next: Nails > Nail Polish.
// brand: OPI. link: strong, 1 back, same brand."). The SID beam (its log-probabilities) is re-scored
// with a bonus for each statement a candidate satisfies:
//   category  the candidate's category tail (last two levels) is the one the rationale names;
//   brand     its brand is the one the rationale names;
//   link      it is a strong-pair neighbour (run/knowledge/knowledge.tsv) of the history item the
//             rationale points to ("n back").
// So the rationale decides between the beam's candidates instead of only conditioning the SID
// decoder. RationaleGrammar keeps the LM's rationale to the format it was trained on (a valid
// category and brand of the catalogue, then a well-formed link), so there is always a claim to read. Everything read here comes from training parts and item metadata: the knowledge pairs
// (training parts only) and each item's category and brand (run/knowledge/item_facts.tsv, written by
// `twistar knowledge`).
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/dataset.h"
#include "data/recommender.h"
#include "graph/item_knowledge.h"
#include "models/token_grammar.h"
#include "text/sp_tokenizer.h"

namespace twistar {

/// Bonuses (added to SID log-probabilities) per satisfied statement; all zero = no grounding.
struct GroundingWeights {
  double category = 0;
  double brand = 0;
  double link = 0;
  bool enabled() const { return category != 0 || brand != 0 || link != 0; }
  nlohmann::json to_json() const { return {{"category", category}, {"brand", brand}, {"link", link}}; }
  /// Throws InputError naming a negative or non-finite weight.
  void validate() const;
};

/// What a rationale of the reasoning format states; empty / 0 where it states nothing readable.
struct RationaleClaims {
  std::string category;
  std::string brand;
  /// How many items back the linked history item is (0: no link stated).
  int64_t link_back = 0;
};

/// Parses "next: <category>. brand: <brand>. link: <strength>, <n> back, <relation>." (brand and
/// link optional; "unknown category" and "link: none." state nothing).
RationaleClaims parse_rationale(const std::string& text);

/// The category tail (last two levels, " > "-joined, as rationales write it) of an item.
std::string category_tail(const ItemMeta& meta);

/// The rationale format (RationaleBuilder writes it, parse_rationale reads it):
/// "next: <category>." (or "next: unknown category."), then " brand: <brand>." when there is one.
std::string rationale_header(const std::string& category, const std::string& brand);
/// " link: none." or " link: <strength>, <back> back, <relation>."
std::string rationale_link(const std::string& strength, int64_t back, const std::string& relation);

/// Each item's category tail and brand: run/knowledge/item_facts.tsv
/// (header "index\tcategory\tbrand", one line per item index in order; tabs and newlines in names
/// are written as spaces).
struct ItemFacts {
  std::vector<std::string> category, brand;
  static ItemFacts from_dataset(const Dataset& data);
  void save(const std::filesystem::path& path) const;
  /// Throws InputError naming the file (and line) that is missing or malformed, or an item count
  /// other than `num_items`.
  static ItemFacts load(const std::filesystem::path& path, int32_t num_items);
};

/// The rationales the reasoning format allows, as a token automaton for the LM's decoding: the
/// header of some catalogue item (category and brand as one choice, so only pairs that exist), then
/// a link (none, or a strength tier, 1..`recent` back and a relation), then </think>. Strings with a
/// piece outside `allowed_ids` (the reasoning vocabulary) are left out.
class RationaleGrammar : public TokenGrammar {
 public:
  RationaleGrammar(const ItemFacts& facts, const SpTokenizer& tok, int64_t recent,
                   const std::vector<int64_t>& allowed_ids, int64_t think_end);
  const std::vector<int64_t>& allowed(int32_t state) const override { return nodes_[state].allowed; }
  int32_t next(int32_t state, int64_t id) const override;
  /// Headers and links kept (for logs and tests).
  size_t headers() const { return headers_; }
  size_t links() const { return links_; }

 private:
  struct Node {
    std::vector<std::pair<int64_t, int32_t>> children;  // sorted by id
    bool terminal = false;
    std::vector<int64_t> allowed;
  };
  /// Adds `ids` below `root`; returns false (adding nothing) when a piece is not allowed.
  bool insert(int32_t root, const std::vector<int>& ids, const std::vector<bool>& ok);
  int32_t child(int32_t node, int64_t id) const;
  std::vector<Node> nodes_;
  int32_t link_root_ = 0;
  int64_t think_end_;
  size_t headers_ = 0, links_ = 0;
};

class RationaleGrounding {
 public:
  /// Reads item_facts.tsv and knowledge.tsv of a knowledge directory; throws InputError naming the
  /// file (and line) that is missing or malformed, or an item count other than `num_items`.
  static RationaleGrounding load(const std::filesystem::path& knowledge_dir, int32_t num_items);
  RationaleGrounding(const ItemFacts& facts, const ItemKnowledge& knowledge);

  /// Adds the bonuses of `rationale`'s claims to `ranking`'s scores and re-sorts it (best first,
  /// ties to the lower item). `history` is the request's (for the linked item).
  void apply(const std::string& rationale, const Sequence& history, const GroundingWeights& weights,
             Ranking& ranking) const;
  /// The strong-pair neighbours of the history item `rationale`'s link points to, strongest (Swing)
  /// first; empty when it states no link or points outside the history.
  const std::vector<ItemIndex>& linked_neighbours(const std::string& rationale, const Sequence& history) const;
  /// The candidates `rationale` proposes: the linked item's neighbours (linked_neighbours), then the
  /// neighbours of the last `recent` history items (latest first, strongest first each) that are in
  /// the category it names. Distinct; may include history items.
  std::vector<ItemIndex> proposals(const std::string& rationale, const Sequence& history, int64_t recent) const;
  int32_t num_items() const { return static_cast<int32_t>(category_.size()); }

 private:
  std::vector<int32_t> category_, brand_;
  std::unordered_map<std::string, int32_t> category_ids_, brand_ids_;
  /// The history item a rationale's claims link to, or -1.
  ItemIndex linked_item(const RationaleClaims& claims, const Sequence& history) const;
  /// Strong-pair neighbours per item: sorted by index (lookups), and strongest first.
  std::vector<std::vector<ItemIndex>> neighbours_, by_strength_;
};

}  // namespace twistar
