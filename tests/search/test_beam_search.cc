// Beam search against its brute-force oracle: with a beam as wide as the catalogue, trie-constrained
// beam search must return exactly the top-k of exhaustive scoring over every valid SID.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "core/error.h"
#include "models/sid_generator.h"
#include "search/beam_search.h"

namespace twistar {
namespace {

// 60 items with distinct 3-level SIDs drawn from a 4 x 4 x 4 code space (some prefixes are sparse).
CodeMatrix random_sids(int items = 60, unsigned seed = 3) {
  std::vector<int> tuples(64);
  std::iota(tuples.begin(), tuples.end(), 0);
  std::mt19937 rng(seed);
  std::shuffle(tuples.begin(), tuples.end(), rng);
  CodeMatrix codes(items, 3);
  for (int i = 0; i < items; ++i) {
    codes(i, 0) = tuples[i] / 16;
    codes(i, 1) = (tuples[i] / 4) % 4;
    codes(i, 2) = tuples[i] % 4;
  }
  return codes;
}

SidGenerator tiny_model(const CodeMatrix& sids, const std::string& history_tokens = "item",
                        bool constrained = true) {
  SidGeneratorOptions o;
  o.dim = 16;
  o.layers = 1;
  o.heads = 2;
  o.decoder_layers = 2;
  o.dropout = 0.0;
  o.attn_dropout = 0.0;
  o.max_len = 10;
  o.history_tokens = history_tokens;
  o.constrained_softmax = constrained;
  torch::manual_seed(5);
  SidGenerator m(sids, std::vector<int32_t>{4, 4, 4}, o);
  m->eval();
  return m;
}

torch::Tensor summaries(SidGenerator& m, const std::vector<Sequence>& histories) {
  torch::NoGradGuard no_grad;
  torch::Tensor items, lengths;
  pack_item_histories(histories, m->max_len(), items, lengths);
  return m->encode_last(items, lengths);
}

const std::vector<Sequence> kHistories = {{1, 2, 3}, {5}, {10, 11, 12, 13, 14, 15, 16}, {}};

TEST(BeamSearch, WideBeamEqualsExhaustiveScoring) {
  auto sids = random_sids();
  for (bool constrained : {true, false}) {
  SCOPED_TRACE(constrained ? "constrained softmax" : "full-codebook softmax");
  auto m = tiny_model(sids, "item", constrained);
  auto trie = PrefixTrie::from_codes(sids);
  auto h = summaries(m, kHistories);
  auto exhaustive = exhaustive_sid_log_probs(*m, m->start(h), sids, trie);
  auto found = constrained_beam_search(*m, m->start(h), trie, {60, 10});
  ASSERT_EQ(found.size(), kHistories.size());
  for (size_t b = 0; b < kHistories.size(); ++b) {
    auto [values, index] = exhaustive[b].topk(10);
    ASSERT_EQ(found[b].size(), 10u);
    for (int r = 0; r < 10; ++r) {
      EXPECT_EQ(found[b][r].item, index[r].item<int64_t>()) << "request " << b << " rank " << r;
      EXPECT_NEAR(found[b][r].score, values[r].item<float>(), 1e-4);
    }
  }
  }
}

TEST(BeamSearch, ExclusionMatchesExhaustiveScoringWithoutTheHistory) {
  auto sids = random_sids();
  auto m = tiny_model(sids, "code");
  auto trie = PrefixTrie::from_codes(sids);
  auto h = summaries(m, kHistories);
  auto exhaustive = exhaustive_sid_log_probs(*m, m->start(h), sids, trie);
  for (size_t b = 0; b < kHistories.size(); ++b)
    for (ItemIndex i : kHistories[b]) exhaustive[b][i] = -std::numeric_limits<float>::infinity();
  auto found = constrained_beam_search(*m, m->start(h), trie, {60, 20}, kHistories);
  for (size_t b = 0; b < kHistories.size(); ++b) {
    auto [values, index] = exhaustive[b].topk(20);
    ASSERT_EQ(found[b].size(), 20u);
    for (int r = 0; r < 20; ++r) {
      EXPECT_EQ(found[b][r].item, index[r].item<int64_t>());
      EXPECT_NEAR(found[b][r].score, values[r].item<float>(), 1e-4);
    }
  }
}

TEST(BeamSearch, NarrowBeamReturnsDistinctValidItemsWithTheirTrueScores) {
  auto sids = random_sids();
  auto m = tiny_model(sids);
  auto trie = PrefixTrie::from_codes(sids);
  auto h = summaries(m, kHistories);
  auto exhaustive = exhaustive_sid_log_probs(*m, m->start(h), sids, trie);
  auto found = constrained_beam_search(*m, m->start(h), trie, {4, 4});
  for (size_t b = 0; b < kHistories.size(); ++b) {
    ASSERT_EQ(found[b].size(), 4u);
    for (size_t r = 0; r < found[b].size(); ++r) {
      EXPECT_NEAR(found[b][r].score, exhaustive[b][found[b][r].item].item<float>(), 1e-4);
      if (r > 0) EXPECT_LE(found[b][r].score, found[b][r - 1].score);
      for (size_t q = 0; q < r; ++q) EXPECT_NE(found[b][r].item, found[b][q].item);
    }
  }
}

TEST(BeamSearch, BatchedEqualsOneRequestAtATime) {
  auto sids = random_sids();
  auto m = tiny_model(sids);
  auto trie = PrefixTrie::from_codes(sids);
  auto batched = constrained_beam_search(*m, m->start(summaries(m, kHistories)), trie, {8, 5}, kHistories);
  for (size_t b = 0; b < kHistories.size(); ++b) {
    auto alone = constrained_beam_search(*m, m->start(summaries(m, {kHistories[b]})), trie, {8, 5},
                                         {kHistories[b]});
    ASSERT_EQ(alone[0].size(), batched[b].size());
    for (size_t r = 0; r < alone[0].size(); ++r) {
      EXPECT_EQ(alone[0][r].item, batched[b][r].item);
      EXPECT_NEAR(alone[0][r].score, batched[b][r].score, 1e-4);
    }
  }
}

TEST(BeamSearch, ReturnsOnlyItemsOfTheTrie) {
  auto sids = random_sids();
  auto m = tiny_model(sids);
  std::vector<Sid> subset;
  std::vector<ItemIndex> items;
  for (ItemIndex i = 0; i < 60; i += 7) {
    subset.push_back({sids(i, 0), sids(i, 1), sids(i, 2)});
    items.push_back(i);
  }
  PrefixTrie trie(subset, items);
  auto found = constrained_beam_search(*m, m->start(summaries(m, kHistories)), trie, {60, 20});
  for (const auto& ranking : found) {
    EXPECT_EQ(ranking.size(), items.size());  // fewer valid SIDs than k: all of them, no padding
    for (const auto& s : ranking)
      EXPECT_NE(std::find(items.begin(), items.end(), s.item), items.end()) << s.item;
  }
}

TEST(BeamSearch, RejectsATrieThatDoesNotFitTheModel) {
  auto sids = random_sids();
  auto m = tiny_model(sids);
  auto h = summaries(m, kHistories);
  EXPECT_THROW(constrained_beam_search(*m, m->start(h), PrefixTrie::from_codes(random_sids(16).leftCols(2)),
                                       {4, 4}),
               InputError);
  BeamSearchOptions bad{4, 5};
  EXPECT_THROW(constrained_beam_search(*m, m->start(h), PrefixTrie::from_codes(sids), bad), InputError);
}

TEST(SidGenerator, TeacherForcingEqualsIncrementalDecoding) {
  auto sids = random_sids();
  for (const char* tokens : {"item", "code"}) {
    auto m = tiny_model(sids, tokens);
    torch::NoGradGuard no_grad;
    auto h = summaries(m, kHistories);
    // Score item 7's SID for every request both ways.
    const int64_t B = static_cast<int64_t>(kHistories.size());
    auto codes = torch::tensor({sids(7, 0), sids(7, 1), sids(7, 2)}, torch::kLong).unsqueeze(0).repeat({B, 1});
    auto forced = m->code_log_probs(h, torch::full({B}, 7, torch::kLong));
    auto trie = PrefixTrie::from_codes(sids);
    auto state = m->start(h);
    torch::Tensor previous;
    for (int64_t l = 0; l < 3; ++l) {
      auto logp = m->step(l, previous, state);
      // Renormalise over the codes that continue item 7's prefix, as training does.
      auto mask = torch::full({logp.size(1)}, -std::numeric_limits<float>::infinity());
      for (SidCode c : trie.allowed(Sid(sids.row(7).data(), sids.row(7).data() + l))) mask[c] = 0.0f;
      logp = torch::log_softmax(logp + mask, 1);
      auto picked = logp.gather(1, codes.select(1, l).unsqueeze(1)).squeeze(1);
      EXPECT_TRUE(torch::allclose(picked, forced.select(1, l), 1e-5, 1e-5)) << tokens << " level " << l;
      previous = codes.select(1, l);
    }
  }
}

}  // namespace
}  // namespace twistar
