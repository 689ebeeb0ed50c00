// The SID generator trained end to end and used through the fast_rec tool: it must learn a
// deterministic next-item rule, resume exactly, and behave as a Recommender.
#include <gtest/gtest.h>

#include "agent/fast_rec.h"
#include "core/error.h"
#include "fixtures.h"
#include "model_fixtures.h"
#include "models/sid_generator_trainer.h"
#include "test_util.h"

namespace twistar {
namespace {

using testing::cycle_dataset;
using testing::cycle_sids;
using testing::small_context;
using testing::small_sidgen_options;

SidGeneratorTrainResult train(const Dataset& data, const SidMap& map, const SidGeneratorOptions& o,
                              const std::filesystem::path& dir, int stop_after = 0) {
  TrainControl control;
  control.progress = false;
  control.stop_after_epochs = stop_after;
  auto validate = [&](SidGenerator& m) {
    return fast_rec_valid_ndcg10(m, map.trie(), data, o.valid_users, o.valid_beam);
  };
  return train_sid_generator(data, map.sids(), map.level_sizes(), o, small_context(), dir, validate,
                             control);
}

TEST(FastRec, SidGeneratorLearnsDeterministicTransitions) {
  auto data = cycle_dataset();
  auto map = cycle_sids();
  for (const char* tokens : {"item", "code"}) {
    testing::TempDir tmp;
    auto r = train(data, map, small_sidgen_options(tokens), tmp.path());
    EXPECT_TRUE(r.loop.finished);
    EXPECT_GT(r.loop.best, 0.9) << tokens;
    FastRec tool(r.model, std::make_shared<SidMap>(map));
    RequestState state;
    state.history = {4, 5, 6};
    auto obs = tool.run_one(state, {3});
    ASSERT_EQ(obs.items.size(), 3u);
    EXPECT_EQ(obs.items[0].item, 7) << tokens;
    for (const auto& s : obs.items) EXPECT_TRUE(s.item < 4 || s.item > 6) << s.item;
  }
}

TEST(FastRec, ResumeEqualsUninterruptedTraining) {
  auto data = cycle_dataset(120);
  auto map = cycle_sids();
  auto o = small_sidgen_options();
  o.train.epochs = 4;
  testing::TempDir straight, resumed;
  auto full = train(data, map, o, straight.path());
  auto half = train(data, map, o, resumed.path(), 2);
  EXPECT_FALSE(half.loop.finished);
  EXPECT_FALSE(std::filesystem::exists(resumed / "model.pt"));
  auto rest = train(data, map, o, resumed.path());
  EXPECT_TRUE(rest.loop.resumed);
  EXPECT_TRUE(rest.loop.finished);
  EXPECT_EQ(rest.loop.curve, full.loop.curve);
  auto pa = full.model->parameters(), pb = rest.model->parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i])) << i;
  // The finished stage loads back to the same rankings.
  auto loaded = load_sid_generator(resumed.path(), map.sids(), map.level_sizes(), small_context());
  CodeMatrix other = map.sids();
  std::swap(other(0, 1), other(1, 1));
  EXPECT_THROW(load_sid_generator(resumed.path(), other, map.level_sizes(), small_context()), InputError);
  auto sids = std::make_shared<SidMap>(map);
  ToolRecommender a(std::make_shared<FastRec>(rest.model, sids), "fast_only");
  ToolRecommender b(std::make_shared<FastRec>(loaded, sids), "fast_only");
  auto ra = a.recommend({{1, 2, 3}}, {10, true}), rb = b.recommend({{1, 2, 3}}, {10, true});
  ASSERT_EQ(ra[0].size(), rb[0].size());
  for (size_t i = 0; i < ra[0].size(); ++i) {
    EXPECT_EQ(ra[0][i].item, rb[0][i].item);
    EXPECT_FLOAT_EQ(ra[0][i].score, rb[0][i].score);
  }
}

TEST(FastRec, ToolRecordsCostCallsAndCandidates) {
  auto map = cycle_sids();
  auto o = small_sidgen_options();
  torch::manual_seed(1);
  SidGenerator model(map.sids(), map.level_sizes(), o);
  FastRec tool(model, std::make_shared<SidMap>(map), FastRecOptions{5, 2});
  std::vector<RequestState> batch(3);
  batch[0].history = {1, 2};
  batch[1].history = {3, 4, 5, 6, 7};
  batch[2].history = {9};
  batch[2].exclude_history = false;
  auto obs = tool.run(batch, {12});  // k above the beam: the beam widens to k
  ASSERT_EQ(obs.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(obs[i].tool, "fast_rec");
    EXPECT_EQ(obs[i].items.size(), 12u);
    EXPECT_GT(obs[i].cost_ms, 0.0);
    EXPECT_EQ(batch[i].calls, std::vector<std::string>{"fast_rec"});
    EXPECT_DOUBLE_EQ(batch[i].cost_ms, obs[i].cost_ms);
    ASSERT_EQ(batch[i].candidates.size(), obs[i].items.size());
    EXPECT_EQ(batch[i].candidates[0].item, obs[i].items[0].item);
  }
  for (const auto& s : obs[1].items) EXPECT_TRUE(s.item < 3 || s.item > 7);
  // The same request alone gets the same answer as inside the batch.
  RequestState alone;
  alone.history = {3, 4, 5, 6, 7};
  auto single = tool.run_one(alone, {12});
  for (size_t r = 0; r < single.items.size(); ++r) EXPECT_EQ(single.items[r].item, obs[1].items[r].item);
}

TEST(FastRec, RejectsAModelTrainedOnOtherSids) {
  auto map = cycle_sids();
  CodeMatrix other = map.sids();
  std::swap(other(0, 1), other(1, 1));
  SidGenerator model(other, map.level_sizes(), small_sidgen_options());
  EXPECT_THROW(FastRec(model, std::make_shared<SidMap>(map)), InputError);
  EXPECT_THROW(load_fast_rec("/nonexistent-run", small_context()), InputError);
}

}  // namespace
}  // namespace twistar
