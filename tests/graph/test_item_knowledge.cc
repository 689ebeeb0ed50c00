#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/split.h"
#include "graph/item_knowledge.h"
#include "test_util.h"

namespace twistar {
namespace {

Dataset make_dataset(std::vector<Sequence> sequences, int items) {
  Dataset d;
  d.name = "knowledge";
  for (int i = 0; i < items; ++i) d.item_ids.push_back("i" + std::to_string(i));
  d.items.resize(items);
  for (size_t u = 0; u < sequences.size(); ++u) d.user_ids.push_back(std::to_string(u));
  d.sequences = std::move(sequences);
  d.reindex();
  return d;
}

Dataset random_dataset(uint32_t seed, int users = 80, int items = 20) {
  std::mt19937 rng(seed);
  std::vector<Sequence> seqs(users);
  for (auto& s : seqs) {
    const int n = 3 + static_cast<int>(rng() % 8);
    for (int k = 0; k < n; ++k) s.push_back(static_cast<ItemIndex>(rng() % items));
  }
  Dataset d = make_dataset(std::move(seqs), items);
  const char* brands[] = {"Acme", "acme ", "Zed", ""};
  for (int i = 0; i < items; ++i) {
    d.items[i].brand = brands[rng() % 4];
    if (rng() % 5 == 0) continue;  // no categories
    d.items[i].categories = {"Top", i % 2 ? "Left" : "Right"};
    if (rng() % 2) d.items[i].categories.push_back(i % 3 ? "Leaf1" : "Leaf2");
  }
  return d;
}

KnowledgeOptions all_pairs() {
  KnowledgeOptions o;
  o.swing.top_k = 1000;
  o.swing.threads = 1;
  return o;
}

// Straight from the definitions, over the training parts.
struct Expected {
  int co = 0, x_first = 0, x_then_y = 0, y_then_x = 0;
};
Expected brute(const std::vector<Sequence>& train, ItemIndex x, ItemIndex y) {
  Expected e;
  for (const auto& s : train) {
    auto fx = std::find(s.begin(), s.end(), x), fy = std::find(s.begin(), s.end(), y);
    if (fx != s.end() && fy != s.end()) {
      ++e.co;
      if (fx < fy) ++e.x_first;
    }
    bool xy = false, yx = false;
    for (size_t t = 1; t < s.size(); ++t) {
      xy |= s[t - 1] == x && s[t] == y;
      yx |= s[t - 1] == y && s[t] == x;
    }
    e.x_then_y += xy;
    e.y_then_x += yx;
  }
  return e;
}

TEST(ItemKnowledge, CountsMatchBruteForceOnTrainingParts) {
  const Dataset d = random_dataset(7);
  const auto train = training_parts(d);
  const ItemKnowledge k = build_item_knowledge(d, all_pairs());
  ASSERT_FALSE(k.pairs.empty());
  std::set<std::pair<int, int>> seen;
  for (const PairKnowledge& p : k.pairs) {
    const Expected e = brute(train, p.a, p.b);
    EXPECT_EQ(p.co_users, e.co);
    EXPECT_EQ(p.a_first, e.x_first);
    EXPECT_EQ(p.b_first, e.co - e.x_first);
    EXPECT_GE(p.a_first, p.b_first);  // orientation
    EXPECT_EQ(p.a_then_b, e.x_then_y);
    EXPECT_EQ(p.b_then_a, e.y_then_x);
    EXPECT_GT(p.swing, 0.0f);
    EXPECT_EQ(p.shared_categories, shared_category_depth(d.items[p.a], d.items[p.b]));
    EXPECT_EQ(p.same_brand, same_brand(d.items[p.a], d.items[p.b]));
    seen.insert({std::min(p.a, p.b), std::max(p.a, p.b)});
  }
  EXPECT_EQ(seen.size(), k.pairs.size()) << "each unordered pair once";
  // With every Swing neighbour kept, the strong pairs are exactly those with >= 2 co-users.
  size_t expected_pairs = 0;
  for (int x = 0; x < d.num_items(); ++x)
    for (int y = x + 1; y < d.num_items(); ++y)
      if (brute(train, x, y).co >= 2) {
        ++expected_pairs;
        EXPECT_TRUE(seen.count({x, y})) << x << "," << y;
      }
  EXPECT_EQ(seen.size(), expected_pairs);
}

TEST(ItemKnowledge, PairsSeenOnlyThroughValidationOrTestTargetsGetNoKnowledge) {
  // Items 5 and 6 are the validation and test targets of every user: the full sequences link them
  // strongly, the training parts never mention them.
  std::vector<Sequence> held_out, in_training;
  for (int u = 0; u < 12; ++u) {
    held_out.push_back({0, 1, 2, 3, 4, 5, 6});
    in_training.push_back({5, 6, 0, 1, 2, 3, 4});  // control: the same pair inside training parts
  }
  auto has_item = [](const ItemKnowledge& k, ItemIndex i) {
    for (const auto& p : k.pairs)
      if (p.a == i || p.b == i) return true;
    return false;
  };
  const ItemKnowledge leak = build_item_knowledge(make_dataset(held_out, 7), all_pairs());
  EXPECT_FALSE(has_item(leak, 5));
  EXPECT_FALSE(has_item(leak, 6));
  EXPECT_TRUE(has_item(leak, 0));
  const ItemKnowledge control = build_item_knowledge(make_dataset(in_training, 7), all_pairs());
  bool linked = false;
  for (const auto& p : control.pairs)
    if (p.a == 5 && p.b == 6) {
      linked = true;
      EXPECT_EQ(p.co_users, 12);
      EXPECT_EQ(p.a_first, 12);
      EXPECT_EQ(p.a_then_b, 12);
    }
  EXPECT_TRUE(linked) << "the control must link 5 -> 6, or the leak check proves nothing";
}

TEST(ItemKnowledge, MinCoUsersAndTopKFilterCandidates) {
  const Dataset d = random_dataset(11);
  KnowledgeOptions strict = all_pairs();
  strict.min_co_users = 4;
  for (const auto& p : build_item_knowledge(d, strict).pairs) EXPECT_GE(p.co_users, 4);
  KnowledgeOptions narrow = all_pairs();
  narrow.swing.top_k = 1;
  const ItemKnowledge k = build_item_knowledge(d, narrow);
  EXPECT_LE(k.pairs.size(), static_cast<size_t>(d.num_items()));
  EXPECT_GT(k.pairs.size(), 0u);
}

TEST(ItemKnowledge, DeterministicAcrossThreads) {
  const Dataset d = random_dataset(3, 200, 40);
  KnowledgeOptions one = all_pairs(), two = all_pairs();
  one.swing.top_k = two.swing.top_k = 5;
  two.swing.threads = 2;
  EXPECT_EQ(build_item_knowledge(d, one).pairs, build_item_knowledge(d, two).pairs);
}

TEST(ItemKnowledge, BrandAndCategoryComparisons) {
  ItemMeta x, y;
  x.brand = " Acme";
  y.brand = "ACME ";
  EXPECT_TRUE(same_brand(x, y));
  y.brand = "Acme Pro";
  EXPECT_FALSE(same_brand(x, y));
  x.brand = y.brand = "";
  EXPECT_FALSE(same_brand(x, y)) << "two missing brands are not the same brand";
  x.categories = {"Makeup", "Lips", "Lipstick"};
  y.categories = {"Makeup", "Lips ", "Lip Liner"};
  EXPECT_EQ(shared_category_depth(x, y), 2);
  y.categories = {"Skin Care"};
  EXPECT_EQ(shared_category_depth(x, y), 0);
  y.categories = x.categories;
  EXPECT_EQ(shared_category_depth(x, y), 3);
}

TEST(ItemKnowledge, TsvRoundTripAndErrors) {
  const Dataset d = random_dataset(5);
  const ItemKnowledge k = build_item_knowledge(d, all_pairs());
  testing::TempDir dir;
  save_item_knowledge(dir / "k.tsv", k, d.item_ids);
  EXPECT_EQ(load_item_knowledge(dir / "k.tsv").pairs, k.pairs);
  std::string text = read_file(dir / "k.tsv");
  const size_t second_line = text.find('\n', text.find('\n') + 1) + 1;
  text.insert(second_line, "1\t2\ti1\ti2\t0.5\tmany\t1\t1\t0\t0\t0\t0\n");
  testing::write_text(dir / "bad.tsv", text);
  try {
    load_item_knowledge(dir / "bad.tsv");
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("bad.tsv:3"), std::string::npos) << what;
    EXPECT_NE(what.find("co_users"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace twistar
