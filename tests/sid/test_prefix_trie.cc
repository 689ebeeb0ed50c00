#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "core/error.h"
#include "sid/prefix_trie.h"

namespace twistar {
namespace {

// The oracle: every prefix of every SID mapped to its set of next codes, and full SIDs to items.
struct BruteForce {
  std::map<Sid, std::set<SidCode>> next;
  std::map<Sid, ItemIndex> items;

  explicit BruteForce(const std::vector<Sid>& sids) {
    for (size_t i = 0; i < sids.size(); ++i) {
      items[sids[i]] = static_cast<ItemIndex>(i);
      for (size_t d = 0; d <= sids[i].size(); ++d) {
        Sid prefix(sids[i].begin(), sids[i].begin() + d);
        auto& set = next[prefix];
        if (d < sids[i].size()) set.insert(sids[i][d]);
      }
    }
  }
};

std::vector<Sid> random_fixed_length(std::mt19937& rng, int n, const std::vector<int>& sizes) {
  std::set<Sid> set;
  while (static_cast<int>(set.size()) < n) {
    Sid sid;
    for (int k : sizes) sid.push_back(static_cast<SidCode>(rng() % k));
    set.insert(sid);
  }
  std::vector<Sid> sids(set.begin(), set.end());
  std::shuffle(sids.begin(), sids.end(), rng);
  return sids;
}

// A prefix-free set of mixed lengths: grow a random tree and take its leaves.
std::vector<Sid> random_variable_length(std::mt19937& rng, int max_depth, int max_children) {
  std::vector<Sid> leaves;
  std::vector<Sid> frontier{{}};
  while (!frontier.empty()) {
    Sid node = frontier.back();
    frontier.pop_back();
    bool stop = !node.empty() && (static_cast<int>(node.size()) == max_depth || rng() % 3 == 0);
    if (stop) {
      leaves.push_back(node);
      continue;
    }
    std::set<SidCode> codes;
    int want = 1 + static_cast<int>(rng() % max_children);
    while (static_cast<int>(codes.size()) < want) codes.insert(static_cast<SidCode>(rng() % 50));
    for (SidCode c : codes) {
      Sid child = node;
      child.push_back(c);
      frontier.push_back(child);
    }
  }
  std::shuffle(leaves.begin(), leaves.end(), rng);
  return leaves;
}

// Walks every oracle prefix through both APIs, then random prefixes that are mostly absent.
void check_against_oracle(const PrefixTrie& trie, const std::vector<Sid>& sids, std::mt19937& rng) {
  BruteForce oracle(sids);
  ASSERT_EQ(trie.num_items(), static_cast<int32_t>(sids.size()));
  ASSERT_EQ(trie.num_nodes(), static_cast<int32_t>(oracle.next.size()));
  for (const auto& [prefix, codes] : oracle.next) {
    auto allowed = trie.allowed(prefix);
    ASSERT_EQ(std::vector<SidCode>(allowed.begin(), allowed.end()),
              std::vector<SidCode>(codes.begin(), codes.end()));
    ASSERT_TRUE(trie.contains(prefix));
    auto node = trie.find(prefix);
    auto it = oracle.items.find(prefix);
    ASSERT_EQ(trie.item_at(prefix).has_value(), it != oracle.items.end());
    ASSERT_EQ(trie.is_leaf(node), it != oracle.items.end());
    if (it != oracle.items.end()) ASSERT_EQ(trie.leaf_item(node), it->second);
    for (int32_t i = 0; i < allowed.size(); ++i)
      ASSERT_EQ(trie.child(node, allowed.code(i)), allowed.child(i));
  }
  int32_t max_code = 0;
  for (int32_t k : trie.level_sizes()) max_code = std::max(max_code, k);
  for (int trial = 0; trial < 3000; ++trial) {
    Sid prefix;
    int len = static_cast<int>(rng() % (trie.max_depth() + 2));
    for (int d = 0; d < len; ++d) prefix.push_back(static_cast<SidCode>(rng() % (max_code + 3)));
    // Half the trials start from a real SID so that near misses are common.
    if (trial % 2 == 0 && !sids.empty()) {
      const Sid& s = sids[rng() % sids.size()];
      for (size_t d = 0; d < std::min(prefix.size(), s.size()) / 2 + 1 && d < prefix.size(); ++d)
        prefix[d] = s[d];
    }
    auto it = oracle.next.find(prefix);
    ASSERT_EQ(trie.contains(prefix), it != oracle.next.end());
    if (it == oracle.next.end()) {
      ASSERT_TRUE(trie.allowed(prefix).empty());
      ASSERT_FALSE(trie.item_at(prefix).has_value());
      ASSERT_EQ(trie.find(prefix), PrefixTrie::kNoNode);
    }
  }
}

TEST(Trie, MatchesBruteForceOnRandomFixedLengthSets) {
  std::mt19937 rng(7);
  const std::vector<std::vector<int>> shapes = {
      {4}, {3, 5}, {8, 8, 8}, {256, 256, 256}, {20, 3, 40, 2}, {256, 256, 256, 256}};
  for (const auto& sizes : shapes) {
    double space = 1;
    for (int k : sizes) space *= k;
    int n = static_cast<int>(std::min(space * 0.6, 3000.0));
    auto sids = random_fixed_length(rng, n, sizes);
    PrefixTrie trie(sids);
    SCOPED_TRACE("levels " + std::to_string(sizes.size()));
    check_against_oracle(trie, sids, rng);
    ASSERT_EQ(trie.max_depth(), static_cast<int32_t>(sizes.size()));
    for (size_t l = 0; l < sizes.size(); ++l) ASSERT_LE(trie.level_sizes()[l], sizes[l]);
  }
}

TEST(Trie, MatchesBruteForceOnVariableLengthSets) {
  std::mt19937 rng(11);
  for (int round = 0; round < 20; ++round) {
    auto sids = random_variable_length(rng, 2 + round % 4, 6);
    PrefixTrie trie(sids);
    check_against_oracle(trie, sids, rng);
  }
}

TEST(Trie, ExplicitItemsAndCodeMatrix) {
  std::vector<Sid> sids = {{1, 2}, {1, 0}, {3, 3}};
  PrefixTrie trie(sids, {10, 20, 30});
  EXPECT_EQ(trie.item_at({1, 0}), 20);
  EXPECT_EQ(trie.item_at({3, 3}), 30);
  EXPECT_FALSE(trie.item_at({1}).has_value());
  auto root = trie.children(trie.root());
  EXPECT_EQ(std::vector<SidCode>(root.begin(), root.end()), (std::vector<SidCode>{1, 3}));

  CodeMatrix codes(3, 2);
  codes << 1, 2, 1, 0, 3, 3;
  auto from_codes = PrefixTrie::from_codes(codes);
  EXPECT_EQ(from_codes.item_at({1, 0}), 1);
  EXPECT_EQ(from_codes.num_nodes(), 6);
  EXPECT_EQ(from_codes.level_sizes(), (std::vector<int32_t>{4, 4}));
}

TEST(Trie, EmptyTrieAllowsNothing) {
  PrefixTrie trie;
  EXPECT_TRUE(trie.allowed({}).empty());
  EXPECT_TRUE(trie.contains({}));
  EXPECT_FALSE(trie.contains({0}));
  EXPECT_FALSE(trie.is_leaf(trie.root()));
  PrefixTrie built(std::vector<Sid>{});
  EXPECT_EQ(built.num_nodes(), 1);
  EXPECT_EQ(built.max_depth(), 0);
}

TEST(Trie, RejectsDuplicatesPrefixesAndBadCodes) {
  try {
    PrefixTrie trie(std::vector<Sid>{{1, 2}, {0, 0}, {1, 2}});
    FAIL() << "duplicate accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("items 0 and 2 have the same SID"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(PrefixTrie(std::vector<Sid>{{1}, {1, 2}}), InputError);
  EXPECT_THROW(PrefixTrie(std::vector<Sid>{{1, -2}}), InputError);
  EXPECT_THROW(PrefixTrie(std::vector<Sid>{{}}), InputError);
  EXPECT_THROW(PrefixTrie(std::vector<Sid>{{1}}, {0, 1}), InputError);
}

TEST(Trie, MemoryIsAboutTwelveBytesPerNode) {
  std::mt19937 rng(5);
  auto sids = random_fixed_length(rng, 20000, {256, 256, 256, 8});
  PrefixTrie trie(sids);
  EXPECT_LT(trie.memory_bytes(), static_cast<size_t>(trie.num_nodes()) * 12 + 4096);
}

}  // namespace
}  // namespace twistar
