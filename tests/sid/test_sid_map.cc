#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "sid/sid_map.h"
#include "test_util.h"

namespace twistar {
namespace {

CodeMatrix make_codes(const std::vector<std::vector<int32_t>>& rows) {
  CodeMatrix codes(rows.size(), rows.empty() ? 0 : rows[0].size());
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t l = 0; l < rows[i].size(); ++l) codes(i, l) = rows[i][l];
  return codes;
}

TEST(SidMap, WithoutCollisionsSidsAreTheCodes) {
  auto codes = make_codes({{0, 1}, {1, 1}, {2, 0}, {0, 0}});
  auto map = SidMap::build(codes, {3, 2});
  EXPECT_EQ(map.levels(), 2);
  EXPECT_EQ(map.sid(2), (Sid{2, 0}));
  EXPECT_EQ(map.item({0, 0}), 3);
  EXPECT_FALSE(map.item({2, 1}).has_value());
  const auto& s = map.stats();
  EXPECT_EQ(s.collision_rate, 0.0);
  EXPECT_EQ(s.largest_collision_group, 1);
  EXPECT_EQ(s.unique_tuples, 4);
  ASSERT_EQ(s.per_level.size(), 2u);
  EXPECT_EQ(s.per_level[0].used_codes, 3);
  EXPECT_DOUBLE_EQ(s.per_level[0].utilisation, 1.0);
  // Level 0 usage 2/4, 1/4, 1/4.
  EXPECT_NEAR(s.per_level[0].perplexity, std::exp(-(0.5 * std::log(0.5) + 0.5 * std::log(0.25))),
              1e-12);
  EXPECT_NEAR(s.per_level[1].perplexity, 2.0, 1e-12);
}

TEST(SidMap, CollisionsGetAnExtraLevelInIndexOrder) {
  // Items 1, 3, 4 share (5, 2); items 0 and 5 share (1, 1); item 2 is alone.
  auto codes = make_codes({{1, 1}, {5, 2}, {0, 3}, {5, 2}, {5, 2}, {1, 1}});
  auto map = SidMap::build(codes, {8, 4});
  EXPECT_EQ(map.levels(), 3);
  EXPECT_EQ(map.base_levels(), 2);
  EXPECT_EQ(map.sid(1), (Sid{5, 2, 0}));
  EXPECT_EQ(map.sid(3), (Sid{5, 2, 1}));
  EXPECT_EQ(map.sid(4), (Sid{5, 2, 2}));
  EXPECT_EQ(map.sid(0), (Sid{1, 1, 0}));
  EXPECT_EQ(map.sid(5), (Sid{1, 1, 1}));
  EXPECT_EQ(map.sid(2), (Sid{0, 3, 0}));
  EXPECT_EQ(map.level_sizes(), (std::vector<int32_t>{8, 4, 3}));
  for (ItemIndex i = 0; i < 6; ++i) EXPECT_EQ(map.item(map.sid(i)), i);
  const auto& s = map.stats();
  EXPECT_EQ(s.colliding_items, 5);
  EXPECT_NEAR(s.collision_rate, 5.0 / 6.0, 1e-12);
  EXPECT_EQ(s.largest_collision_group, 3);
  EXPECT_EQ(s.unique_tuples, 3);
  EXPECT_EQ(s.levels, 3);
  EXPECT_NEAR(s.per_level[0].utilisation, 3.0 / 8.0, 1e-12);
  EXPECT_EQ(map.trie().max_depth(), 3);
  EXPECT_EQ(map.trie().num_items(), 6);
}

TEST(SidMap, PopularityOrdersCollisionGroups) {
  auto codes = make_codes({{7}, {7}, {7}, {2}});
  auto map = SidMap::build(codes, {}, {5, 9, 5, 1});
  EXPECT_EQ(map.sid(1), (Sid{7, 0}));  // Most popular first.
  EXPECT_EQ(map.sid(0), (Sid{7, 1}));  // Tie with item 2: lower index first.
  EXPECT_EQ(map.sid(2), (Sid{7, 2}));
  EXPECT_EQ(map.level_sizes(), (std::vector<int32_t>{8, 3}));
  EXPECT_THROW(SidMap::build(codes, {}, {1, 2}), InputError);
}

TEST(SidMap, RejectsCodesOutsideTheCodebook) {
  auto codes = make_codes({{0, 4}});
  EXPECT_THROW(SidMap::build(codes, {2, 4}), InputError);
  EXPECT_THROW(SidMap::build(codes, {2}), InputError);
  EXPECT_THROW(SidMap::build(make_codes({{-1, 0}})), InputError);
}

TEST(SidMap, SaveLoadRoundTrip) {
  testing::TempDir dir;
  auto codes = make_codes({{1, 1}, {5, 2}, {0, 3}, {5, 2}});
  auto map = SidMap::build(codes, {8, 4});
  map.save(dir / "sids.json");
  auto loaded = SidMap::load(dir / "sids.json");
  EXPECT_EQ(loaded.sids(), map.sids());
  EXPECT_EQ(loaded.level_sizes(), map.level_sizes());
  EXPECT_EQ(loaded.base_levels(), 2);
  EXPECT_EQ(loaded.stats().to_json(), map.stats().to_json());
  loaded.save(dir / "again.json");
  EXPECT_EQ(read_file(dir / "sids.json"), read_file(dir / "again.json"));
}

TEST(SidMap, LoadErrorsNameTheFile) {
  testing::TempDir dir;
  auto expect_error = [&](const std::string& content, const std::string& fragment) {
    testing::write_text(dir / "m.json", content);
    try {
      SidMap::load(dir / "m.json");
      FAIL() << "accepted " << content;
    } catch (const InputError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("m.json"), std::string::npos) << what;
      EXPECT_NE(what.find(fragment), std::string::npos) << what;
    }
  };
  const std::string head = R"({"format": "twistar-sid-map", "format_version": )";
  expect_error("{", "malformed");
  expect_error(R"({"format": "other"})", "format tag");
  expect_error(head + R"(7, "base_levels": 1, "level_sizes": [4], "sids": []})", "newer");
  expect_error(head + R"(1, "base_levels": 1, "level_sizes": [4], "sids": [[1],[1]]})", "same SID");
  expect_error(head + R"(1, "base_levels": 1, "level_sizes": [4], "sids": [[1,2]]})", "expected 1");
  expect_error(head + R"(1, "base_levels": 1, "level_sizes": [4], "sids": [[9]]})", "outside");
}

TEST(SidMap, StatsOfRandomCodesMatchACount) {
  std::mt19937 rng(4);
  CodeMatrix codes(500, 2);
  for (Eigen::Index i = 0; i < codes.size(); ++i)
    codes.data()[i] = static_cast<int32_t>(rng() % 12);
  auto map = SidMap::build(codes, {12, 12});
  std::map<std::pair<int, int>, int> groups;
  for (int i = 0; i < 500; ++i) ++groups[{codes(i, 0), codes(i, 1)}];
  int colliding = 0, largest = 0;
  for (const auto& [tuple, n] : groups) {
    if (n > 1) colliding += n;
    largest = std::max(largest, n);
  }
  EXPECT_EQ(map.stats().colliding_items, colliding);
  EXPECT_EQ(map.stats().largest_collision_group, largest);
  EXPECT_EQ(map.stats().unique_tuples, static_cast<int32_t>(groups.size()));
  std::set<Sid> unique;
  for (ItemIndex i = 0; i < 500; ++i) unique.insert(map.sid(i));
  EXPECT_EQ(unique.size(), 500u);
}

}  // namespace
}  // namespace twistar
