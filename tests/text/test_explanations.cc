#include <gtest/gtest.h>

#include <random>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "text/explanations.h"
#include "test_util.h"

namespace twistar {
namespace {

// Items with known metadata: 0 and 1 share brand and leaf, 2 shares only "Makeup" with them,
// 3 has neither brand nor category nor text, 4 has the same brand as 2 in other letter case.
Dataset catalogue() {
  Dataset d;
  d.name = "catalogue";
  const std::vector<std::vector<std::string>> cats = {{"Makeup", "Lips", "Lipstick"},
                                                      {"Makeup", "Lips", "Lipstick"},
                                                      {"Makeup", "Eyes", "Mascara"},
                                                      {},
                                                      {"Skin Care", "Face"}};
  const std::vector<std::string> brands = {"Acme", "Acme", "Zed", "", "ZED"};
  const std::vector<std::string> titles = {"Velvet Lipstick", "", "", "", "Day Cream"};
  const std::vector<std::string> short_texts = {"", "matte lip colour", "lash mascara", "", ""};
  for (int i = 0; i < 5; ++i) {
    d.item_ids.push_back("B00" + std::to_string(i));
    ItemMeta m;
    m.categories = cats[i];
    m.brand = brands[i];
    m.title = titles[i];
    m.short_text = short_texts[i];
    d.items.push_back(m);
  }
  d.sequences = {{0, 1, 2}};
  d.user_ids = {"u"};
  d.reindex();
  return d;
}

PairKnowledge pair(ItemIndex a, ItemIndex b, int co, int a_first, int a_then_b, float swing) {
  PairKnowledge p;
  p.a = a;
  p.b = b;
  p.co_users = co;
  p.a_first = a_first;
  p.b_first = co - a_first;
  p.a_then_b = a_then_b;
  p.swing = swing;
  return p;
}

std::set<ClaimKind> kinds(const Explanation& e) {
  std::set<ClaimKind> out;
  for (const auto& c : e.claims) out.insert(c.kind);
  return out;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(Explanations, ClaimsFollowTheFacts) {
  const Dataset d = catalogue();
  ItemKnowledge k;
  k.pairs = {pair(0, 1, 10, 9, 3, 0.9f), pair(0, 2, 10, 6, 0, 0.5f), pair(0, 3, 2, 2, 0, 0.1f),
             pair(2, 4, 3, 3, 1, 0.2f)};
  ExplanationOptions o;
  o.per_pair = 1;
  const Corpus c = build_corpus(k, d, o);
  ASSERT_EQ(c.explanations.size(), 4u);
  using K = ClaimKind;
  // Same brand and leaf, 90% first with support 10, 3 next-step users.
  EXPECT_EQ(kinds(c.explanations[0]),
            (std::set<K>{K::kCoPurchase, K::kStrength, K::kSameNeed, K::kSameBrand, K::kOrder,
                         K::kNextStep}));
  EXPECT_TRUE(contains(c.explanations[0].text, "Acme"));
  EXPECT_TRUE(contains(c.explanations[0].text, "10 shoppers"));
  EXPECT_TRUE(contains(c.explanations[0].text, "\"Velvet Lipstick\""));
  EXPECT_TRUE(contains(c.explanations[0].text, "\"matte lip colour\""));  // short_text fallback
  // Siblings under Makeup, other brands, 60% is no order.
  EXPECT_EQ(kinds(c.explanations[1]), (std::set<K>{K::kCoPurchase, K::kStrength, K::kComplementary}));
  EXPECT_FALSE(contains(c.explanations[1].text, "Zed"));
  EXPECT_FALSE(contains(c.explanations[1].text, "Acme"));
  // Item 3 has no category and no brand; 100% first but support 2 < 5.
  EXPECT_EQ(kinds(c.explanations[2]), (std::set<K>{K::kCoPurchase, K::kStrength}));
  EXPECT_TRUE(contains(c.explanations[2].text, "\"item B003\""));
  EXPECT_TRUE(contains(c.explanations[2].text, "2 shoppers"));
  // Brands equal up to case; categories unrelated; one next-step user is below the minimum of 2.
  EXPECT_EQ(kinds(c.explanations[3]), (std::set<K>{K::kCoPurchase, K::kStrength, K::kSameBrand}));
  // Strength tiers from the Swing percentile: 0.9 is the top of four scores.
  EXPECT_EQ(c.facts[0].strength, "strong");  // 3/4 of scores below it: >= 0.5, < 0.9
  EXPECT_EQ(c.facts[2].strength, "moderate");
  EXPECT_EQ(c.stats.claims.at("same_brand"), 2);
  EXPECT_EQ(c.stats.claims.at("order"), 1);
  // The text is the claims' sentences, in order.
  for (const auto& e : c.explanations) {
    std::string joined;
    for (const auto& claim : e.claims) joined += (joined.empty() ? "" : " ") + claim.sentence;
    EXPECT_EQ(e.text, joined);
    EXPECT_EQ(e.source, "template");
  }
}

// Random data: every emitted claim is checked against the metadata and counts directly.
TEST(Explanations, EveryClaimIsBackedOnRandomData) {
  std::mt19937 rng(9);
  Dataset d;
  const int items = 30;
  const char* brands[] = {"Acme", "Zed", "", "Kit"};
  const char* mids[] = {"Lips", "Eyes", "Face"};
  for (int i = 0; i < items; ++i) {
    d.item_ids.push_back("x" + std::to_string(i));
    ItemMeta m;
    m.brand = brands[rng() % 4];
    if (rng() % 4) m.categories = {"Makeup", mids[rng() % 3], "L" + std::to_string(rng() % 2)};
    m.short_text = "thing " + std::to_string(i);
    d.items.push_back(m);
  }
  for (int u = 0; u < 150; ++u) {
    Sequence s;
    const int n = 3 + static_cast<int>(rng() % 8);
    for (int t = 0; t < n; ++t) s.push_back(static_cast<ItemIndex>(rng() % 12 + (t % 2) * (rng() % 18)));
    d.sequences.push_back(s);
    d.user_ids.push_back(std::to_string(u));
  }
  d.reindex();
  KnowledgeOptions ko;
  ko.swing.threads = 1;
  const ItemKnowledge k = build_item_knowledge(d, ko);
  ExplanationOptions o;
  o.per_pair = 3;
  o.min_order_support = 3;
  const Corpus c = build_corpus(k, d, o);
  ASSERT_EQ(c.explanations.size(), 3 * k.pairs.size());
  std::map<ClaimKind, int> seen;
  for (size_t n = 0; n < c.explanations.size(); ++n) {
    const Explanation& e = c.explanations[n];
    const PairKnowledge& p = k.pairs[n / 3];
    const ItemMeta &ma = d.items[p.a], &mb = d.items[p.b];
    ASSERT_EQ(e.a, p.a);
    for (const Claim& claim : e.claims) {
      ++seen[claim.kind];
      switch (claim.kind) {
        case ClaimKind::kCoPurchase:
          EXPECT_TRUE(contains(claim.sentence, std::to_string(p.co_users) + " shopper")) << claim.sentence;
          break;
        case ClaimKind::kStrength: break;
        case ClaimKind::kSameNeed:
          EXPECT_FALSE(ma.categories.empty());
          EXPECT_EQ(ma.categories, mb.categories) << claim.sentence;
          break;
        case ClaimKind::kComplementary:
          EXPECT_FALSE(ma.categories.empty() || mb.categories.empty());
          EXPECT_NE(ma.categories, mb.categories) << claim.sentence;
          EXPECT_EQ(ma.categories[0], mb.categories[0]) << claim.sentence;
          break;
        case ClaimKind::kSameBrand:
          EXPECT_FALSE(ma.brand.empty());
          EXPECT_EQ(ma.brand, mb.brand) << claim.sentence;
          EXPECT_TRUE(contains(claim.sentence, ma.brand));
          break;
        case ClaimKind::kOrder:
          EXPECT_GE(p.co_users, 3);
          EXPECT_GE(p.a_first, 0.7 * p.co_users) << claim.sentence;
          break;
        case ClaimKind::kNextStep:
          EXPECT_TRUE((p.a_then_b >= 2 && contains(claim.sentence, std::to_string(p.a_then_b))) ||
                      (p.b_then_a >= 2 && contains(claim.sentence, std::to_string(p.b_then_a))))
              << claim.sentence;
          break;
      }
    }
    // Completeness of the brand claim: same brand always says so, others never mention a brand.
    const bool brand_claim = kinds(e).count(ClaimKind::kSameBrand) > 0;
    EXPECT_EQ(brand_claim, !ma.brand.empty() && ma.brand == mb.brand);
  }
  for (ClaimKind kind : {ClaimKind::kCoPurchase, ClaimKind::kSameNeed, ClaimKind::kComplementary,
                         ClaimKind::kSameBrand, ClaimKind::kOrder, ClaimKind::kNextStep})
    EXPECT_GT(seen[kind], 0) << claim_kind_name(kind) << " never exercised";
}

TEST(Explanations, PhrasingsAreDeterministicAndVaried) {
  const Dataset d = catalogue();
  ItemKnowledge k;
  k.pairs = {pair(0, 1, 10, 9, 3, 0.9f), pair(0, 2, 10, 6, 0, 0.5f)};
  ExplanationOptions o;
  o.per_pair = 3;
  const Corpus c1 = build_corpus(k, d, o), c2 = build_corpus(k, d, o);
  ASSERT_EQ(c1.explanations.size(), 6u);
  for (size_t n = 0; n < 6; ++n) EXPECT_EQ(c1.explanations[n].text, c2.explanations[n].text);
  // The three explanations of a pair use three different variants of every claim.
  for (size_t first : {0u, 3u}) {
    const auto& e0 = c1.explanations[first];
    for (size_t m = 0; m < e0.claims.size(); ++m) {
      std::set<int> variants;
      for (size_t n = first; n < first + 3; ++n) variants.insert(c1.explanations[n].claims[m].variant);
      EXPECT_EQ(variants.size(), 3u);
    }
  }
  EXPECT_GE(c1.stats.distinct_phrasings, 3 * 6);
  o.seed = 7;
  const Corpus c3 = build_corpus(k, d, o);
  bool differs = false;
  for (size_t n = 0; n < 6; ++n) differs |= c3.explanations[n].text != c1.explanations[n].text;
  EXPECT_TRUE(differs) << "another seed picks other phrasings";
}

TEST(Explanations, ItemNames) {
  ItemMeta m;
  EXPECT_EQ(item_name(m, "B01", 20), "item B01");
  m.short_text = "  tiny lip balm ";
  EXPECT_EQ(item_name(m, "B01", 20), "tiny lip balm");
  m.title = "A Very Long Product Title That Goes On";
  EXPECT_EQ(item_name(m, "B01", 20), "A Very Long Product...");
}

TEST(Explanations, CorpusJsonl) {
  const Dataset d = catalogue();
  ItemKnowledge k;
  k.pairs = {pair(0, 1, 10, 9, 3, 0.9f), pair(2, 4, 3, 3, 1, 0.2f)};
  ExplanationOptions o;
  const Corpus c = build_corpus(k, d, o);
  testing::TempDir dir;
  write_corpus_jsonl(dir / "corpus.jsonl", c, d.item_ids);
  std::istringstream in(read_file(dir / "corpus.jsonl"));
  std::string line;
  size_t n = 0;
  for (; std::getline(in, line); ++n) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["a"], c.explanations[n].a);
    EXPECT_EQ(j["b_id"], d.item_ids[c.explanations[n].b]);
    EXPECT_EQ(j["text"], c.explanations[n].text);
    EXPECT_EQ(j["facts"]["co_users"], n < 2 ? 10 : 3);
    EXPECT_EQ(j["facts"].contains("brand"), true);
  }
  EXPECT_EQ(n, 4u);
}

}  // namespace
}  // namespace twistar
