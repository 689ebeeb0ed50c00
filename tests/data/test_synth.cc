// The synthetic generator: determinism, shape, the structure it promises (power law, successors,
// categories), the written files and option validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "core/error.h"
#include "data/loader.h"
#include "data/synth.h"
#include "test_util.h"

namespace twistar {
namespace {

SynthOptions small_options() {
  SynthOptions opt;
  opt.users = 400;
  opt.items = 200;
  return opt;
}

void expect_same_meta(const ItemMeta& a, const ItemMeta& b, size_t item) {
  EXPECT_EQ(a.title, b.title) << "item " << item;
  EXPECT_EQ(a.brand, b.brand) << "item " << item;
  EXPECT_EQ(a.categories, b.categories) << "item " << item;
  EXPECT_EQ(a.short_text, b.short_text) << "item " << item;
  EXPECT_EQ(a.description, b.description) << "item " << item;
}

/// Share of consecutive pairs (a, b) in the selected users where b is a successor of a.
double successor_share(const Dataset& d, const SynthTruth& truth,
                       const std::function<bool(size_t)>& use_user) {
  size_t pairs = 0, hits = 0;
  for (size_t u = 0; u < d.sequences.size(); ++u) {
    if (!use_user(u)) continue;
    const Sequence& s = d.sequences[u];
    for (size_t k = 1; k < s.size(); ++k) {
      const auto& succ = truth.successors[s[k - 1]];
      hits += std::find(succ.begin(), succ.end(), s[k]) != succ.end();
      ++pairs;
    }
  }
  return pairs == 0 ? 0.0 : static_cast<double>(hits) / pairs;
}

TEST(SynthTest, SameSeedSameDataset) {
  SynthTruth ta, tb;
  Dataset a = generate_synthetic(small_options(), &ta);
  Dataset b = generate_synthetic(small_options(), &tb);
  EXPECT_EQ(a.sequences, b.sequences);
  EXPECT_EQ(a.item_ids, b.item_ids);
  EXPECT_EQ(a.user_ids, b.user_ids);
  ASSERT_EQ(a.items.size(), b.items.size());
  for (size_t i = 0; i < a.items.size(); ++i) expect_same_meta(a.items[i], b.items[i], i);
  EXPECT_EQ(ta.successors, tb.successors);
  // The overload without truth generates the same data.
  EXPECT_EQ(generate_synthetic(small_options()).sequences, a.sequences);
}

TEST(SynthTest, DifferentSeedsDiffer) {
  SynthOptions opt = small_options();
  Dataset a = generate_synthetic(opt);
  opt.seed = 8;
  Dataset b = generate_synthetic(opt);
  EXPECT_NE(a.sequences, b.sequences);
  size_t same_titles = 0;
  for (size_t i = 0; i < a.items.size(); ++i) same_titles += a.items[i].title == b.items[i].title;
  EXPECT_LT(same_titles, a.items.size() / 2);
}

TEST(SynthTest, CatalogueDoesNotDependOnUserCount) {
  SynthOptions opt = small_options();
  SynthTruth ta, tb;
  Dataset a = generate_synthetic(opt, &ta);
  opt.users = 50;
  Dataset b = generate_synthetic(opt, &tb);
  EXPECT_EQ(ta.successors, tb.successors);
  for (size_t i = 0; i < a.items.size(); ++i) expect_same_meta(a.items[i], b.items[i], i);
}

TEST(SynthTest, SizesAndLengths) {
  SynthOptions opt;  // defaults
  Dataset d = generate_synthetic(opt);
  EXPECT_EQ(d.num_users(), opt.users);
  EXPECT_EQ(d.num_items(), opt.items);
  EXPECT_EQ(d.user_ids.size(), d.sequences.size());
  size_t at_min = 0;
  for (const auto& s : d.sequences) {
    ASSERT_GE(s.size(), static_cast<size_t>(opt.min_length));
    ASSERT_LE(s.size(), static_cast<size_t>(opt.max_length));
    at_min += s.size() == static_cast<size_t>(opt.min_length);
    for (size_t k = 1; k < s.size(); ++k) ASSERT_NE(s[k], s[k - 1]) << "consecutive duplicate";
  }
  const double mean = static_cast<double>(d.num_interactions()) / d.num_users();
  EXPECT_GT(mean, 7.5);
  EXPECT_LT(mean, 11.0);
  // Skewed towards the short end: the minimum length is the most common one.
  EXPECT_GT(at_min, d.sequences.size() / 5);
}

TEST(SynthTest, CustomLengthBounds) {
  SynthOptions opt = small_options();
  opt.min_length = 3;
  opt.max_length = 4;
  Dataset d = generate_synthetic(opt);
  std::set<size_t> lengths;
  for (const auto& s : d.sequences) lengths.insert(s.size());
  EXPECT_EQ(lengths, (std::set<size_t>{3, 4}));
}

TEST(SynthTest, RepeatsAreRare) {
  Dataset d = generate_synthetic(SynthOptions{});
  size_t repeats = 0;
  for (const auto& s : d.sequences)
    for (size_t k = 1; k < s.size(); ++k)
      repeats += std::find(s.begin(), s.begin() + k, s[k]) != s.begin() + k;
  EXPECT_LT(static_cast<double>(repeats) / d.num_interactions(), 0.03);
}

TEST(SynthTest, EveryItemHasMetadata) {
  Dataset d = generate_synthetic(small_options());
  std::set<std::string> ids, titles;
  for (ItemIndex i = 0; i < d.num_items(); ++i) {
    const ItemMeta& m = d.items[i];
    EXPECT_FALSE(m.title.empty());
    EXPECT_FALSE(m.brand.empty());
    EXPECT_FALSE(m.short_text.empty());
    EXPECT_FALSE(m.description.empty());
    ASSERT_EQ(m.categories.size(), 2u) << "item " << i;
    EXPECT_NE(m.title.find(m.brand), std::string::npos) << m.title;
    ids.insert(d.item_ids[i]);
    titles.insert(m.title);
    EXPECT_EQ(d.find_item(d.item_ids[i]), i);
  }
  EXPECT_EQ(d.item_ids[0], "S000001");
  EXPECT_EQ(d.user_ids[0], "U000001");
  EXPECT_EQ(ids.size(), d.item_ids.size());
  EXPECT_EQ(titles.size(), d.items.size());
}

TEST(SynthTest, BrandsBelongMostlyToOneTopCategory) {
  Dataset d = generate_synthetic(SynthOptions{});
  std::map<std::string, std::map<std::string, int>> tops_of_brand;
  for (const auto& m : d.items) ++tops_of_brand[m.brand][m.categories[0]];
  size_t home = 0;
  for (const auto& [brand, tops] : tops_of_brand) {
    int best = 0;
    for (const auto& [top, count] : tops) best = std::max(best, count);
    home += best;
  }
  EXPECT_GT(static_cast<double>(home) / d.num_items(), 0.75);
  std::set<std::string> tops, leaves;
  for (const auto& m : d.items) {
    tops.insert(m.categories[0]);
    leaves.insert(m.categories[1]);
  }
  EXPECT_EQ(leaves.size(), 20u);
  EXPECT_GE(tops.size(), 2u);
  EXPECT_LT(tops.size(), leaves.size());
}

TEST(SynthTest, ManyCategoriesGetDistinctNames) {
  SynthOptions opt = small_options();
  opt.categories = 45;  // more than the built-in vocabulary names
  SynthTruth truth;
  Dataset d = generate_synthetic(opt, &truth);
  EXPECT_EQ(std::set<std::string>(truth.leaf_names.begin(), truth.leaf_names.end()).size(), 45u);
  std::set<std::vector<std::string>> paths;
  for (const auto& m : d.items) paths.insert(m.categories);
  EXPECT_EQ(paths.size(), 45u);  // every leaf holds at least one item
}

TEST(SynthTest, PopularityFollowsPowerLaw) {
  Dataset d = generate_synthetic(SynthOptions{});
  std::vector<size_t> counts(d.num_items(), 0);
  for (const auto& s : d.sequences)
    for (ItemIndex i : s) ++counts[i];
  std::sort(counts.rbegin(), counts.rend());
  size_t top = 0;
  for (size_t k = 0; k < counts.size() / 10; ++k) top += counts[k];
  EXPECT_GT(static_cast<double>(top) / d.num_interactions(), 0.3);

  // With a flat popularity the head loses most of that share.
  SynthOptions flat;
  flat.popularity_exponent = 0.0;
  flat.predictable_share = 0.0;
  Dataset f = generate_synthetic(flat);
  std::fill(counts.begin(), counts.end(), 0);
  for (const auto& s : f.sequences)
    for (ItemIndex i : s) ++counts[i];
  std::sort(counts.rbegin(), counts.rend());
  top = 0;
  for (size_t k = 0; k < counts.size() / 10; ++k) top += counts[k];
  EXPECT_LT(static_cast<double>(top) / f.num_interactions(), 0.2);
}

TEST(SynthTest, SuccessorsAreRelatedItems) {
  SynthOptions opt;
  SynthTruth truth;
  generate_synthetic(opt, &truth);
  ASSERT_EQ(truth.successors.size(), static_cast<size_t>(opt.items));
  ASSERT_EQ(truth.complement.size(), static_cast<size_t>(opt.categories));
  size_t related = 0, total = 0;
  for (size_t a = 0; a < truth.successors.size(); ++a) {
    const auto& succ = truth.successors[a];
    ASSERT_EQ(succ.size(), static_cast<size_t>(opt.successors));
    EXPECT_EQ(std::set<ItemIndex>(succ.begin(), succ.end()).size(), succ.size());
    for (ItemIndex b : succ) {
      ASSERT_NE(b, static_cast<ItemIndex>(a));
      const int32_t leaf = truth.item_leaf[a];
      related += truth.item_leaf[b] == leaf || truth.item_leaf[b] == truth.complement[leaf];
      ++total;
    }
  }
  EXPECT_GT(static_cast<double>(related) / total, 0.8);
  for (size_t c = 0; c < truth.complement.size(); ++c)
    EXPECT_NE(truth.complement[c], static_cast<int32_t>(c));
}

TEST(SynthTest, PredictableUsersFollowSuccessors) {
  SynthOptions opt;
  SynthTruth truth;
  Dataset d = generate_synthetic(opt, &truth);
  ASSERT_EQ(truth.predictable.size(), d.sequences.size());
  const double predictable =
      successor_share(d, truth, [&](size_t u) { return truth.predictable[u]; });
  const double erratic = successor_share(d, truth, [&](size_t u) { return !truth.predictable[u]; });
  EXPECT_GT(predictable, 0.6);
  EXPECT_LT(erratic, 0.15);
  size_t n_predictable = std::count(truth.predictable.begin(), truth.predictable.end(), true);
  EXPECT_NEAR(static_cast<double>(n_predictable) / d.num_users(), opt.predictable_share, 0.05);

  opt.predictable_share = 0.0;
  Dataset none = generate_synthetic(opt, &truth);
  EXPECT_LT(successor_share(none, truth, [](size_t) { return true; }), 0.15);
  opt.predictable_share = 1.0;
  opt.follow_probability = 1.0;
  Dataset all = generate_synthetic(opt, &truth);
  EXPECT_GT(successor_share(all, truth, [](size_t) { return true; }), 0.85);
}

TEST(SynthTest, WriteAndLoadRoundTrip) {
  testing::TempDir dir;
  Dataset d = generate_synthetic(small_options());
  write_sequences_dir(d, (dir / "synth").string());
  for (const char* f : {"sequences.txt", "item_map.tsv", "user_map.tsv", "item_meta.jsonl"})
    EXPECT_TRUE(std::filesystem::exists(dir / "synth" / f)) << f;
  Dataset back = load_dataset((dir / "synth").string());
  EXPECT_EQ(back.sequences, d.sequences);
  EXPECT_EQ(back.item_ids, d.item_ids);
  EXPECT_EQ(back.user_ids, d.user_ids);
  ASSERT_EQ(back.items.size(), d.items.size());
  for (size_t i = 0; i < d.items.size(); ++i) expect_same_meta(back.items[i], d.items[i], i);
}

TEST(SynthTest, WriteKeepsItemsWithoutMetaOrInteractions) {
  testing::TempDir dir;
  Dataset d;
  d.item_ids = {"a", "b", "c"};
  d.items.resize(3);
  d.items[1].brand = "Acme";
  d.user_ids = {"x"};
  d.sequences = {{0, 1}};
  d.reindex();
  write_sequences_dir(d, dir.str());
  Dataset back = load_dataset(dir.str());
  EXPECT_EQ(back.item_ids, d.item_ids);  // "c" is never interacted with but stays
  EXPECT_EQ(back.items[1].brand, "Acme");
  EXPECT_TRUE(back.items[0].empty());

  d.sequences = {{}};
  EXPECT_THROW(write_sequences_dir(d, (dir / "empty").string()), InputError);
  d.sequences = {{0}};
  d.item_ids[2] = "c\td";
  d.reindex();
  EXPECT_THROW(write_sequences_dir(d, (dir / "tab").string()), InputError);
}

void expect_invalid(const std::function<void(SynthOptions&)>& change, const std::string& field) {
  SynthOptions opt;
  change(opt);
  try {
    opt.validate();
    ADD_FAILURE() << "no error for field " << field;
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'" + field + "'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(generate_synthetic(opt), InputError) << field;
}

TEST(SynthTest, ValidateNamesTheField) {
  EXPECT_NO_THROW(SynthOptions{}.validate());
  expect_invalid([](SynthOptions& o) { o.users = 0; }, "users");
  expect_invalid([](SynthOptions& o) { o.items = 9; }, "items");
  expect_invalid([](SynthOptions& o) { o.categories = 1; }, "categories");
  expect_invalid([](SynthOptions& o) { o.categories = o.items + 1; }, "categories");
  expect_invalid([](SynthOptions& o) { o.brands = 0; }, "brands");
  expect_invalid([](SynthOptions& o) { o.min_length = 2; }, "min_length");
  expect_invalid([](SynthOptions& o) { o.max_length = o.min_length - 1; }, "max_length");
  expect_invalid([](SynthOptions& o) { o.popularity_exponent = -0.5; }, "popularity_exponent");
  expect_invalid([](SynthOptions& o) { o.predictable_share = 1.5; }, "predictable_share");
  expect_invalid([](SynthOptions& o) { o.predictable_share = -0.1; }, "predictable_share");
  expect_invalid([](SynthOptions& o) { o.follow_probability = 2.0; }, "follow_probability");
  expect_invalid([](SynthOptions& o) { o.follow_probability = std::nan(""); },
                 "follow_probability");
  expect_invalid([](SynthOptions& o) { o.successors = 0; }, "successors");
  expect_invalid([](SynthOptions& o) { o.successors = o.items; }, "successors");
}

TEST(SynthTest, TinyValidOptionsWork) {
  SynthOptions opt;
  opt.users = 1;
  opt.items = 10;
  opt.categories = 10;  // one item per leaf: successors must leave the leaf
  opt.brands = 1;
  opt.min_length = 3;
  opt.max_length = 3;
  opt.successors = 9;
  SynthTruth truth;
  Dataset d = generate_synthetic(opt, &truth);
  EXPECT_EQ(d.sequences.at(0).size(), 3u);
  for (const auto& succ : truth.successors) EXPECT_EQ(succ.size(), 9u);
}

TEST(SynthTest, DefaultsAreFast) {
  auto start = std::chrono::steady_clock::now();
  generate_synthetic(SynthOptions{});
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The target is 0.2 s; the margin absorbs a busy CI machine.
  EXPECT_LT(seconds, 2.0);
}

}  // namespace
}  // namespace twistar
