// think_and_rec: the training rationale says only what the data supports, the untrained reasoning LM
// is exactly fast_rec (the warm start), training lowers its loss, and the whole stage on a small
// synthetic run (knowledge -> reasoner -> tool) trains, resumes, reuses and reports bad input.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "agent/fast_rec.h"
#include "agent/reasoner_training.h"
#include "agent/think_and_rec.h"
#include "apps/knowledge_stage.h"
#include "apps/pipeline.h"
#include "core/error.h"
#include "core/manifest.h"
#include "fixtures.h"
#include "model_fixtures.h"
#include "models/sid_generator_trainer.h"
#include "serve/service.h"
#include "test_util.h"

namespace twistar {
namespace {

// Two groups of users that never mix: {a0, a1, a2} (brand x, Makeup > Nails) and {b0, b1, b2}
// (no brand, Skin > Face > Creams).
Dataset grouped_dataset() {
  std::vector<std::string> users;
  std::vector<std::vector<std::string>> seqs;
  for (int u = 0; u < 8; ++u) {
    users.push_back("u" + std::to_string(u));
    const std::string g = u % 2 == 0 ? "a" : "b";
    seqs.push_back({g + "0", g + "1", g + "2", g + "1", g + "0"});
  }
  std::unordered_map<std::string, ItemMeta> meta;
  for (int i = 0; i < 3; ++i) {
    ItemMeta a;
    a.brand = "x";
    a.title = "polish " + std::to_string(i);
    a.categories = {"Makeup", "Nails"};
    meta["a" + std::to_string(i)] = a;
    ItemMeta b;
    b.title = "cream " + std::to_string(i);
    b.categories = {"Skin", "Face", "Creams"};
    meta["b" + std::to_string(i)] = b;
  }
  return build_dataset("grouped", users, seqs, meta);
}

TEST(RationaleBuilder, StatesTheTargetAndOnlyLinksTheDataSupports) {
  Dataset data = grouped_dataset();
  auto knowledge = build_item_knowledge(data);
  ASSERT_FALSE(knowledge.pairs.empty());
  RationaleBuilder builder(data, knowledge, 8);
  const ItemIndex a0 = *data.find_item("a0"), a1 = *data.find_item("a1"), b0 = *data.find_item("b0");
  const ItemIndex b1 = *data.find_item("b1");
  // a0 -> a1: linked (every "a" user took both), same brand, the previous item.
  const std::string linked = builder.build({a0}, a1);
  EXPECT_EQ(linked.rfind("next: Makeup > Nails. brand: x. link: ", 0), 0u) << linked;
  EXPECT_NE(linked.find(", 1 back, same brand."), std::string::npos) << linked;
  // a0 -> b1: no user took both, so no link is claimed; b1 has no brand, so none is named.
  EXPECT_EQ(builder.build({a0}, b1), "next: Face > Creams. link: none.");
  // The link found is the most recent linked item: b0 two back, a0 last.
  EXPECT_NE(builder.build({b0, a0}, b1).find("2 back"), std::string::npos);
  EXPECT_EQ(builder.describe(a0), "item: polish 0. category: Makeup > Nails. brand: x.");
}

// A small run: synthetic data, a SID map, a briefly trained SID generator and the knowledge stage.
struct SmallRun {
  testing::TempDir dir;
  Dataset data = testing::small_synth();
  Context ctx = testing::small_context();

