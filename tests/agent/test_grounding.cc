// Rationale grounding: rationales of the reasoning format are read back into claims, the beam is
// re-scored by the claims a candidate satisfies, and the item facts file round-trips and reports
// bad lines by file and line.
#include <gtest/gtest.h>

#include "agent/grounding.h"
#include "core/error.h"
#include "graph/item_knowledge.h"
#include "test_util.h"

namespace twistar {
namespace {

TEST(ParseRationale, ReadsCategoryBrandAndLink) {
  auto c = parse_rationale("next: Nails > Nail Polish. brand: OPI. link: strong, 3 back, same brand.");
  EXPECT_EQ(c.category, "Nails > Nail Polish");
  EXPECT_EQ(c.brand, "OPI");
  EXPECT_EQ(c.link_back, 3);
  c = parse_rationale("next: Face > Creams. link: none.");
  EXPECT_EQ(c.category, "Face > Creams");
  EXPECT_EQ(c.brand, "");
  EXPECT_EQ(c.link_back, 0);
  c = parse_rationale("next: unknown category. brand: L.A. Colors.");
  EXPECT_EQ(c.category, "");
  EXPECT_EQ(c.brand, "L.A. Colors");
  // What a half-trained model may write: nothing readable, no claim, no crash.
  for (const char* junk : {"", "next:", "brand: ", "link: weak, x back, same need.", "link: strong, -2 back"}) {
    c = parse_rationale(junk);
    EXPECT_EQ(c.category, "") << junk;
    EXPECT_EQ(c.link_back, 0) << junk;
  }
}

// Items: 0 and 1 in "A > B" of brand x, 2 in "A > B" without a brand, 3 in "C > D" of brand x;
// the only knowledge pair links item 4 (in the history) with item 3.
RationaleGrounding small_grounding() {
  ItemKnowledge k;
  PairKnowledge p;
  p.a = 4;
  p.b = 3;
  k.pairs.push_back(p);
  ItemFacts facts{{"A > B", "A > B", "A > B", "C > D", "E"}, {"x", "x", "", "x", "y"}};
  return RationaleGrounding(facts, k);
}

bool same(const Ranking& a, const Ranking& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].item != b[i].item || a[i].score != b[i].score) return false;
  return true;
}

TEST(RationaleGrounding, AddsABonusPerSatisfiedClaimAndReSorts) {
  auto g = small_grounding();
  GroundingWeights w;
  w.category = 1.0;
  w.brand = 0.5;
  w.link = 2.0;
  // Beam order 3, 2, 1, 0 (scores -1 .. -4).
  Ranking beam = {{3, -1.0f}, {2, -2.0f}, {1, -3.0f}, {0, -4.0f}};
  Ranking r = beam;
  g.apply("next: A > B. brand: x. link: none.", {4}, w, r);
  // 3: brand only (-0.5); 2: category (-1); 1: both (-1.5); 0: both (-2.5).
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].item, 3);
  EXPECT_FLOAT_EQ(r[0].score, -0.5f);
  EXPECT_EQ(r[1].item, 2);
  EXPECT_EQ(r[2].item, 1);
  EXPECT_FLOAT_EQ(r[2].score, -1.5f);
  // The link points at the history's last item (4), whose neighbour is 3.
  r = beam;
  g.apply("next: C > D. link: strong, 1 back, other line.", {0, 4}, w, r);
  EXPECT_EQ(r[0].item, 3);
  EXPECT_FLOAT_EQ(r[0].score, 2.0f);
  // Two back is item 0, which has no neighbours; a link beyond the history is ignored.
  r = beam;
  g.apply("next: E. link: strong, 2 back, other line.", {0, 4}, w, r);
  EXPECT_FLOAT_EQ(r[0].score, -1.0f);
  r = beam;
  g.apply("link: strong, 9 back, other line.", {4}, w, r);
  EXPECT_TRUE(same(r, beam));
  // An unknown category or brand matches nothing (not the items without one).
  r = beam;
  g.apply("next: Z > Z. brand: nobody.", {4}, w, r);
  EXPECT_TRUE(same(r, beam));
}

