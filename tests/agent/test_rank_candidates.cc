// rank_candidates: its features, both rankers learning a signal that fast_rec's order lacks, the
// tool's handling of invalid calls, and the whole stage on a tiny dataset (train, save, load, eval).
#include <gtest/gtest.h>

#include <set>

#include "agent/rank_candidates.h"
#include "apps/pipeline.h"
#include "core/error.h"
#include "core/manifest.h"
#include "data/split.h"
#include "fixtures.h"
#include "model_fixtures.h"
#include "models/sasrec.h"
#include "models/sid_generator_trainer.h"
#include "test_util.h"

namespace twistar {
namespace {

Context one_thread() {
  Context c;
  c.threads = 1;
  c.seed = 5;
  return c;
}

// Six items: brand x for 0-2, brand y for 3-5; categories Beauty > Nails for even items,
// Beauty > Hair for odd ones. Item 1 follows item 0 for every user.
Dataset tiny_dataset() {
  std::vector<std::string> users;
  std::vector<std::vector<std::string>> seqs;
  for (int u = 0; u < 6; ++u) {
    users.push_back("u" + std::to_string(u));
    seqs.push_back({"i0", "i1", "i" + std::to_string(2 + u % 4), "i5", "i4"});
  }
  std::unordered_map<std::string, ItemMeta> meta;
  for (int i = 0; i < 6; ++i) {
    ItemMeta m;
    m.brand = i < 3 ? "x" : "y";
    m.categories = {"Beauty", i % 2 == 0 ? "Nails" : "Hair"};
    meta["i" + std::to_string(i)] = m;
  }
  return build_dataset("tiny", users, seqs, meta);
}

TEST(RankFeatures, SwingPopularityAndOverlapFollowTheData) {
  Dataset data = tiny_dataset();
  auto parts = training_parts(data);
  auto sources = build_rank_sources(data, parts, {});
  const ItemIndex i0 = *data.find_item("i0"), i1 = *data.find_item("i1"), i3 = *data.find_item("i3");
  Ranking cand = {{i1, -0.5f}, {i3, -2.0f}};
  std::vector<float> f(2 * kNumRankFeatures);
  rank_features(sources, {i0}, 20, cand, 2, nullptr, f.data());
  const float* a = f.data();
  const float* b = f.data() + kNumRankFeatures;
  EXPECT_FLOAT_EQ(a[0], -0.5f);
  EXPECT_FLOAT_EQ(a[1], 0.0f);
  EXPECT_FLOAT_EQ(b[1], -1.5f);
  EXPECT_FLOAT_EQ(b[2], std::log1p(1.0f));
  // i0 and i1 were taken together by every user: Swing links them; the last item is i0.
  EXPECT_GT(a[3], 0.0f);
  EXPECT_FLOAT_EQ(a[4], a[3]);
  EXPECT_FLOAT_EQ(a[5], a[3]);
  EXPECT_FLOAT_EQ(a[6], std::log1p(6.0f));  // i1 is in all six training parts
  // i1 shares i0's brand (x) and top category, not its leaf (Hair vs Nails); i3 shares neither brand.
  EXPECT_FLOAT_EQ(a[7], 1.0f);
  EXPECT_FLOAT_EQ(a[8], 0.0f);
  EXPECT_FLOAT_EQ(a[9], 1.0f);
  EXPECT_FLOAT_EQ(b[7], 0.0f);
  // No SASRec: its features stay zero; without sources every candidate came from fast_rec.
  for (int k = kFirstSasrecFeature; k < kFirstSasrecFeature + 3; ++k) EXPECT_EQ(a[k], 0.0f);
  EXPECT_EQ(a[13], 1.0f);
  EXPECT_EQ(a[14], 0.0f);
  EXPECT_EQ(a[15], 0.0f);
  const uint8_t from[2] = {kFromFastRec | kFromSwing, kFromBackbone};
  rank_features(sources, {i0}, 20, cand, 2, nullptr, f.data(), from);
  EXPECT_EQ(a[13], 1.0f);
  EXPECT_EQ(a[15], 1.0f);
  EXPECT_EQ(b[13], 0.0f);
  EXPECT_EQ(b[14], 1.0f);
  std::vector<float> logits = {1.0f, 3.0f};
  rank_features(sources, {i0}, 20, cand, 2, logits.data(), f.data());
  EXPECT_FLOAT_EQ(a[10], 1.0f);
  EXPECT_FLOAT_EQ(a[11], -2.0f);
  EXPECT_FLOAT_EQ(a[12], std::log1p(1.0f));  // i3 has the higher logit
  EXPECT_FLOAT_EQ(b[12], 0.0f);
}

TEST(RankFeatures, SourcesRoundTripThroughAFile) {
  Dataset data = tiny_dataset();
  auto sources = build_rank_sources(data, training_parts(data), {});
  testing::TempDir tmp;
  sources.save(tmp.path() / "sources.pt");
  auto back = RankSources::load(tmp.path() / "sources.pt");
  EXPECT_EQ(back.log_popularity, sources.log_popularity);
  EXPECT_EQ(back.brand, sources.brand);
  EXPECT_EQ(back.leaf_category, sources.leaf_category);
  for (ItemIndex i = 0; i < data.num_items(); ++i)
    for (ItemIndex j = 0; j < data.num_items(); ++j)
      EXPECT_FLOAT_EQ(back.swing.similarity(i, j), sources.swing.similarity(i, j));
  testing::write_text(tmp.path() / "bad.pt", "not a tensor archive");
  EXPECT_THROW(RankSources::load(tmp.path() / "bad.pt"), InputError);
  EXPECT_THROW(RankSources::load(tmp.path() / "missing.pt"), InputError);
}

// Lists of 8 candidates where the target sits in a random slot and only feature `signal` (higher
// for the target, noisy) tells where: fast_rec's order is worthless, a ranker must find the signal.
RankLists signal_lists(int64_t n, int signal, uint64_t seed) {
  torch::manual_seed(seed);
  const int64_t m = 8;
  RankLists l;
  l.history = torch::randint(1, 21, {n, 4}, torch::kLong);
  l.items = torch::randint(0, 20, {n, m}, torch::kLong);
  l.features = torch::randn({n, m, kNumRankFeatures});
  l.label = torch::randint(0, m, {n}, torch::kLong);
  auto rows = torch::arange(n, torch::kLong);
  auto f = l.features.select(2, signal);
  f.index_put_({rows, l.label}, f.index({rows, l.label}) + 3.0);
  return l;
}

TEST(Ranker, DinAndGbdtLearnASignalTheFastOrderLacks) {
  auto train = signal_lists(600, 6, 1), valid = signal_lists(200, 6, 2);
  auto order = torch::arange(8, torch::kFloat).neg().expand({200, 8});
  const double fast_order = rank_lists_ndcg10(order, valid.label);
  for (const char* kind : {"din", "gbdt"}) {
    RankerOptions o;
    o.kind = kind;
    o.dim = 8;
    o.history = 4;
    o.hidden = 16;
    o.attention_hidden = 8;
    o.train.epochs = 15;
    o.train.batch_size = 64;
    o.train.lr = 3e-3;
    o.gbdt_rounds = 60;
    testing::TempDir tmp;
    TrainControl quiet;
    quiet.progress = false;
    auto fit = fit_ranker(train, valid, 20, o, one_thread(), tmp.path(), o.to_json(), {}, quiet);
    EXPECT_TRUE(fit.finished) << kind;
    EXPECT_GT(fit.best, 0.85) << kind;
    EXPECT_LT(fast_order, 0.6);
    EXPECT_TRUE(std::filesystem::exists(tmp.path() / (o.kind == "din" ? "model.pt" : "gbdt.json"))) << kind;
  }
}

TEST(Ranker, OptionsRejectBadValuesByName) {
  RankerOptions o;
  o.kind = "forest";
  EXPECT_THROW(o.validate(), InputError);
  o = RankerOptions();
  o.training_lists = "everything";
  EXPECT_THROW(o.validate(), InputError);
  o = RankerOptions();
  o.candidates = 1;
  try {
    o.validate();
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("candidates"), std::string::npos);
  }
  auto round = RankerOptions::from_json(RankerOptions().to_json());
  EXPECT_EQ(round.to_json(), RankerOptions().to_json());
}

// The stage end to end on the cycle dataset: a small SID generator, a ranker over its candidates,
// then rank_candidates as a tool and fast_rank as a Recommender.
class RankStage : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new testing::TempDir();
    data_ = new Dataset(testing::cycle_dataset(120, 30, 8));
    testing::cycle_sids().save(run() / "sid" / "sid_map.json");
    SidGeneratorOptions g;
    g.dim = 16;
    g.layers = 1;
    g.heads = 1;
    g.max_len = 10;
    g.train.epochs = 3;
    g.valid_users = 0;
    g.valid_beam = 10;
    run_sidgen_stage(*data_, g, one_thread(), run(), false);
  }
  static void TearDownTestSuite() {
    delete data_;
    delete tmp_;
  }
  static std::filesystem::path run() { return tmp_->path() / "run"; }
  static RankerOptions options(const std::string& kind) {
    RankerOptions o;
    o.kind = kind;
    o.candidates = 10;
    o.lists_per_user = 2;
    o.dim = 8;
    o.hidden = 16;
    o.attention_hidden = 8;
    o.train.epochs = 2;
    o.gbdt_rounds = 20;
    // fast_rec's candidates alone; RankStage.SwingJoinsThePool turns the pool on.
    o.pool_swing = 0;
    return o;
  }
  static testing::TempDir* tmp_;
  static Dataset* data_;
};
testing::TempDir* RankStage::tmp_ = nullptr;
Dataset* RankStage::data_ = nullptr;

