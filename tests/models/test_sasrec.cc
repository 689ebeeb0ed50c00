#include <gtest/gtest.h>

#include "core/error.h"
#include "core/manifest.h"
#include "data/split.h"
#include "models/sasrec_trainer.h"
#include "fixtures.h"
#include "model_fixtures.h"
#include "test_util.h"

namespace twistar {
namespace {

using testing::cycle_dataset;
using testing::small_context;

SasrecOptions small_options() {
  SasrecOptions o;
  o.dim = 32;
  o.layers = 1;
  o.heads = 2;
  o.dropout = 0.1;
  o.attn_dropout = 0.0;
  o.max_len = 10;
  o.train.lr = 5e-3;
  o.train.batch_size = 32;
  o.train.epochs = 12;
  o.train.patience = 50;
  return o;
}

TEST(Sasrec, LearnsDeterministicTransitions) {
  testing::TempDir tmp;
  auto data = cycle_dataset();
  TrainControl quiet;
  quiet.progress = false;
  auto r = train_sasrec(data, small_options(), small_context(), tmp.path(), quiet);
  EXPECT_TRUE(r.finished);
  EXPECT_GT(r.best_valid_ndcg10, 0.9);
  SasrecRecommender rec(r.model);
  RecommendOptions o;
  o.k = 3;
  auto out = rec.recommend({{4, 5, 6}, {28, 29}}, o);
  EXPECT_EQ(out[0][0].item, 7);
  EXPECT_EQ(out[1][0].item, 0);
  for (const auto& s : out[0]) EXPECT_TRUE(s.item != 4 && s.item != 5 && s.item != 6);
}

TEST(Sasrec, SaveLoadGivesIdenticalScores) {
  testing::TempDir tmp;
  auto data = cycle_dataset(100);
  auto opts = small_options();
  opts.train.epochs = 2;
  TrainControl quiet;
  quiet.progress = false;
  auto r = train_sasrec(data, opts, small_context(), tmp.path(), quiet);
  auto loaded = load_sasrec(tmp.path(), small_context());
  RecommendOptions o;
  o.k = 10;
  auto a = SasrecRecommender(r.model).recommend({{1, 2, 3}}, o);
  auto b = SasrecRecommender(loaded).recommend({{1, 2, 3}}, o);
  ASSERT_EQ(a[0].size(), b[0].size());
  for (size_t i = 0; i < a[0].size(); ++i) {
    EXPECT_EQ(a[0][i].item, b[0][i].item);
    EXPECT_FLOAT_EQ(a[0][i].score, b[0][i].score);
  }
}

// k epochs, a stop, then the rest equals one uninterrupted training, weights and curve.
void expect_resume_equals_uninterrupted(SasrecOptions opts) {
  auto data = cycle_dataset(120);
  opts.train.epochs = 4;
  TrainControl quiet;
  quiet.progress = false;
  testing::TempDir straight, resumed;
  auto full = train_sasrec(data, opts, small_context(), straight.path(), quiet);
  TrainControl stop = quiet;
  stop.stop_after_epochs = 2;
  auto half = train_sasrec(data, opts, small_context(), resumed.path(), stop);
  EXPECT_FALSE(half.finished);
  EXPECT_FALSE(std::filesystem::exists(resumed / "model.pt"));
  // A new time budget is not a new training: the checkpoint still resumes.
  opts.train.max_minutes = 600;
  auto rest = train_sasrec(data, opts, small_context(), resumed.path(), quiet);
  EXPECT_TRUE(rest.resumed);
  EXPECT_TRUE(rest.finished);
  EXPECT_EQ(rest.curve, full.curve);
  auto pa = full.model->parameters();
  auto pb = rest.model->parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i])) << i;
}

TEST(Sasrec, ResumeEqualsUninterruptedTraining) { expect_resume_equals_uninterrupted(small_options()); }

