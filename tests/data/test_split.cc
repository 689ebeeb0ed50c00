// The leave-one-out protocol: which item is held out for which split, and what training may see.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "core/error.h"
#include "data/split.h"

namespace twistar {
namespace {

Dataset make_dataset(const std::vector<Sequence>& sequences, int32_t num_items = 20) {
  Dataset d;
  d.name = "toy";
  for (int32_t i = 0; i < num_items; ++i) d.item_ids.push_back("i" + std::to_string(i));
  d.items.resize(num_items);
  for (size_t u = 0; u < sequences.size(); ++u) d.user_ids.push_back("u" + std::to_string(u));
  d.sequences = sequences;
  d.reindex();
  d.validate();
  return d;
}

TEST(SplitTest, TestTargetIsLastItem) {
  Dataset d = make_dataset({{1, 2, 3, 4, 5}, {7, 8}, {9}});
  auto ex = make_examples(d, Split::kTest);
  ASSERT_EQ(ex.size(), 2u);  // the single-item user has nothing to predict from
  EXPECT_EQ(ex[0].user, 0);
  EXPECT_EQ(ex[0].target, 5);
  EXPECT_EQ(ex[0].history, (Sequence{1, 2, 3, 4}));
  EXPECT_EQ(ex[1].user, 1);
  EXPECT_EQ(ex[1].target, 8);
  EXPECT_EQ(ex[1].history, (Sequence{7}));
}

TEST(SplitTest, ValidationTargetIsSecondToLast) {
  Dataset d = make_dataset({{1, 2, 3, 4, 5}, {7, 8}, {9, 10, 11}});
  auto ex = make_examples(d, Split::kValid);
  ASSERT_EQ(ex.size(), 2u);  // the two-item user is too short for validation
  EXPECT_EQ(ex[0].user, 0);
  EXPECT_EQ(ex[0].target, 4);
  EXPECT_EQ(ex[0].history, (Sequence{1, 2, 3}));
  EXPECT_EQ(ex[1].user, 2);
  EXPECT_EQ(ex[1].target, 10);
  EXPECT_EQ(ex[1].history, (Sequence{9}));
}

TEST(SplitTest, TrainingPartHoldsOutBothTargets) {
  Dataset d = make_dataset({{1, 2, 3, 4, 5}, {7, 8}, {9, 10, 11}, {12}});
  auto parts = training_parts(d);
  ASSERT_EQ(parts.size(), 4u);  // one per user, aligned with the sequences
  EXPECT_EQ(parts[0], (Sequence{1, 2, 3}));
  EXPECT_TRUE(parts[1].empty());
  EXPECT_EQ(parts[2], (Sequence{9}));
  EXPECT_TRUE(parts[3].empty());
}

TEST(SplitTest, WithoutLastItemsHoldsOutTheLastTrainingItemAndNeitherTarget) {
  Dataset d = make_dataset({{1, 2, 3, 4, 5}, {7, 8, 9}});
  Dataset held = without_last_items(d);
  EXPECT_EQ(held.name, "toy+heldout");
  EXPECT_NE(held.fingerprint(), d.fingerprint());
  // Its validation target is the user's last training item (3), its history and training part the
  // items before it; the real validation (4) and test (5) targets are in neither.
  auto ex = make_examples(held, Split::kValid);
  ASSERT_EQ(ex.size(), 1u);  // the three-item user has no training item left to hold out
  EXPECT_EQ(ex[0].target, 3);
  EXPECT_EQ(ex[0].history, (Sequence{1, 2}));
  EXPECT_EQ(training_parts(held)[0], (Sequence{1, 2}));
  EXPECT_TRUE(training_parts(held)[1].empty());
  // Its test example is the real validation example.
  auto test = make_examples(held, Split::kTest);
  EXPECT_EQ(test[0].target, 4);
  EXPECT_EQ(test[0].history, (Sequence{1, 2, 3}));
  EXPECT_EQ(d.sequences[0].size(), 5u);  // the original is left as it was
}

TEST(SplitTest, HistoriesNeverContainTheirTarget) {
  Dataset d = make_dataset({{1, 2, 3, 4, 5, 6}, {3, 4, 5}});
  for (Split split : {Split::kValid, Split::kTest}) {
    for (const auto& ex : make_examples(d, split)) {
      const Sequence& s = d.sequences[ex.user];
      const size_t target_pos = s.size() - (split == Split::kTest ? 1 : 2);
      EXPECT_EQ(ex.target, s[target_pos]);
      EXPECT_EQ(ex.history, Sequence(s.begin(), s.begin() + target_pos));
    }
  }
}

TEST(SplitTest, TruncationKeepsLastItems) {
  const Sequence h = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_EQ(truncate_history(h, 3), (Sequence{8, 9, 10}));
  EXPECT_EQ(truncate_history(h, 10), h);
  EXPECT_EQ(truncate_history(h, 50), h);
  EXPECT_EQ(truncate_history(h, 0), h);
  EXPECT_TRUE(truncate_history({}, 3).empty());
}

TEST(SplitTest, ExamplesUseMaxHistory) {
  Dataset d = make_dataset({{1, 2, 3, 4, 5, 6, 7}});
  SplitOptions opt;
  opt.max_history = 2;
  auto test = make_examples(d, Split::kTest, opt);
  ASSERT_EQ(test.size(), 1u);
  EXPECT_EQ(test[0].history, (Sequence{5, 6}));
  EXPECT_EQ(test[0].target, 7);
  auto valid = make_examples(d, Split::kValid, opt);
  ASSERT_EQ(valid.size(), 1u);
  EXPECT_EQ(valid[0].history, (Sequence{4, 5}));
  EXPECT_EQ(valid[0].target, 6);

  opt.max_history = 0;
  EXPECT_EQ(make_examples(d, Split::kTest, opt)[0].history, (Sequence{1, 2, 3, 4, 5, 6}));
}

TEST(SplitTest, DefaultHistoryIsFifty) {
  Sequence s;
  for (int i = 0; i < 80; ++i) s.push_back(i);
  Dataset d = make_dataset({s}, 80);
  auto ex = make_examples(d, Split::kTest);
  ASSERT_EQ(ex.size(), 1u);
  ASSERT_EQ(ex[0].history.size(), 50u);
  EXPECT_EQ(ex[0].history.front(), 29);
  EXPECT_EQ(ex[0].history.back(), 78);
}

TEST(SplitTest, ParseSplit) {
  EXPECT_EQ(parse_split("valid"), Split::kValid);
  EXPECT_EQ(parse_split("validation"), Split::kValid);
  EXPECT_EQ(parse_split("test"), Split::kTest);
  EXPECT_EQ(parse_split(split_name(Split::kValid)), Split::kValid);
  EXPECT_EQ(parse_split(split_name(Split::kTest)), Split::kTest);
  for (const char* bad : {"train", "", "Test", "testing"}) {
    try {
      parse_split(bad);
      ADD_FAILURE() << "no error for '" << bad << "'";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("split"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace twistar