TEST_F(RankStage, TrainsLoadsAndRanksFastCandidates) {
  for (const char* kind : {"gbdt", "din"}) {
    auto r = run_ranker_stage(*data_, options(kind), one_thread(), run(), false);
    EXPECT_FALSE(r.skipped) << kind;
    EXPECT_TRUE(run_ranker_stage(*data_, options(kind), one_thread(), run(), false).skipped) << kind;
    auto rank = load_rank_candidates(run(), one_thread());
    auto fast = load_fast_rec(run(), one_thread());
    RequestState state;
    state.history = {3, 4, 5};
    auto candidates = fast->run_one(state, {10, 0}).items;
    auto obs = rank->run_one(state, {4, 10});
    ASSERT_TRUE(obs.error.empty()) << obs.error;
    ASSERT_EQ(obs.items.size(), 4u);
    std::set<ItemIndex> pool;
    for (const auto& c : candidates) pool.insert(c.item);
    std::set<ItemIndex> seen;
    for (size_t i = 0; i < obs.items.size(); ++i) {
      EXPECT_TRUE(pool.count(obs.items[i].item)) << kind;
      EXPECT_TRUE(seen.insert(obs.items[i].item).second) << kind;
      if (i) EXPECT_GE(obs.items[i - 1].score, obs.items[i].score);
    }
    EXPECT_EQ(state.calls, (std::vector<std::string>{"fast_rec", "rank_candidates"}));
    EXPECT_EQ(state.candidates.size(), 4u);

    EvalStageOptions eval;
    eval.systems = {"fast_rank"};
    auto system = make_system("fast_rank", *data_, run(), one_thread(), eval);
    auto lists = system->recommend({{3, 4, 5}, {10}}, {5, true});
    ASSERT_EQ(lists.size(), 2u);
    EXPECT_EQ(lists[0].size(), 5u);
    for (const auto& s : lists[0]) EXPECT_TRUE(s.item < 3 || s.item > 5);
  }
}

