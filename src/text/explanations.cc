#include "text/explanations.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/text_io.h"
#include "text/chat_explainer.h"

namespace twistar {
namespace {

// Phrasings per claim kind. Named fields: {a} {b} (quoted names), {co}, {n_both} ("12 shoppers"),
// {strength}, {pct} (Swing percentile), {a_first}, {pct_first}, {leaf}, {a_leaf}, {b_leaf},
// {a_cat}, {shared}, {brand}, {first} {second} {n_next} (next-step direction and count).
using Variants = std::array<const char*, 3>;
constexpr Variants kCoPurchase = {
    "{n_both} bought both {a} and {b}.",
    "Users who buy {a} also buy {b}: {n_both} took both.",
    "The purchase histories of {n_both} contain both {a} and {b}."};
constexpr Variants kStrength = {
    "Their link is {strength}, stronger than {pct}% of linked item pairs.",
    "Among all linked item pairs this is a {strength} link (above {pct}% of them).",
    "Compared with other linked items, the tie between {a} and {b} is {strength}."};
constexpr Variants kSameNeed = {
    "Both are {leaf} products, so they serve the same need.",
    "They fill the same need: both belong to {a_cat}.",
    "{a} and {b} are the same kind of product ({leaf}), bought for the same need."};
constexpr Variants kComplementary = {
    "They complement each other: {a} is in {a_leaf} and {b} in {b_leaf}, both within {shared}.",
    "{a} ({a_leaf}) and {b} ({b_leaf}) are different {shared} products bought together.",
    "Different needs under one roof: {a_leaf} and {b_leaf} both belong to {shared}, so one "
    "complements the other."};
constexpr Variants kSameBrand = {"Both are made by {brand}.",
                                 "They come from the same brand, {brand}.",
                                 "{a} and {b} share the brand {brand}."};
constexpr Variants kOrder = {
    "{a} usually comes first: {a_first} of the {co} shoppers bought it before {b}.",
    "Most shoppers ({a_first} of {co}) bought {a} before {b}.",
    "{b} tends to follow {a}: {pct_first}% of those who bought both got {a} first."};
constexpr Variants kNextStep = {"{n_next} bought {second} right after {first}.",
                                "{second} was the very next purchase after {first} for {n_next}.",
                                "For {n_next}, {first} was directly followed by {second}."};
constexpr int kVariants = 3;

const Variants& variants_of(ClaimKind kind) {
  switch (kind) {
    case ClaimKind::kCoPurchase: return kCoPurchase;
    case ClaimKind::kStrength: return kStrength;
    case ClaimKind::kSameNeed: return kSameNeed;
    case ClaimKind::kComplementary: return kComplementary;
    case ClaimKind::kSameBrand: return kSameBrand;
    case ClaimKind::kOrder: return kOrder;
    case ClaimKind::kNextStep: return kNextStep;
  }
  throw_error("variants_of: unknown claim kind");
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

int pick_variant(uint64_t seed, const PairFacts& f, ClaimKind kind, int number) {
  uint64_t h = splitmix64(seed);
  for (uint64_t v : {static_cast<uint64_t>(f.a), static_cast<uint64_t>(f.b),
                     static_cast<uint64_t>(kind)})
    h = splitmix64(h ^ v);
  return static_cast<int>((h + static_cast<uint64_t>(number)) % kVariants);
}

std::string shoppers(int64_t n) { return fmt::format("{} shopper{}", n, n == 1 ? "" : "s"); }

std::string quoted(const std::string& name) { return "\"" + name + "\""; }

std::string join_path(const std::vector<std::string>& path, size_t depth) {
  std::string out;
  for (size_t k = 0; k < depth && k < path.size(); ++k) {
    if (k) out += " > ";
    out += trim(path[k]);
  }
  return out;
}

std::string leaf_of(const std::string& path) {
  const size_t at = path.rfind(" > ");
  return at == std::string::npos ? path : path.substr(at + 3);
}

std::string strength_tier(double percentile) {
  if (percentile >= 0.9) return "very strong";
  if (percentile >= 0.5) return "strong";
  return "moderate";
}

struct ClaimWriter {
  const PairFacts& f;
  int number;
  uint64_t seed;
  Explanation* out;

  void add(ClaimKind kind, const std::string& first = {}, const std::string& second = {},
           int64_t next = 0) {
    const int v = pick_variant(seed, f, kind, number);
    const auto pct = [](double x) { return static_cast<int>(std::floor(100.0 * x)); };
    std::string sentence = fmt::format(
        fmt::runtime(variants_of(kind)[v]), fmt::arg("a", quoted(f.a_name)),
        fmt::arg("b", quoted(f.b_name)), fmt::arg("co", f.co_users),
        fmt::arg("n_both", shoppers(f.co_users)), fmt::arg("strength", f.strength),
        fmt::arg("pct", pct(f.swing_percentile)), fmt::arg("a_first", f.a_first),
        fmt::arg("pct_first", pct(static_cast<double>(f.a_first) / f.co_users)),
        fmt::arg("leaf", leaf_of(f.a_category)), fmt::arg("a_leaf", leaf_of(f.a_category)),
        fmt::arg("b_leaf", leaf_of(f.b_category)), fmt::arg("a_cat", f.a_category),
        fmt::arg("shared", f.shared_category), fmt::arg("brand", f.brand),
        fmt::arg("first", quoted(first)), fmt::arg("second", quoted(second)),
        fmt::arg("n_next", shoppers(next)));
    out->claims.push_back({kind, v, std::move(sentence)});
  }
};

}  // namespace

const char* claim_kind_name(ClaimKind kind) {
  switch (kind) {
    case ClaimKind::kCoPurchase: return "co_purchase";
    case ClaimKind::kStrength: return "strength";
    case ClaimKind::kSameNeed: return "same_need";
    case ClaimKind::kComplementary: return "complementary";
    case ClaimKind::kSameBrand: return "same_brand";
    case ClaimKind::kOrder: return "order";
    case ClaimKind::kNextStep: return "next_step";
  }
  return "?";
}

void ExplanationOptions::validate() const {
  if (per_pair < 1 || per_pair > kVariants)
    throw_input_error("explain.per_pair: must be in [1, {}], got {}", kVariants, per_pair);
  if (!(min_order_share > 0.5 && min_order_share <= 1.0))
    throw_input_error("explain.min_order_share: must be in (0.5, 1], got {}", min_order_share);
  if (min_order_support < 1)
    throw_input_error("explain.min_order_support: must be >= 1, got {}", min_order_support);
  if (min_next_users < 1)
    throw_input_error("explain.min_next_users: must be >= 1, got {}", min_next_users);
  if (max_name_chars < 8)
    throw_input_error("explain.max_name_chars: must be >= 8, got {}", max_name_chars);
}

nlohmann::json ExplanationOptions::to_json() const {
  return {{"per_pair", per_pair},
          {"min_order_share", min_order_share},
          {"min_order_support", min_order_support},
          {"min_next_users", min_next_users},
          {"max_name_chars", max_name_chars},
          {"seed", seed}};
}

nlohmann::json PairFacts::to_json() const {
  nlohmann::json j = {{"a_name", a_name},
                      {"b_name", b_name},
                      {"co_users", co_users},
                      {"a_first", a_first},
                      {"b_first", co_users - a_first},
                      {"a_then_b", a_then_b},
                      {"b_then_a", b_then_a},
                      {"swing", swing},
                      {"swing_percentile", swing_percentile},
                      {"strength", strength}};
  if (!a_category.empty()) j["a_category"] = a_category;
  if (!b_category.empty()) j["b_category"] = b_category;
  if (!shared_category.empty()) j["shared_category"] = shared_category;
  if (!brand.empty()) j["brand"] = brand;
  return j;
}

std::string item_name(const ItemMeta& meta, const std::string& raw_id, int max_chars) {
  std::string name(trim(meta.title));
  if (name.empty()) name = trim(meta.short_text);
  if (name.empty()) return "item " + raw_id;
  for (char& c : name)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  if (static_cast<int>(name.size()) <= max_chars) return name;
  size_t cut = name.rfind(' ', static_cast<size_t>(max_chars));
  if (cut == std::string::npos || cut == 0) cut = static_cast<size_t>(max_chars);
  // Never cut inside a UTF-8 character.
  while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
  return std::string(trim(std::string_view(name).substr(0, cut))) + "...";
}

std::vector<PairFacts> pair_facts(const std::vector<PairKnowledge>& pairs, const Dataset& data,
                                  const ExplanationOptions& options) {
  std::vector<float> scores;
  scores.reserve(pairs.size());
  for (const auto& p : pairs) scores.push_back(p.swing);
  std::sort(scores.begin(), scores.end());
  std::vector<PairFacts> out;
  out.reserve(pairs.size());
  for (const auto& p : pairs) {
    const ItemMeta& ma = data.items.at(p.a);
    const ItemMeta& mb = data.items.at(p.b);
    PairFacts f;
    f.a = p.a;
    f.b = p.b;
    f.a_name = item_name(ma, data.item_ids.at(p.a), options.max_name_chars);
    f.b_name = item_name(mb, data.item_ids.at(p.b), options.max_name_chars);
    f.co_users = p.co_users;
    f.a_first = p.a_first;
    f.a_then_b = p.a_then_b;
    f.b_then_a = p.b_then_a;
    f.swing = p.swing;
    const auto below = std::lower_bound(scores.begin(), scores.end(), p.swing) - scores.begin();
    f.swing_percentile = static_cast<double>(below) / static_cast<double>(scores.size());
    f.strength = strength_tier(f.swing_percentile);
    f.a_category = join_path(ma.categories, ma.categories.size());
    f.b_category = join_path(mb.categories, mb.categories.size());
    // Recomputed from the metadata rather than trusted from the pairs table.
    f.shared_category = join_path(ma.categories, static_cast<size_t>(shared_category_depth(ma, mb)));
    if (same_brand(ma, mb)) f.brand = trim(ma.brand);
    out.push_back(std::move(f));
  }
  return out;
}

Explanation explain_pair(const PairFacts& f, int number, const ExplanationOptions& options) {
  Explanation e;
  e.a = f.a;
  e.b = f.b;
  ClaimWriter w{f, number, options.seed, &e};
  w.add(ClaimKind::kCoPurchase);
  w.add(ClaimKind::kStrength);
  if (!f.a_category.empty() && f.a_category == f.b_category)
    w.add(ClaimKind::kSameNeed);
  else if (!f.shared_category.empty() && !f.a_category.empty() && !f.b_category.empty())
    w.add(ClaimKind::kComplementary);
  if (!f.brand.empty()) w.add(ClaimKind::kSameBrand);
  if (f.co_users >= options.min_order_support &&
      f.a_first >= options.min_order_share * f.co_users)
    w.add(ClaimKind::kOrder);
  if (f.a_then_b >= options.min_next_users)
    w.add(ClaimKind::kNextStep, f.a_name, f.b_name, f.a_then_b);
  if (f.b_then_a >= options.min_next_users)
    w.add(ClaimKind::kNextStep, f.b_name, f.a_name, f.b_then_a);
  for (const Claim& c : e.claims) e.text += (e.text.empty() ? "" : " ") + c.sentence;
  return e;
}

nlohmann::json CorpusStats::to_json() const {
  return {{"pairs", pairs},
          {"explanations", explanations},
          {"sentences", sentences},
          {"distinct_phrasings", distinct_phrasings},
          {"llm_explanations", llm_explanations},
          {"llm_failures", llm_failures},
          {"claims", claims}};
}

Corpus build_corpus(const ItemKnowledge& knowledge, const Dataset& data,
                    const ExplanationOptions& options, ChatExplainer* chat) {
  options.validate();
  Corpus corpus;
  corpus.facts = pair_facts(knowledge.pairs, data, options);
  std::set<std::pair<int, int>> phrasings;
  CorpusStats& s = corpus.stats;
  for (const PairFacts& f : corpus.facts) {
    for (int k = 0; k < options.per_pair; ++k) {
      Explanation e = explain_pair(f, k, options);
      for (const Claim& c : e.claims) {
        phrasings.insert({static_cast<int>(c.kind), c.variant});
        ++s.claims[claim_kind_name(c.kind)];
      }
      s.sentences += static_cast<int64_t>(e.claims.size());
      if (chat != nullptr) {
        if (auto text = chat->explain(f.to_json(), e.text)) {
          e.text = std::move(*text);
          e.source = "llm";
          ++s.llm_explanations;
        }
      }
      corpus.explanations.push_back(std::move(e));
    }
  }
  s.pairs = static_cast<int64_t>(corpus.facts.size());
  s.explanations = static_cast<int64_t>(corpus.explanations.size());
  s.distinct_phrasings = static_cast<int64_t>(phrasings.size());
  if (chat != nullptr) s.llm_failures = chat->failures();
  return corpus;
}

void write_corpus_jsonl(const std::filesystem::path& path, const Corpus& corpus,
                        const std::vector<std::string>& item_ids) {
  const size_t per_pair =
      corpus.facts.empty() ? 1 : corpus.explanations.size() / corpus.facts.size();
  write_file_atomic(path, [&](std::ostream& os) {
    for (size_t k = 0; k < corpus.explanations.size(); ++k) {
      const Explanation& e = corpus.explanations[k];
      nlohmann::json claims = nlohmann::json::array();
      for (const Claim& c : e.claims) claims.push_back(claim_kind_name(c.kind));
      nlohmann::json j = {{"a", e.a},
                          {"b", e.b},
                          {"a_id", item_ids.at(e.a)},
                          {"b_id", item_ids.at(e.b)},
                          {"facts", corpus.facts.at(k / per_pair).to_json()},
                          {"claims", claims},
                          {"text", e.text},
                          {"source", e.source}};
      os << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    }
  });
}

}  // namespace twistar