TEST(RationaleGrounding, ProposesTheLinkedItemsNeighboursStrongestFirst) {
  ItemKnowledge k;
  for (auto [b, swing] : {std::pair<ItemIndex, float>{1, 0.2f}, {3, 0.9f}, {0, 0.5f}}) {
    PairKnowledge p;
    p.a = 4;
    p.b = b;
    p.swing = swing;
    k.pairs.push_back(p);
  }
  ItemFacts facts{{"A > B", "A > B", "A > B", "C > D", "E"}, {"x", "x", "", "x", "y"}};
  RationaleGrounding g(facts, k);
  EXPECT_EQ(g.linked_neighbours("next: E. link: strong, 1 back, other line.", {2, 4}),
            (std::vector<ItemIndex>{3, 0, 1}));
  EXPECT_EQ(g.linked_neighbours("next: E. link: strong, 2 back, other line.", {4, 2}),
            (std::vector<ItemIndex>{3, 0, 1}));
  // Item 2 has no neighbours; no link, or one beyond the history, proposes nothing.
  EXPECT_TRUE(g.linked_neighbours("next: E. link: strong, 1 back, other line.", {4, 2}).empty());
  EXPECT_TRUE(g.linked_neighbours("next: E. link: none.", {4}).empty());
  EXPECT_TRUE(g.linked_neighbours("next: E. link: strong, 3 back, other line.", {4}).empty());
  // Proposals: the linked item's neighbours, then the last items' neighbours in the named category.
  EXPECT_EQ(g.proposals("next: A > B. link: none.", {2, 4}, 3), (std::vector<ItemIndex>{0, 1}));
  EXPECT_EQ(g.proposals("next: A > B. link: strong, 1 back, other line.", {2, 4}, 3),
            (std::vector<ItemIndex>{3, 0, 1}));
  EXPECT_EQ(g.proposals("next: C > D. link: none.", {4, 2}, 1), (std::vector<ItemIndex>{}));  // 4 is 2 back
  EXPECT_EQ(g.proposals("next: C > D. link: none.", {4, 2}, 2), (std::vector<ItemIndex>{3}));
  EXPECT_TRUE(g.proposals("next: Q. link: none.", {4}, 3).empty());
  // The bonus lookups still see every neighbour.
  GroundingWeights w;
  w.link = 1.0;
  Ranking r = {{1, -1.0f}, {2, -0.5f}};
  g.apply("next: E. link: strong, 1 back, other line.", {4}, w, r);
  EXPECT_EQ(r[0].item, 1);
  EXPECT_FLOAT_EQ(r[0].score, 0.0f);
}

TEST(RationaleGrounding, LoadsTheKnowledgeDirectoryAndReportsBadLines) {
  testing::TempDir dir;
  GroundingWeights bad;
  bad.link = -1;
  EXPECT_THROW(bad.validate(), InputError);
  try {
    RationaleGrounding::load(dir.path(), 2);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("twistar knowledge"), std::string::npos) << e.what();
  }
  testing::write_text(dir / "item_facts.tsv", "index\tcategory\tbrand\n0\tA > B\tx\n2\tC\t\n");
  try {
    RationaleGrounding::load(dir.path(), 2);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("item_facts.tsv:3"), std::string::npos) << e.what();
  }
  testing::write_text(dir / "item_facts.tsv", "index\tcategory\tbrand\n0\tA > B\tx\n1\tC\t\n");
  ItemKnowledge k;
  save_item_knowledge(dir / "knowledge.tsv", k, {"i0", "i1"});
  EXPECT_THROW(RationaleGrounding::load(dir.path(), 3), InputError);  // item count
  auto g = RationaleGrounding::load(dir.path(), 2);
  EXPECT_EQ(g.num_items(), 2);
  Ranking r = {{1, 0.0f}, {0, -0.5f}};
  GroundingWeights w;
  w.category = 1;
  g.apply("next: A > B.", {}, w, r);
  EXPECT_EQ(r[0].item, 0);
}

}  // namespace
}  // namespace twistar