TEST_F(RankStage, RankUnionScoresOtherItemsAsFastRecWouldAndRanksTheWholePool) {
  run_ranker_stage(*data_, options("gbdt"), one_thread(), run(), false);
  auto rank = load_rank_candidates(run(), one_thread());
  auto fast = load_fast_rec(run(), one_thread());
  const Sequence history = {3, 4, 5};
  RequestState state;
  state.history = history;
  const Ranking retrieved = fast->run_one(state, {10, 0}).items;
  ASSERT_EQ(retrieved.size(), 10u);
  // fast_rec keeps its candidates with their scores, and its generator gives them the same scores.
  ASSERT_EQ(state.retrieved.size(), retrieved.size());
  std::vector<ItemIndex> found;
  for (const auto& s : retrieved) found.push_back(s.item);
  const auto scores = fast->log_probs({history}, {found});
  ASSERT_EQ(scores.size(), 1u);
  ASSERT_EQ(scores[0].size(), retrieved.size());
  for (size_t i = 0; i < retrieved.size(); ++i) {
    EXPECT_EQ(state.retrieved[i].item, retrieved[i].item);
    EXPECT_NEAR(scores[0][i], retrieved[i].score, 1e-4);
  }
  // Without other items the union is rank_candidates' own answer.
  const Ranking ranked = rank->run_one(state, {4, 10}).items;
  EXPECT_EQ(state.retrieved.size(), retrieved.size());  // ranking leaves fast_rec's pool alone
  auto alone = rank_union(*fast, *rank, {history}, {retrieved}, {Ranking{}}, 4);
  ASSERT_EQ(alone.at(0).size(), ranked.size());
  for (size_t i = 0; i < ranked.size(); ++i) EXPECT_EQ(alone[0][i].item, ranked[i].item);
  // Items fast_rec missed join the pool (one it found is not counted twice): with k the pool's size
  // the answer is the whole pool, ordered by the ranker.
  std::set<ItemIndex> pool(found.begin(), found.end());
  Ranking extra = {{retrieved[0].item, 9.0f}};
  for (ItemIndex item = 0; item < static_cast<ItemIndex>(data_->num_items()) && extra.size() < 4; ++item)
    if (!pool.count(item) && item != 3 && item != 4 && item != 5) {
      extra.push_back({item, 1.0f});
      pool.insert(item);
    }
  ASSERT_EQ(pool.size(), 13u);
  auto joined = rank_union(*fast, *rank, {history}, {retrieved}, {extra}, 20).at(0);
  ASSERT_EQ(joined.size(), pool.size());
  std::set<ItemIndex> seen;
  for (size_t i = 0; i < joined.size(); ++i) {
    EXPECT_TRUE(pool.count(joined[i].item));
    EXPECT_TRUE(seen.insert(joined[i].item).second);
    if (i) EXPECT_GE(joined[i - 1].score, joined[i].score);
  }
  EXPECT_THROW(rank_union(*fast, *rank, {history}, {}, {extra}, 5), Error);
}

