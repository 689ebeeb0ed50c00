// Collaborative commonsense: each strong item pair (graph/item_knowledge.h) rendered as short
// natural-language explanations that stay true to the data.
//
// Vocabulary: the *facts* of a pair are what the data supports about it (names, counts, category
// relation, brand, order); a *claim* is one sentence stating one fact, in one of several phrasings
// (its *variant*). Every claim kind has a precondition on the facts, and a claim is only written when
// it holds:
//   co_purchase    always (co_users >= the knowledge stage's minimum);
//   strength       the pair's Swing score tier among all strong pairs (very strong / strong /
//                  moderate, from the score's percentile);
//   same_need      both items have the same, non-empty category path;
//   complementary  the paths differ but share at least their first category;
//   same_brand     both items have the same non-empty brand;
//   order          a_first / co_users >= min_order_share and co_users >= min_order_support;
//   next_step      at least min_next_users users took b right after a (or a right after b).
// Variants are chosen from a hash of (seed, a, b, claim kind, explanation number), so the corpus is
// deterministic and explanations of one pair use different phrasings.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "graph/item_knowledge.h"

namespace twistar {

class ChatExplainer;

struct ExplanationOptions {
  /// Explanations per pair, each with other phrasings (at most the fewest variants of a claim).
  int per_pair = 2;
  /// An order claim needs this share of co-users taking a first...
  double min_order_share = 0.7;
  /// ...and at least this many co-users.
  int min_order_support = 5;
  /// A next-step claim needs at least this many users taking one item right after the other.
  int min_next_users = 2;
  /// Item names longer than this are cut at a word boundary.
  int max_name_chars = 60;
  /// Picks the phrasings.
  uint64_t seed = 42;

  void validate() const;
  nlohmann::json to_json() const;
};

enum class ClaimKind { kCoPurchase, kStrength, kSameNeed, kComplementary, kSameBrand, kOrder, kNextStep };
const char* claim_kind_name(ClaimKind kind);

/// What the data supports about one pair, ready for sentences (and for an LLM prompt).
struct PairFacts {
  ItemIndex a = 0;
  ItemIndex b = 0;
  std::string a_name;
  std::string b_name;
  int32_t co_users = 0;
  int32_t a_first = 0;
  int32_t a_then_b = 0;
  int32_t b_then_a = 0;
  float swing = 0.0f;
  /// Share of strong pairs with a lower Swing score, in [0, 1].
  double swing_percentile = 0.0;
  /// "very strong", "strong" or "moderate".
  std::string strength;
  /// Category paths joined with " > " (empty when the item has none) and their shared prefix.
  std::string a_category;
  std::string b_category;
  std::string shared_category;
  /// The shared brand, empty unless both items have the same one.
  std::string brand;

  nlohmann::json to_json() const;
};

/// A short readable name: the title, else the short text, else "item <raw id>".
std::string item_name(const ItemMeta& meta, const std::string& raw_id, int max_chars);

/// The facts of each pair; strength tiers come from the Swing percentiles over all `pairs`.
std::vector<PairFacts> pair_facts(const std::vector<PairKnowledge>& pairs, const Dataset& data,
                                  const ExplanationOptions& options);

struct Claim {
  ClaimKind kind = ClaimKind::kCoPurchase;
  int variant = 0;
  std::string sentence;
};

struct Explanation {
  ItemIndex a = 0;
  ItemIndex b = 0;
  std::vector<Claim> claims;
  /// The claims' sentences joined, or the endpoint's text when source is "llm".
  std::string text;
  /// "template" or "llm".
  std::string source = "template";
};

/// The claims whose preconditions hold for `facts`, phrased with variant choice `number`.
Explanation explain_pair(const PairFacts& facts, int number, const ExplanationOptions& options);

struct CorpusStats {
  int64_t pairs = 0;
  int64_t explanations = 0;
  int64_t sentences = 0;
  /// Distinct (claim kind, variant) phrasings used.
  int64_t distinct_phrasings = 0;
  /// Explanations written by the chat endpoint, and endpoint calls that failed (templates used).
  int64_t llm_explanations = 0;
  int64_t llm_failures = 0;
  /// Claims per kind.
  std::map<std::string, int64_t> claims;

  nlohmann::json to_json() const;
};

struct Corpus {
  std::vector<PairFacts> facts;
  /// per_pair explanations per pair, pair-major.
  std::vector<Explanation> explanations;
  CorpusStats stats;
};

/// Facts and explanations of every strong pair. With `chat`, the endpoint rewrites each
/// explanation from its facts; where it fails the template text stays.
Corpus build_corpus(const ItemKnowledge& knowledge, const Dataset& data,
                    const ExplanationOptions& options, ChatExplainer* chat = nullptr);

/// One JSON object per line: {"a", "b", "a_id", "b_id", "facts", "claims", "text", "source"}.
/// Written atomically.
void write_corpus_jsonl(const std::filesystem::path& path, const Corpus& corpus,
                        const std::vector<std::string>& item_ids);

}  // namespace twistar