TEST(Sasrec, ScoreItemsEqualsTheFullScoresColumns) {
  torch::manual_seed(3);
  Sasrec model(30, small_options());
  model->eval();
  torch::NoGradGuard no_grad;
  torch::Tensor tokens, lengths;
  pack_histories({{1, 2, 3}, {7}, {4, 5, 6, 8, 9}}, 10, tokens, lengths);
  auto items = torch::tensor({0, 5, 29, 3, 3, 11, 17, 2, 28}, torch::kLong).view({3, 3});
  auto full = model->score_last(tokens, lengths);
  auto some = model->score_items(tokens, lengths, items);
  EXPECT_TRUE(torch::allclose(some, full.gather(1, items), 1e-5, 1e-5));
}

TEST(Sasrec, RejectsBadOptions) {
  auto o = small_options();
  o.heads = 3;  // does not divide 32
  EXPECT_THROW(o.validate(), InputError);
  o = small_options();
  o.train.lr = 0;
  EXPECT_THROW(o.validate(), InputError);
}

SasrecOptions small_bsarec_options() {
  SasrecOptions o = small_options();
  o.arch = "bsarec";
  o.attn_dropout = 0.1;
  return o;
}

TEST(Bsarec, LearnsDeterministicTransitionsAndLoadsFromItsStage) {
  testing::TempDir tmp;
  auto data = cycle_dataset();
  TrainControl quiet;
  quiet.progress = false;
  auto opts = small_bsarec_options();
  opts.train.epochs = 6;
  auto r = train_sasrec(data, opts, small_context(), tmp.path(), quiet);
  EXPECT_TRUE(r.finished);
  EXPECT_GT(r.best_valid_ndcg10, 0.9);
  EXPECT_EQ(Manifest::load(tmp.path())->stage, "bsarec");
  auto loaded = load_sasrec(tmp.path(), small_context());
  EXPECT_TRUE(loaded->is_bsarec());
  RecommendOptions o;
  o.k = 3;
  auto out = SasrecRecommender(loaded, "bsarec").recommend({{4, 5, 6}, {28, 29}}, o);
  EXPECT_EQ(out[0][0].item, 7);
  EXPECT_EQ(out[1][0].item, 0);
  auto again = SasrecRecommender(r.model).recommend({{4, 5, 6}, {28, 29}}, o);
  EXPECT_FLOAT_EQ(out[0][0].score, again[0][0].score);
}

TEST(Bsarec, AHistoryScoresTheSameWhateverElseIsInItsBatch) {
  torch::manual_seed(5);
  Sasrec model(30, small_bsarec_options());
  model->eval();
  torch::NoGradGuard no_grad;
  torch::Tensor tokens, lengths, one, one_len;
  pack_histories({{1, 2, 3}, {7}, {4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16}}, 10, tokens, lengths);
  pack_histories({{1, 2, 3}}, 10, one, one_len);
  auto batch = model->score_last(tokens, lengths);
  EXPECT_TRUE(torch::allclose(batch[0], model->score_last(one, one_len)[0], 1e-5, 1e-5));
  auto items = torch::tensor({0, 5, 29, 3, 3, 11, 17, 2, 28}, torch::kLong).view({3, 3});
  EXPECT_TRUE(torch::allclose(model->score_items(tokens, lengths, items), batch.gather(1, items), 1e-5, 1e-5));
  EXPECT_THROW(model->encode(tokens), Error);
}

TEST(Bsarec, ResumeEqualsUninterruptedTraining) { expect_resume_equals_uninterrupted(small_bsarec_options()); }

TEST(Bsarec, RejectsBadOptions) {
  auto o = small_bsarec_options();
  o.alpha = 1.5;
  EXPECT_THROW(o.validate(), InputError);
  o = small_bsarec_options();
  o.arch = "gru";
  EXPECT_THROW(o.validate(), InputError);
  EXPECT_EQ(SasrecOptions::from_json(SasrecOptions::bsarec().to_json()).arch, "bsarec");
  // SASRec's configuration is what it was before the architectures (its runs are reused).
  EXPECT_FALSE(SasrecOptions().to_json().contains("arch"));
}

}  // namespace
}  // namespace twistar