TEST_F(RankStage, SwingJoinsThePoolAndItsItemsCanBeRanked) {
  auto o = options("gbdt");
  o.pool_swing = 6;
  run_ranker_stage(*data_, o, one_thread(), run(), false);
  auto rank = load_rank_candidates(run(), one_thread());
  auto fast = load_fast_rec(run(), one_thread());
  RequestState state;
  state.history = {3, 4, 5};
  auto candidates = fast->run_one(state, {4, 0}).items;
  // The pool holds fast_rec's 4 and Swing's 6 (the cycle links 5 to 6, 7, ...): asking for all of
  // it returns more than fast_rec found, no history item and nothing twice.
  auto obs = rank->run_one(state, {20, 4});
  ASSERT_TRUE(obs.error.empty()) << obs.error;
  EXPECT_GT(obs.items.size(), candidates.size());
  EXPECT_LE(obs.items.size(), 10u);
  std::set<ItemIndex> seen;
  for (const auto& s : obs.items) {
    EXPECT_TRUE(s.item < 3 || s.item > 5);
    EXPECT_TRUE(seen.insert(s.item).second);
  }
}

TEST(RankPools, TheBackboneAndSwingJoinFastRecsCandidatesWithTheirSourcesAndLogits) {
  Dataset data = testing::cycle_dataset(60, 30, 8);
  auto sources = std::make_shared<RankSources>(build_rank_sources(data, training_parts(data), {}));
  SasrecOptions so;
  so.dim = 8;
  so.max_len = 10;
  torch::manual_seed(4);
  RankInputs in;
  in.sources = sources;
  in.sasrec = Sasrec(data.num_items(), so);
  in.sasrec->eval();
  in.pool_backbone = 5;
  in.pool_swing = 3;
  const std::vector<Sequence> histories = {{3, 4, 5}};
  const std::vector<Ranking> fast = {{{6, -0.1f}, {7, -0.5f}}};
  auto lists = make_rank_lists(in, histories, fast, {}, 2);
  ASSERT_EQ(lists.items.size(1), 2 + 5 + 3);
  // The backbone's own top 5 (history excluded) are in the pool.
  torch::Tensor tokens, lengths;
  pack_histories(histories, 10, tokens, lengths);
  torch::NoGradGuard no_grad;
  auto scores = in.sasrec->score_last(tokens, lengths)[0];
  for (ItemIndex h : histories[0]) scores[h] = -1e9;
  auto top = std::get<1>(scores.topk(5));
  std::set<int64_t> pool;
  for (int64_t c = 0; c < lists.items.size(1); ++c)
    if (lists.items[0][c].item<int64_t>() >= 0) pool.insert(lists.items[0][c].item<int64_t>());
  for (int64_t j = 0; j < 5; ++j) EXPECT_TRUE(pool.count(top[j].item<int64_t>())) << j;
  for (ItemIndex h : histories[0]) EXPECT_FALSE(pool.count(h));
  for (int64_t c = 0; c < lists.items.size(1); ++c) {
    const int64_t item = lists.items[0][c].item<int64_t>();
    if (item < 0) continue;
    auto f = lists.features[0][c];
    const bool fast_item = item == 6 || item == 7;
    EXPECT_EQ(f[13].item<float>(), fast_item ? 1.0f : 0.0f) << item;
    EXPECT_NEAR(f[10].item<float>(), scores[item].item<float>(), 1e-4) << item;  // its logit
    EXPECT_GT(f[13].item<float>() + f[14].item<float>() + f[15].item<float>(), 0.0f) << item;
  }
  // Without the backbone's share only the pool's items are scored, to the same logits.
  in.pool_backbone = 0;
  in.pool_swing = 0;
  auto alone = make_rank_lists(in, histories, fast, {}, 2);
  ASSERT_EQ(alone.items.size(1), 2);
  for (int64_t c = 0; c < 2; ++c) {
    const int64_t item = alone.items[0][c].item<int64_t>();
    EXPECT_NEAR(alone.features[0][c][10].item<float>(), scores[item].item<float>(), 1e-4) << item;
  }
}