  SmallRun() {
    CodeMatrix codes(data.num_items(), 2);
    for (int i = 0; i < static_cast<int>(data.num_items()); ++i) {
      codes(i, 0) = i / 16;
      codes(i, 1) = i % 16;
    }
    std::filesystem::create_directories(dir / "sid");
    SidMap::build(codes, {16, 16}).save(dir / "sid" / "sid_map.json");
    auto so = testing::small_sidgen_options();
    so.train.epochs = 3;
    run_sidgen_stage(data, so, ctx, dir.path(), false);
    KnowledgeStageOptions ko;
    ko.tokenizer.vocab_size = 1000;
    run_knowledge_stage(data, ko, ctx, dir.path());
  }
};

// Every piece but <pad>, <unk>, the SID tokens and the think tags counts as text.
ReasonerVocab text_vocab(const SpTokenizer& tok) {
  ReasonerVocab vocab;
  vocab.size = tok.vocab_size();
  vocab.think = tok.think_id();
  vocab.think_end = tok.think_end_id();
  for (int id = 2; id < tok.vocab_size(); ++id)
    if (!tok.is_sid_token(id) && id != tok.think_id() && id != tok.think_end_id()) vocab.text_ids.push_back(id);
  return vocab;
}

ReasonerTrainOptions tiny_options() {
  ReasonerTrainOptions o;
  o.model.layers = 1;
  o.model.context_items = 4;
  o.model.max_rationale = 24;
  o.train.epochs = 2;
  o.train.batch_size = 64;
  o.train.lr = 3e-3;
  o.valid_users = 100;
  o.valid_beam = 10;
  return o;
}

SmallRun& small_run() {
  static SmallRun run;
  return run;
}

// The small run with a ranker over 20 fast_rec candidates and the reasoner (each trained once).
SmallRun& small_run_with_ranker() {
  auto& run = small_run();
  RankerOptions ro;
  ro.candidates = 20;
  ro.lists_per_user = 2;
  ro.gbdt_rounds = 20;
  run_ranker_stage(run.data, ro, run.ctx, run.dir.path(), false);
  run_reasoner_stage(run.data, tiny_options(), run.ctx, run.dir.path(), false);
  return run;
}

TEST(Reasoner, BeforeTrainingItIsExactlyFastRec) {
  auto& run = small_run();
  auto sids = SidMap::load(run.dir / "sid" / "sid_map.json");
  auto base = load_sid_generator(run.dir / "sidgen", sids.sids(), sids.level_sizes(), run.ctx);
  auto tok = SpTokenizer::load(run.dir / "knowledge" / "tokenizer.model");
  ReasonerVocab vocab = text_vocab(tok);
  auto text = torch::randint(0, tok.vocab_size(), {run.data.num_items(), 8}, torch::kLong);
  ReasonerOptions o;
  Reasoner model(base, vocab, text, o);
  model->eval();
  std::vector<Sequence> histories;
  for (int u = 0; u < 12; ++u) histories.push_back(truncate_history(run.data.sequences[u], 10));
  BeamSearchOptions search{10, 10};
  auto fast = sid_generator_recommend(base, sids.trie(), histories, search, true, 64);
  ThinkAndRecOptions to = ThinkAndRecOptions::greedy();
  to.beam = 10;
  for (bool rationale : {false, true}) {
    auto slow = think_and_rec_search(model, sids.trie(), &tok, histories, to, 10, true, rationale);
    for (size_t i = 0; i < histories.size(); ++i) {
      ASSERT_EQ(slow.rankings[i].size(), fast[i].size());
      for (size_t r = 0; r < fast[i].size(); ++r) {
        EXPECT_EQ(slow.rankings[i][r].item, fast[i][r].item) << "user " << i << " rank " << r;
        EXPECT_NEAR(slow.rankings[i][r].score, fast[i][r].score, 1e-4);
      }
      EXPECT_EQ(slow.rationales[i].empty(), !rationale);
    }
  }
}

TEST(Reasoner, TrainingStepsLowerBothLosses) {
  auto& run = small_run();
  auto sids = SidMap::load(run.dir / "sid" / "sid_map.json");
  auto base = load_sid_generator(run.dir / "sidgen", sids.sids(), sids.level_sizes(), run.ctx);
  auto tok = SpTokenizer::load(run.dir / "knowledge" / "tokenizer.model");
  ReasonerVocab vocab = text_vocab(tok);
  torch::manual_seed(3);
  Reasoner model(base, vocab, torch::full({run.data.num_items(), 8}, -1, torch::kLong), ReasonerOptions{});
  std::vector<ReasonerExample> batch;
  for (int u = 0; u < 16; ++u) {
    const auto& s = run.data.sequences[u];
    batch.push_back({Sequence(s.begin(), s.begin() + 2), tok.encode("next: a fixed thought."), s[2]});
  }
  auto opt = torch::optim::Adam(model->parameters(), torch::optim::AdamOptions(3e-3));
  model->train();
  double sid0 = 0, text0 = 0, sid = 0, text = 0;
  model->loss(batch, false, &sid0, &text0);
  for (int step = 0; step < 30; ++step) {
    auto loss = model->loss(batch, false, &sid, &text);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  EXPECT_LT(sid, 0.8 * sid0);
  EXPECT_LT(text, 0.5 * text0);
}

TEST(ThinkAndRecStage, TrainsResumesReusesAndServesTheTool) {
  auto& run = small_run();
  auto o = tiny_options();
  // Interrupted after one epoch of the first stage, then resumed to the end.
  auto sids = SidMap::load(run.dir / "sid" / "sid_map.json");
  auto base = load_sid_generator(run.dir / "sidgen", sids.sids(), sids.level_sizes(), run.ctx);
  auto tok = SpTokenizer::load(run.dir / "knowledge" / "tokenizer.model");
  TrainControl stop;
  stop.progress = false;
  stop.stop_after_epochs = 1;
  testing::TempDir other;
  auto partial = train_reasoner(run.data, base, sids, tok, run.dir / "knowledge", o, run.ctx, other / "r", stop);
  EXPECT_FALSE(partial.finished);
  TrainControl go;
  go.progress = false;
  auto resumed = train_reasoner(run.data, base, sids, tok, run.dir / "knowledge", o, run.ctx, other / "r", go);
  ASSERT_TRUE(resumed.finished);
  for (const char* stage : {"align", "commonsense", "reasoning"}) EXPECT_TRUE(resumed.valid_ndcg10.count(stage));
  auto straight = train_reasoner(run.data, base, sids, tok, run.dir / "knowledge", o, run.ctx, other / "s", go);
  EXPECT_DOUBLE_EQ(resumed.valid_ndcg10["reasoning"], straight.valid_ndcg10["reasoning"]);

  // The pipeline stage, then reuse, then the tool.
  auto first = run_reasoner_stage(run.data, o, run.ctx, run.dir.path(), false);
  EXPECT_FALSE(first.skipped);
  EXPECT_TRUE(run_reasoner_stage(run.data, o, run.ctx, run.dir.path(), false).skipped);
  auto m = Manifest::load(run.dir / "reasoner");
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->metrics.contains("fast_valid_ndcg@10"));
  EXPECT_TRUE(m->metrics.contains("kept_stage"));
  EXPECT_TRUE(std::filesystem::exists(run.dir / "reasoner" / "model.pt"));
  // Beam 20 is wider than the 13 live first codes: dead hypotheses must not crowd out the live ones.
  auto tool = load_think_and_rec(run.dir.path(), run.ctx);
  std::vector<RequestState> requests(3);
  for (int u = 0; u < 3; ++u) requests[u].history = truncate_history(run.data.sequences[u], 10);
  auto obs = tool->run(requests, {7, 0});
  for (int u = 0; u < 3; ++u) {
    EXPECT_EQ(obs[u].items.size(), 7u);
    std::set<ItemIndex> seen(requests[u].history.begin(), requests[u].history.end());
    for (const auto& si : obs[u].items) EXPECT_FALSE(seen.count(si.item));
    EXPECT_FALSE(obs[u].rationale.empty());  // two epochs on tiny data: written, not yet fluent
    EXPECT_EQ(requests[u].calls.back(), "think_and_rec");
  }
  EXPECT_THROW(tool->run(requests, {0, 0}), InputError);

  // With the grammar every rationale names a catalogue category (parse_rationale reads it back) and
  // ends with a well-formed link, however little the LM was trained; grounding re-scores the beam.
  ThinkAndRecOptions shaped;  // the defaults: grammar, grounding, sampled rationales
  shaped.samples = 2;
  auto grounded = load_think_and_rec(run.dir.path(), run.ctx, shaped);
  auto facts = ItemFacts::load(run.dir / "knowledge" / "item_facts.tsv", run.data.num_items());
  std::set<std::string> categories(facts.category.begin(), facts.category.end());
  auto shaped_obs = grounded->run(requests, {7, 0});
  for (int u = 0; u < 3; ++u) {
    const auto& text = shaped_obs[u].rationale;
    EXPECT_TRUE(categories.count(parse_rationale(text).category)) << text;
    EXPECT_NE(text.find(" link: "), std::string::npos) << text;
    EXPECT_EQ(text.back(), '.') << text;
    EXPECT_EQ(shaped_obs[u].items.size(), 7u);
    std::set<ItemIndex> seen(requests[u].history.begin(), requests[u].history.end());
    for (const auto& si : shaped_obs[u].items) EXPECT_FALSE(seen.count(si.item));
  }

  // Proposed candidates: knowledge neighbours of the linked history item, scored by the same LM
  // (code_log_probs, which equals the incremental decoding: test_beam_search.cc; ProposalsAreTheLinked
  // ItemsNeighboursScoredByTheLm below). The 2-epoch model links nothing, so proposals change nothing
  // here: the narrow beam's items keep the wide beam's scores.
  ThinkAndRecOptions wide = shaped, narrow = shaped;
  wide.ground.link = narrow.ground.link = 50.0;
  wide.samples = narrow.samples = 1;
  wide.beam = 200;
  narrow.beam = 7;
  narrow.propose = 100;
  auto greedy_narrow = load_think_and_rec(run.dir.path(), run.ctx, narrow)->run(requests, {7, 0});
  auto wide_obs = load_think_and_rec(run.dir.path(), run.ctx, wide)->run(requests, {50, 0});
  int compared = 0;
  for (int u = 0; u < 3; ++u)
    for (const auto& si : greedy_narrow[u].items)
      for (const auto& w : wide_obs[u].items)
        if (w.item == si.item) {
          EXPECT_NEAR(w.score, si.score, 1e-4);
          ++compared;
        }
  EXPECT_EQ(compared, 21);  // the wide beam's top 50 holds all 3 x 7

  // A request's sampled rationales depend on its history only: alone it gets the same answer.
  for (int u = 0; u < 3; ++u) {
    RequestState alone;
    alone.history = requests[u].history;
    auto single = grounded->run_one(alone, {7, 0});
    ASSERT_EQ(single.items.size(), shaped_obs[u].items.size());
    for (size_t r = 0; r < single.items.size(); ++r) EXPECT_EQ(single.items[r].item, shaped_obs[u].items[r].item);
    EXPECT_EQ(single.rationale, shaped_obs[u].rationale);
  }

  // Called right after rank_candidates, the thought's list is fused with the ranked candidates.
  ThinkAndRecOptions fusing = shaped;
  fusing.fuse = 0.8;
  auto fuser = load_think_and_rec(run.dir.path(), run.ctx, fusing);
  RequestState thought, after;
  thought.history = after.history = requests[0].history;
  const Ranking own = fuser->run_one(thought, {7, 0}).items;
  after.candidates = Ranking(own.rbegin(), own.rend());
  after.calls = {"fast_rec", "rank_candidates"};
  const Ranking ranked = after.candidates;
  const Ranking fused = fuser->run_one(after, {7, 0}).items;
  const Ranking expected = fuse_rankings(ranked, own, 0.8, fusing.fuse_offset, 7);
  ASSERT_EQ(fused.size(), expected.size());
  for (size_t r = 0; r < fused.size(); ++r) EXPECT_EQ(fused[r].item, expected[r].item);
  EXPECT_EQ(fused.front().item, own.back().item);  // the ranking's head, the thought's tail
  EXPECT_EQ(after.candidates.front().item, fused.front().item);

  // A memo shares searches between tools (the systems of one evaluation): the second tool answers
  // from it, with the same lists and rationales, and still fuses after rank_candidates.
  auto memo = std::make_shared<ThinkMemo>();
  auto first_tool = load_think_and_rec(run.dir.path(), run.ctx, fusing);
  auto second_tool = load_think_and_rec(run.dir.path(), run.ctx, fusing);
  first_tool->set_memo(memo);
  second_tool->set_memo(memo);
  // Both read one copy of the weights; a weights file written since is loaded afresh.
  EXPECT_TRUE(first_tool->shares_weights_with(*second_tool));
  const auto weights = run.dir / "reasoner" / "model.pt";
  std::filesystem::last_write_time(weights, std::filesystem::last_write_time(weights) + std::chrono::seconds(1));
  auto rewritten = load_think_and_rec(run.dir.path(), run.ctx, fusing);
  EXPECT_FALSE(rewritten->shares_weights_with(*first_tool));
  RequestState again = thought;
  again.calls.clear();
  const auto searched = first_tool->run_one(again, {7, 0});
  EXPECT_EQ(memo->size(), 1u);
  EXPECT_EQ(memo->hits(), 0u);
  RequestState again_after = after;
  again_after.candidates = ranked;
  again_after.calls = {"fast_rec", "rank_candidates"};
  const auto remembered = second_tool->run_one(again_after, {7, 0});
  EXPECT_EQ(memo->hits(), 1u);
  ASSERT_EQ(remembered.items.size(), fused.size());
  for (size_t r = 0; r < fused.size(); ++r) EXPECT_EQ(remembered.items[r].item, fused[r].item);
  EXPECT_EQ(remembered.rationale, searched.rationale);
  // Another k, another reasoner or other search options is another search; an inactive memo is
  // neither read nor written.
  RequestState other_k = thought;
  first_tool->run_one(other_k, {5, 0});
  EXPECT_EQ(memo->size(), 2u);
  auto other_source = load_think_and_rec(run.dir.path(), run.ctx, fusing);
  other_source->set_memo(memo, "another reasoner");
  RequestState other_reasoner = thought;
  other_source->run_one(other_reasoner, {7, 0});
  EXPECT_EQ(memo->size(), 3u);
  ThinkAndRecOptions two_samples = fusing;
  two_samples.samples = fusing.samples + 1;
  auto other_options = load_think_and_rec(run.dir.path(), run.ctx, two_samples);
  other_options->set_memo(memo);
  RequestState other_search = thought;
  other_options->run_one(other_search, {7, 0});
  EXPECT_EQ(memo->size(), 4u);
  EXPECT_EQ(memo->hits(), 1u);
  memo->set_active(false);
  RequestState off = thought;
  EXPECT_EQ(first_tool->run_one(off, {7, 0}).rationale, searched.rationale);
  EXPECT_EQ(memo->hits(), 1u);
  EXPECT_EQ(memo->size(), 4u);

  // The ablation without rationales writes none.
  auto plain = o;
  plain.rationale = false;
  plain.commonsense = false;
  run_reasoner_stage(run.data, plain, run.ctx, run.dir.path(), false, false, "plain");
  auto plain_tool = load_think_and_rec(run.dir.path(), run.ctx, {}, "plain");
  EXPECT_TRUE(plain_tool->run_one(requests[0], {5, 0}).rationale.empty());
  EXPECT_FALSE(plain_tool->shares_weights_with(*first_tool));
}

// Proposals: the linked history item's neighbours, strongest first (then the last items' neighbours
// in the named category), scored by the SID decoder from the thought; items already ranked or in the
// history are skipped, at most n per request.
TEST(ThinkAndRec, ProposalsAreTheLinkedItemsNeighboursScoredByTheLm) {
  auto& run = small_run();
  auto sids = SidMap::load(run.dir / "sid" / "sid_map.json");
  auto base = load_sid_generator(run.dir / "sidgen", sids.sids(), sids.level_sizes(), run.ctx);
  base->eval();
  torch::NoGradGuard no_grad;
  ItemKnowledge k;
  for (auto [b, swing] : {std::pair<ItemIndex, float>{5, 0.9f}, {6, 0.8f}, {7, 0.7f}, {8, 0.6f}, {9, 0.5f}}) {
    PairKnowledge p;
    p.a = 1;
    p.b = b;
    p.swing = swing;
    k.pairs.push_back(p);
  }
  ItemFacts facts;
  facts.category.assign(static_cast<size_t>(run.data.num_items()), "A");
  facts.brand.assign(static_cast<size_t>(run.data.num_items()), "");
  RationaleGrounding grounding(facts, k);
  const std::vector<Sequence> histories = {{6, 1}, {1, 2}};
  auto h = base->encode_last(torch::tensor({6, 1, 1, 2}, torch::kLong).view({2, 2}), torch::tensor({2, 2}, torch::kLong));
  std::vector<Ranking> rankings = {{{5, -1.0f}}, {}};
  add_proposals(base, h, {"next: A. link: strong, 1 back, same line.", "next: A. link: strong, 2 back, same line."},
                histories, true, 2, grounding, rankings);
  // Request 0: 5 is ranked, 6 is in the history: 7 and 8. Request 1: 5 and 6.
  auto forced = [&](int row, ItemIndex item) {
    return base->code_log_probs(h.index({torch::indexing::Slice(row, row + 1)}), torch::tensor({item}, torch::kLong))
        .sum()
        .item<float>();
  };
  ASSERT_EQ(rankings[0].size(), 3u);
  EXPECT_EQ(rankings[0][1].item, 7);
  EXPECT_EQ(rankings[0][2].item, 8);
  EXPECT_NEAR(rankings[0][2].score, forced(0, 8), 1e-5);
  ASSERT_EQ(rankings[1].size(), 2u);
  EXPECT_EQ(rankings[1][0].item, 5);
  EXPECT_NEAR(rankings[1][1].score, forced(1, 6), 1e-5);
  // Without a link, the last items' neighbours in the named category; an unknown category names none.
  std::vector<Ranking> by_category(1), none(1);
  add_proposals(base, h.index({torch::indexing::Slice(0, 1)}), {"next: A. link: none."}, {{1}}, true, 1, grounding,
                by_category);
  ASSERT_EQ(by_category[0].size(), 1u);
  EXPECT_EQ(by_category[0][0].item, 5);
  add_proposals(base, h.index({torch::indexing::Slice(0, 1)}), {"next: Z. link: none."}, {{1}}, true, 5, grounding,
                none);
  EXPECT_TRUE(none[0].empty());
}

// The grammar's every path spells a header of some catalogue item and a link, then </think>.
TEST(RationaleGrammar, EveryPathIsAWellFormedRationale) {
  auto& run = small_run();
  auto tok = SpTokenizer::load(run.dir / "knowledge" / "tokenizer.model");
  auto facts = ItemFacts::load(run.dir / "knowledge" / "item_facts.tsv", run.data.num_items());
  auto vocab = text_vocab(tok);
  RationaleGrammar grammar(facts, tok, 4, vocab.text_ids, tok.think_end_id());
  std::set<std::string> headers;
  for (size_t i = 0; i < facts.category.size(); ++i) headers.insert(rationale_header(facts.category[i], facts.brand[i]));
  EXPECT_EQ(grammar.headers(), headers.size());
  EXPECT_EQ(grammar.links(), 1u + 3 * 4 * 4);
  std::mt19937 rng(7);
  for (int walk = 0; walk < 200; ++walk) {
    std::vector<int> ids;
    int32_t state = 0;
    for (;;) {
      const auto& allowed = grammar.allowed(state);
      ASSERT_FALSE(allowed.empty());
      const int64_t id = allowed[rng() % allowed.size()];
      if (id == tok.think_end_id()) break;
      ids.push_back(static_cast<int>(id));
      state = grammar.next(state, id);
      ASSERT_LT(ids.size(), 200u);
    }
    const std::string text = tok.decode(ids);
    const size_t link = text.find(" link: ");
    ASSERT_NE(link, std::string::npos) << text;
    EXPECT_TRUE(headers.count(text.substr(0, link))) << text;
    const auto claims = parse_rationale(text);
    EXPECT_TRUE(text.substr(link) == " link: none." || (claims.link_back >= 1 && claims.link_back <= 4)) << text;
  }
  EXPECT_THROW(grammar.next(0, tok.think_end_id()), Error);
}

TEST(ThinkAndRecStage, MissingInputsSayWhatToRun) {
  testing::TempDir empty;
  auto data = testing::small_synth();
  try {
    run_reasoner_stage(data, tiny_options(), testing::small_context(), empty.path(), false);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("twistar sid"), std::string::npos) << e.what();
  }
  try {
    load_think_and_rec(empty.path(), testing::small_context());
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("train reasoner"), std::string::npos) << e.what();
  }
}

// The whole pipeline behind the planner on the small run: ranker and reasoner, the planner stage
// (episodes, warm-up, GRPO), the full evaluation table and mode auto of the service.
TEST(PlannerStage, TrainsEvaluatesAndServesTheWholePipeline) {
  auto& run = small_run_with_ranker();
  PlannerOptions po;
  po.wide = 20;
  po.betas = {0, 10};
  po.cost_requests = 10;
  po.sft.epochs = 3;
  po.grpo.epochs = 2;
  po.grpo.batch_size = 64;
  auto first = run_planner_stage(run.data, po, run.ctx, run.dir.path(), false);
  EXPECT_FALSE(first.skipped);
  EXPECT_TRUE(run_planner_stage(run.data, po, run.ctx, run.dir.path(), false).skipped);
  auto m = Manifest::load(run.dir / "planner");
  ASSERT_TRUE(m);
  EXPECT_GT(m->metrics.at("costs").at("ms").at("think_and_rec").get<double>(), 0.0);

  EvalStageOptions eo;
  eo.systems = {"fast_only",     "fast_rank",        "slow",        "fast_rank_slow", "twistar",
                "router_random", "router_threshold", "twistar_sft", "oracle"};
  eo.eval.latency_requests = 20;
  eo.eval.throughput_batch = 0;
  eo.eval.progress = false;
  eo.planner_betas = {0, 1000};
  eo.lists = run.dir / "lists.jsonl";
  auto doc = run_eval_stage(run.data, eo, run.ctx, run.dir.path());
  const auto& sys = doc.at("systems");
  for (const auto& name : eo.systems) ASSERT_TRUE(sys.contains(name)) << name;
  // --lists: one line per user with every ranking system's list, in the data's ids; the target's
  // position in each list gives back that system's NDCG@10.
  {
    std::ifstream in(eo.lists);
    std::string line;
    std::map<std::string, double> ndcg;
    size_t users = 0;
    while (std::getline(in, line)) {
      const auto row = nlohmann::json::parse(line);
      ++users;
      EXPECT_FALSE(row.at("history").empty());
      ASSERT_EQ(row.at("lists").size(), eo.systems.size() - 1) << "every system but the oracle";
      for (const auto& [name, list] : row.at("lists").items()) {
        for (size_t p = 0; p < list.size() && p < 10; ++p)
          if (list[p][0] == row.at("target")) ndcg[name] += 1.0 / std::log2(static_cast<double>(p) + 2.0);
      }
    }
    ASSERT_EQ(users, make_examples(run.data, Split::kTest, {50}).size());
    for (const char* name : {"fast_rank", "fast_rank_slow", "twistar"})
      EXPECT_NEAR(ndcg[name] / static_cast<double>(users), sys.at(name).at("ndcg@10").get<double>(), 1e-9) << name;
  }
  // The oracle picks per user the best of the plans: never below any of them.
  for (const char* plan : {"fast_only", "fast_rank", "slow", "fast_rank_slow"})
    EXPECT_GE(sys.at("oracle").at("ndcg@10").get<double>() + 1e-12, sys.at(plan).at("ndcg@10").get<double>());
  EXPECT_TRUE(sys.at("twistar").contains("plan_shares"));
  // router_random draws from the canonical mix twistar ran (evaluated before it).
  const auto& mix = sys.at("twistar").at("mix_shares");
  const auto& drawn = sys.at("router_random").at("router_mix");
  double total = 0;
  for (const char* plan : {"fast_only", "fast_rank", "slow", "fast_rank_slow"}) {
    EXPECT_NEAR(drawn.at(plan).get<double>(), mix.at(plan).get<double>(), 1e-9) << plan;
    total += mix.at(plan).get<double>();
  }
  EXPECT_NEAR(total, 1.0, 1e-9);
  const auto& sweep = sys.at("twistar").at("beta_sweep");
  ASSERT_EQ(sweep.size(), 2u);
  // Each β of the sweep is a full evaluation (how β steers the plan is tested on the scripted tools
  // in test_planner.cc: this planner trains for two epochs and never saw β = 1000).
  for (const auto& row : sweep) {
    EXPECT_GE(row.at("slow_rate").get<double>(), 0.0);
    EXPECT_LE(row.at("slow_rate").get<double>(), 1.0);
    EXPECT_GT(row.at("latency_ms").at("mean").get<double>(), 0.0);
    EXPECT_GE(row.at("ndcg@10").get<double>(), 0.0);
  }
  EXPECT_EQ(sweep[1].at("beta").get<double>(), 1000.0);

  // Mode auto serves the planner: the plan it ran and what each call cost.
  ServeOptions so;
  auto service = load_service(run.dir.path(), so, run.ctx);
  nlohmann::json request = {{"history", {run.data.item_ids[run.data.sequences[0][0]],
                                         run.data.item_ids[run.data.sequences[0][1]]}},
                            {"k", 5},
                            {"mode", "auto"}};
  auto answer = service->handle(request.dump());
  ASSERT_EQ(answer.status, 200) << answer.body.dump();
  EXPECT_EQ(answer.body.at("items").size(), 5u);
  EXPECT_NE(answer.body.at("ran").get<std::string>(), "fast");
  EXPECT_FALSE(answer.body.at("plan").empty());
  EXPECT_FALSE(answer.plan.empty());
  // Mode slow runs think_and_rec and returns its rationale.
  auto slow = request;
  slow["mode"] = "slow";
  answer = service->handle(slow.dump());
  ASSERT_EQ(answer.status, 200) << answer.body.dump();
  EXPECT_EQ(answer.body.at("ran"), "slow");
  EXPECT_EQ(answer.plan, "think_and_rec");
  EXPECT_FALSE(answer.body.value("rationale", "").empty());
  request["latency_budget_ms"] = 1e-3;  // nothing fits: only the cheapest list is ever made
  answer = service->handle(request.dump());
  ASSERT_EQ(answer.status, 200) << answer.body.dump();
  const std::string ran = answer.body.at("ran");
  EXPECT_TRUE(ran == "fast_rec" || ran == "fallback") << ran;
  EXPECT_EQ(answer.body.at("items").size(), 5u);
}