TEST_F(RankStage, HeldOutListsComeFromAGeneratorThatNeverSawTheirTargets) {
  auto o = options("gbdt");
  o.training_lists = "heldout";
  run_ranker_stage(*data_, o, one_thread(), run(), true);
  // run/heldout/sidgen was trained, with run/sidgen's options, on the data without each user's last
  // item: the targets of the ranker's training lists (each user's last training item) are its
  // validation targets, never its training targets.
  auto held = Manifest::load(run() / "heldout" / "sidgen");
  ASSERT_TRUE(held);
  EXPECT_EQ(held->inputs.at("data"), without_last_items(*data_).fingerprint());
  auto own = Manifest::load(run() / "sidgen");
  EXPECT_EQ(held->config.at("dim"), own->config.at("dim"));
  auto ranker = Manifest::load(run() / "ranker");
  ASSERT_TRUE(ranker);
  EXPECT_EQ(ranker->config.at("training_lists"), "heldout");
  EXPECT_TRUE(ranker->inputs.count("heldout_sidgen"));
  // One list per user at most (the held-out item); the prefixes' lists come two per user.
  const auto held_lists = ranker->metrics.at("train_lists").get<int64_t>();
  EXPECT_GT(held_lists, 0);
  EXPECT_LE(held_lists, static_cast<int64_t>(data_->sequences.size()));
  EXPECT_TRUE(run_ranker_stage(*data_, o, one_thread(), run(), false).skipped);
  o.training_lists = "prefixes";
  run_ranker_stage(*data_, o, one_thread(), run(), false);
  EXPECT_GT(Manifest::load(run() / "ranker")->metrics.at("train_lists").get<int64_t>(), held_lists);
  // And the tool serves from the run's own generators either way.
  auto rank = load_rank_candidates(run(), one_thread());
  auto fast = load_fast_rec(run(), one_thread());
  RequestState state;
  state.history = {3, 4, 5};
  fast->run_one(state, {10, 0});
  EXPECT_EQ(rank->run_one(state, {4, 10}).items.size(), 4u);
}

TEST_F(RankStage, RankBeforeFastIsAnInvalidCallNotACrash) {
  run_ranker_stage(*data_, options("gbdt"), one_thread(), run(), false);
  auto rank = load_rank_candidates(run(), one_thread());
  RequestState state;
  state.history = {1, 2};
  auto obs = rank->run_one(state, {10, 10});
  EXPECT_NE(obs.error.find("fast_rec"), std::string::npos);
  EXPECT_TRUE(obs.items.empty());
  EXPECT_TRUE(state.candidates.empty());
  EXPECT_EQ(state.calls, std::vector<std::string>{"rank_candidates"});
  // Bad arguments after a valid fast_rec are invalid too.
  auto fast = load_fast_rec(run(), one_thread());
  RequestState ok;
  ok.history = {1, 2};
  fast->run_one(ok, {10, 0});
  auto bad = rank->run_one(ok, {0, 10});
  EXPECT_NE(bad.error.find("n must be"), std::string::npos);
  EXPECT_EQ(ok.candidates.size(), 10u);  // left as fast_rec returned them
}

TEST_F(RankStage, MissingStageIsAClearError) {
  testing::TempDir empty;
  try {
    load_rank_candidates(empty.path(), one_thread());
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("train ranker"), std::string::npos);
  }
}

}  // namespace
}  // namespace twistar