TEST(ThinkAndRec, AfterRankingWithARankerTheThoughtWidensTheRankedPool) {
  auto& run = small_run_with_ranker();
  auto fast = load_fast_rec(run.dir.path(), run.ctx);
  auto rank = load_rank_candidates(run.dir.path(), run.ctx);
  ThinkAndRecOptions o;
  o.rerank_pool = 12;
  auto think = load_think_and_rec(run.dir.path(), run.ctx, o);
  EXPECT_FALSE(think->reranks());
  EXPECT_EQ(think->own_length(5), 5);
  think->set_reranker(fast, rank);
  EXPECT_TRUE(think->reranks());
  EXPECT_EQ(think->own_length(5), 12);
  EXPECT_EQ(think->own_length(30), 30);

  const Sequence history = run.data.sequences[7];
  RequestState alone, pool, after;
  alone.history = pool.history = after.history = history;
  // Its own answer is the head of the pool it searches.
  const Ranking own = think->run_one(pool, {12, 0}).items;
  ASSERT_EQ(own.size(), 12u);
  const Ranking head = think->run_one(alone, {5, 0}).items;
  ASSERT_EQ(head.size(), 5u);
  for (size_t i = 0; i < head.size(); ++i) EXPECT_EQ(head[i].item, own[i].item);
  // After fast_rec and rank_candidates the ranker orders fast_rec's candidates joined by that pool.
  fast->run_one(after, {20, 0});
  const Ranking retrieved = after.retrieved;
  rank->run_one(after, {5, 20});
  const Ranking answer = think->run_one(after, {5, 0}).items;
  // The ranking at the pool's length, then fused with the thought's own list by log-rank.
  const Ranking joined = rank_union(*fast, *rank, {history}, {retrieved}, {own}, 12).at(0);
  const Ranking expected = fuse_ranks(joined, own, o.thought_rank_weight, 5);
  ASSERT_EQ(answer.size(), expected.size());
  for (size_t i = 0; i < answer.size(); ++i) EXPECT_EQ(answer[i].item, expected[i].item);
  // Weight 0: the ranker's order alone.
  ThinkAndRecOptions unfused = o;
  unfused.thought_rank_weight = 0;
  auto ranker_only = load_think_and_rec(run.dir.path(), run.ctx, unfused);
  ranker_only->set_reranker(fast, rank);
  RequestState plain;
  plain.history = history;
  fast->run_one(plain, {20, 0});
  rank->run_one(plain, {5, 20});
  const Ranking by_ranker = ranker_only->run_one(plain, {5, 0}).items;
  ASSERT_EQ(by_ranker.size(), 5u);
  for (size_t i = 0; i < by_ranker.size(); ++i) EXPECT_EQ(by_ranker[i].item, joined[i].item);
  // Switched off, the same tool fuses by reciprocal rank as before.
  o.rerank = false;
  auto fusing = load_think_and_rec(run.dir.path(), run.ctx, o);
  fusing->set_reranker(fast, rank);
  EXPECT_FALSE(fusing->reranks());
  RequestState again;
  again.history = history;
  fast->run_one(again, {20, 0});
  const Ranking ranked = rank->run_one(again, {5, 20}).items;
  const Ranking fused = fusing->run_one(again, {5, 0}).items;
  const Ranking by_rank = fuse_rankings(ranked, head, o.fuse, o.fuse_offset, 5);
  ASSERT_EQ(fused.size(), by_rank.size());
  for (size_t i = 0; i < fused.size(); ++i) EXPECT_EQ(fused[i].item, by_rank[i].item);
}

}  // namespace
}  // namespace twistar
