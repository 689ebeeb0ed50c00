// The agent loop and the planner. Scripted tools on a toy catalogue make the right plan depend on
// the history: after an even item the next item is item+1 (what fast_rec ranks first), after an odd
// one it is item+3 (what think_and_rec ranks first). So the best plan is fast_only after even items
// and slow after odd ones, and a planner that reads the history's SIDs can learn it.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <set>

#include "agent/agent_loop.h"
#include "agent/fast_rec.h"
#include "agent/planner.h"
#include "agent/routers.h"
#include "agent/think_and_rec.h"
#include "apps/pipeline.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/manifest.h"
#include "data/ranks.h"
#include "model_fixtures.h"
#include "sid/sid_map.h"
#include "test_util.h"

namespace twistar {
namespace {

constexpr int kItems = 64;

int next_item(int x) { return (x % 2 == 0 ? x + 1 : x + 3) % kItems; }

/// Returns `first` then the other candidate, then the following items; records itself in the state.
class ScriptedTool : public Tool {
 public:
  ScriptedTool(std::string name, bool slow_order) : name_(std::move(name)), slow_order_(slow_order) {}
  std::string name() const override { return name_; }
  std::vector<Observation> run(std::vector<RequestState>& requests, const ToolArgs& args) const override {
    ++calls;
    std::vector<Observation> out(requests.size());
    for (size_t i = 0; i < requests.size(); ++i) {
      auto& o = out[i];
      o.tool = name_;
      o.cost_ms = 0.01;
      if (name_ == "rank_candidates") {
        if (requests[i].candidates.empty()) o.error = "rank_candidates needs a prior fast_rec";
        else {
          o.items = requests[i].candidates;  // keeps fast_rec's order
          if (o.items.size() > static_cast<size_t>(args.k)) o.items.resize(args.k);
        }
      } else {
        const int x = requests[i].history.back();
        const int a = (x + 1) % kItems, b = (x + 3) % kItems;
        std::vector<int> order = slow_order_ ? std::vector<int>{b, a} : std::vector<int>{a, b};
        for (int j = 4; static_cast<int>(order.size()) < args.k; ++j) order.push_back((x + j) % kItems);
        float score = 0;
        for (int item : order) o.items.push_back({item, score -= 1.0f});
        if (name_ == "think_and_rec") o.rationale = "after " + std::to_string(x);
        if (after_rank(requests[i])) o.items = after_ranking({&requests[i]}, {o.items}, args.k).at(0);
      }
      record(requests[i], o);
    }
    return out;
  }
  mutable int calls = 0;

 private:
  std::string name_;
  bool slow_order_;
};

Toolbox scripted_tools() {
  Toolbox t;
  t.fast = std::make_shared<ScriptedTool>("fast_rec", false);
  t.rank = std::make_shared<ScriptedTool>("rank_candidates", false);
  t.think = std::make_shared<ScriptedTool>("think_and_rec", true);
  t.wide = 5;
  return t;
}

/// Users walking the rule from random starts; length 6.
Dataset rule_dataset(int users) {
  std::vector<std::string> ids;
  std::vector<std::vector<std::string>> seqs;
  std::mt19937 rng(5);
  for (int u = 0; u < users; ++u) {
    ids.push_back("u" + std::to_string(u));
    int x = static_cast<int>(rng() % kItems);
    std::vector<std::string> s;
    for (int j = 0; j < 6; ++j) {
      s.push_back("i" + std::to_string(x));
      x = next_item(x);
    }
    seqs.push_back(s);
  }
  // Every item appears so that indices follow first appearance; map raw ids back by name below.
  return build_dataset("rule", ids, seqs, {});
}

/// Item indices follow first appearance: SIDs are built from the raw ids (i<x>) so parity is in them.
void write_sids(const Dataset& data, const std::filesystem::path& run) {
  CodeMatrix codes(data.num_items(), 2);
  for (int i = 0; i < data.num_items(); ++i) {
    const int x = std::stoi(data.item_ids[i].substr(1));
    codes(i, 0) = x / 8;
    codes(i, 1) = x % 8;
  }
  std::filesystem::create_directories(run / "sid");
  SidMap::build(codes, {8, 8}).save(run / "sid" / "sid_map.json");
}

/// The toy's tools speak raw item numbers; this wraps them into the dataset's indices.
class IndexedTool : public Tool {
 public:
  IndexedTool(std::shared_ptr<const Tool> inner, const Dataset& data) : inner_(std::move(inner)) {
    for (int i = 0; i < data.num_items(); ++i) {
      const int x = std::stoi(data.item_ids[i].substr(1));
      to_raw_[i] = x;
      to_index_[x] = i;
    }
  }
  std::string name() const override { return inner_->name(); }
  std::vector<Observation> run(std::vector<RequestState>& requests, const ToolArgs& args) const override {
    std::vector<RequestState> raw = requests;
    for (auto& r : raw) {
      for (auto& item : r.history) item = to_raw_.at(item);
      for (auto& c : r.candidates) c.item = to_raw_.at(c.item);
    }
    auto out = inner_->run(raw, args);
    for (size_t i = 0; i < out.size(); ++i) {
      Ranking mapped;
      for (auto c : out[i].items)
        if (to_index_.count(c.item)) mapped.push_back({to_index_.at(c.item), c.score});
      out[i].items = mapped;
      requests[i].cost_ms += out[i].cost_ms;
      requests[i].calls.push_back(out[i].tool);
      if (out[i].error.empty()) requests[i].candidates = mapped;
    }
    return out;
  }

 private:
  std::shared_ptr<const Tool> inner_;
  std::map<int, int> to_raw_, to_index_;
};

Toolbox indexed_tools(const Dataset& data) {
  auto t = scripted_tools();
  t.fast = std::make_shared<IndexedTool>(t.fast, data);
  t.rank = std::make_shared<IndexedTool>(t.rank, data);
  t.think = std::make_shared<IndexedTool>(t.think, data);
  return t;
}

double ndcg_of_list(const Ranking& list, ItemIndex target) { return ndcg_at(rank_of(list, target), 10); }

/// Calls a fixed list of actions, then finish.
class ScriptPolicy : public Policy {
 public:
  explicit ScriptPolicy(std::vector<int> actions) : actions_(std::move(actions)) {}
  std::string name() const override { return "script"; }
  std::vector<int> decide(const std::vector<const Sequence*>&, const std::vector<EpisodeState>& states, double,
                          double) const override {
    std::vector<int> out;
    for (const auto& s : states) out.push_back(s.calls < static_cast<int>(actions_.size()) ? actions_[s.calls] : kFinish);
    return out;
  }

 private:
  std::vector<int> actions_;
};

TEST(ToolCallGrammar, ParsesCallsAndNamesWhatIsWrong) {
  std::string error;
  auto call = parse_tool_call(R"({"tool":"fast_rec","arguments":{"k":50}})", &error);
  ASSERT_TRUE(call) << error;
  EXPECT_EQ(call->tool, "fast_rec");
  EXPECT_EQ(call->args.k, 50);
  call = parse_tool_call(R"({"tool":"rank_candidates","arguments":{"m":50,"n":10}})", &error);
  ASSERT_TRUE(call) << error;
  EXPECT_EQ(call->args.m, 50);
  EXPECT_EQ(call->args.k, 10);
  EXPECT_EQ(parse_tool_call(format_tool_call(*call), &error)->args.m, 50);
  EXPECT_TRUE(parse_tool_call(R"({"tool":"finish"})", &error));
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"{not json", "not JSON"},
      {R"({"tool":"sleep","arguments":{}})", "unknown tool 'sleep'"},
      {R"({"tool":"fast_rec","arguments":{}})", "missing argument 'k'"},
      {R"({"tool":"fast_rec","arguments":{"k":"ten"}})", "must be an integer"},
      {R"({"tool":"think_and_rec","arguments":{"j":0}})", "out of range"},
      {R"({"tool":"rank_candidates","arguments":{"m":5,"n":10}})", "larger than m"},
      {R"({"arguments":{}})", "'tool'"},
  };
  for (const auto& [text, expected] : bad) {
    error.clear();
    EXPECT_FALSE(parse_tool_call(text, &error)) << text;
    EXPECT_NE(error.find(expected), std::string::npos) << text << " -> " << error;
  }
}

TEST(AgentLoop, InvalidCallsArePenalisedNotFatalAndEmptyEpisodesFallBack) {
  auto tools = scripted_tools();
  CostModel costs;
  AgentOptions o;
  std::vector<RequestState> requests(2);
  requests[0].history = {3};
  requests[1].history = {4};
  // rank before fast, finish with nothing: both invalid; then fast_rec and rank.
  auto answers = run_agent(tools, ScriptPolicy({kRank, kFinish, kFastWide, kRank}), requests, 3, o, costs);
  for (const auto& a : answers) {
    EXPECT_EQ(a.invalid, 2);
    EXPECT_EQ(a.plan, "fast_rec+rank_candidates");
    ASSERT_EQ(a.items.size(), 3u);
    EXPECT_EQ(a.trace.size(), 4u);
    EXPECT_TRUE(a.trace[0].contains("error"));
    EXPECT_EQ(a.trace[2].at("arguments").at("k"), 5);  // fast_rec(wide)
  }
  EXPECT_EQ(answers[0].items[0].item, 4);
  // A list longer than `wide` widens the candidates instead of making rank_candidates invalid.
  auto longer = run_agent(tools, ScriptPolicy({kFastWide, kRank}), requests, 8, o, costs);
  EXPECT_EQ(longer[0].invalid, 0);
  EXPECT_EQ(longer[0].plan, "fast_rec+rank_candidates");
  EXPECT_EQ(longer[0].items.size(), 8u);
  // Only invalid calls: the episode ends with fast_rec(k), stated as a fallback.
  answers = run_agent(tools, ScriptPolicy({kRank, kFinish, kRank, kFinish}), requests, 3, o, costs);
  EXPECT_EQ(answers[0].plan, "fallback");
  EXPECT_EQ(answers[0].items.size(), 3u);
  // think_and_rec ends the episode and its rationale comes back.
  answers = run_agent(tools, ScriptPolicy({kThink, kFastK}), requests, 3, o, costs);
  EXPECT_EQ(answers[1].plan, "think_and_rec");
  EXPECT_EQ(answers[1].rationale, "after 4");
  EXPECT_EQ(answers[1].items[0].item, 7);
}

TEST(AgentLoop, CallsBeyondTheLatencyBudgetAreNotMade) {
  auto tools = scripted_tools();
  auto* think = dynamic_cast<const ScriptedTool*>(tools.think.get());
  CostModel costs;
  costs.ms = {1.0, 2.0, 1.0, 15.0, 0.0};
  AgentOptions o;
  o.budget_ms = 5;
  std::vector<RequestState> requests(1);
  requests[0].history = {7};
  auto answers = run_agent(tools, ScriptPolicy({kFastWide, kThink}), requests, 3, o, costs);
  EXPECT_EQ(think->calls, 0);
  EXPECT_EQ(answers[0].plan, "fast_rec");  // think_and_rec became finish
  // With nothing to return yet, an unaffordable call becomes the cheapest list.
  answers = run_agent(tools, ScriptPolicy({kThink}), requests, 3, o, costs);
  EXPECT_EQ(think->calls, 0);
  EXPECT_EQ(answers[0].plan, "fast_rec");
  o.budget_ms = 0;
  run_agent(tools, ScriptPolicy({kThink}), requests, 3, o, costs);
  EXPECT_EQ(think->calls, 1);
}

/// Thinks (think_and_rec alone) when β is below the request's own price of thinking, else fast_rec:
/// the history's last item sets that price, so a traffic of other items thinks more at the same β.
class PricedThinkPolicy : public Policy {
 public:
  std::string name() const override { return "priced"; }
  static double price(int last_item) { return 0.01 * std::pow(1.1, last_item % 32); }
  std::vector<int> decide(const std::vector<const Sequence*>& histories, const std::vector<EpisodeState>& states,
                          double beta, double) const override {
    std::vector<int> out;
    for (size_t i = 0; i < states.size(); ++i)
      out.push_back(states[i].calls > 0 ? kFinish : beta < price(histories[i]->back()) ? kThink : kFastK);
    return out;
  }
};

TEST(BetaController, FixedWithoutATargetAndMovedByTheCostsWithOne) {
  BetaController fixed(0.05);
  fixed.observe({30, 30, 30});
  EXPECT_EQ(fixed.beta(), 0.05);
  EXPECT_DOUBLE_EQ(fixed.mean_beta(), 0.05);
  BetaController held(0.05, 10.0);
  held.observe({30});  // over the target: thinking gets dearer
  const double up = held.beta();
  EXPECT_GT(up, 0.05);
  EXPECT_NEAR(held.mean_beta(), 0.05, 1e-12);  // the request was served at the β before
  held.observe({3, 3, 3, 3});
  EXPECT_LT(held.beta(), up);
  held.observe({10, 10});  // on target: β stays
  EXPECT_NEAR(held.beta(), up * std::exp(5e-4 * 4 * (0.3 - 1.0)), 1e-12);
  BetaController wild(0.05, 10.0, 1.0);
  wild.observe({1e6});
  EXPECT_EQ(wild.beta(), BetaController::kMaxBeta);
  EXPECT_EQ(BetaController(0.0, 10.0).beta(), BetaController::kMinBeta);  // 0 could not move
  EXPECT_THROW(BetaController(0.05, -1.0), InputError);
  EXPECT_THROW(BetaController(-0.05), InputError);
  EXPECT_THROW(BetaController(0.05, 10.0, 0.0), InputError);
  // The step scales every move: ten times the step, ten times the change of log β.
  BetaController gentle(0.05, 10.0, 1e-4), brisk(0.05, 10.0, 1e-3);
  EXPECT_EQ(brisk.step(), 1e-3);
  for (auto* c : {&gentle, &brisk}) c->observe({30, 3, 25});
  EXPECT_NEAR(std::log(brisk.beta() / 0.05), 10.0 * std::log(gentle.beta() / 0.05), 1e-12);
  EXPECT_NEAR(std::log(brisk.beta() / 0.05), 1e-3 * (2.0 - 0.7 + 1.5), 1e-12);
}

// eval and serve refuse the same bad latency targets with the same message (serve's own check is in
// tests/serve: ServeOptionsCheck).
TEST(BetaController, EvalAndServeRefuseTheSameLatencyTargets) {
  auto refuses = [](const std::function<void()>& f, const std::string& field) {
    try {
      f();
      ADD_FAILURE() << "accepted a bad " << field;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(field + ":"), std::string::npos) << e.what();
    }
  };
  EXPECT_NO_THROW(validate_latency_target(0, kLatencyTargetStep));
  EXPECT_NO_THROW(validate_latency_target(kLatencyTargetShare, 1e-6));
  for (double share : {-0.1, 10.5, std::nan("")})
    refuses([&] { validate_latency_target(share, kLatencyTargetStep); }, "latency_target");
  for (double step : {0.0, -1.0, std::numeric_limits<double>::infinity(), std::nan("")})
    refuses([&] { validate_latency_target(kLatencyTargetShare, step); }, "latency_target_step");
  // The eval stage checks before it loads anything (this run directory is empty).
  testing::TempDir dir;
  EvalStageOptions o;
  o.systems = {"twistar"};
  o.latency_target_step = std::numeric_limits<double>::infinity();
  refuses([&] { run_eval_stage(rule_dataset(50), o, testing::small_context(), dir.path()); }, "latency_target_step");
}

TEST(AgentRecommender, ALatencyTargetHoldsTheMeanCostWhenTheTrafficDrifts) {
  auto tools = scripted_tools();
  CostModel costs;
  costs.ms = {2.0, 3.0, 1.0, 30.0, 0.0};
  costs.decision_ms = 0.0;
  // Requests whose last items are 0..15 price thinking at 0.01..0.04; 16..31 at 0.046..0.17 (mod 32).
  auto traffic = [](int from, int n) {
    std::vector<Sequence> h;
    for (int i = 0; i < n; ++i) h.push_back({static_cast<ItemIndex>(from + (i * 7) % 16)});
    return h;
  };
  RecommendOptions ropts;
  ropts.k = 3;
  // β 0.03 thinks for a quarter of the first traffic (mean cost 2 + 28/4 = 9 ms) and for all of the
  // second (30 ms); a target of 8 ms moves β until about a fifth of either traffic thinks.
  for (double target : {0.0, 8.0}) {
    AgentOptions o;
    o.beta = 0.03;
    o.target_ms = target;
    AgentRecommender agent(tools, std::make_shared<PricedThinkPolicy>(), o, costs, "twistar");
    double first = 0, second = 0;
    for (int batch = 0; batch < 600; ++batch) {
      const auto h = traffic(batch < 300 ? 0 : 16, 32);
      agent.reset_counts();
      agent.recommend(h, ropts);
      if (batch >= 150 && batch < 300) first += 2 + 28 * agent.slow_rate();
      if (batch >= 450) second += 2 + 28 * agent.slow_rate();
    }
    first /= 150;
    second /= 150;
    if (target == 0) {
      EXPECT_EQ(agent.beta_control().beta(), 0.03);
      EXPECT_NEAR(first, 9.0, 1e-9);
      EXPECT_NEAR(second, 30.0, 1e-9);
    } else {
      EXPECT_NEAR(first, 8.0, 0.3);
      EXPECT_NEAR(second, 8.0, 0.3);
      EXPECT_GT(agent.beta_control().beta(), 0.046);  // priced above the drifted traffic's cheapest thought
    }
  }
  // The step the recommender was given survives a new β (the β sweep's set_beta and its restore).
  AgentOptions o;
  o.beta = 0.03;
  o.target_ms = 8.0;
  o.target_step = 2e-3;
  AgentRecommender agent(tools, std::make_shared<PricedThinkPolicy>(), o, costs, "twistar");
  EXPECT_EQ(agent.beta_control().step(), 2e-3);
  agent.set_beta(0.1, 8.0);
  EXPECT_EQ(agent.beta_control().step(), 2e-3);
  EXPECT_EQ(agent.beta_control().beta(), 0.1);
}

TEST(ThinkAndRecFusion, WeightsReciprocalRanksAndBreaksTiesByItem) {
  const Ranking ranked = {{1, 9.f}, {2, 8.f}, {3, 7.f}}, own = {{3, -1.f}, {4, -2.f}};
  auto items = [](const Ranking& r) {
    std::vector<ItemIndex> out;
    for (const auto& s : r) out.push_back(s.item);
    return out;
  };
  // 0.75 on the ranking, offset 0: 1 → 0.75, 3 → 0.25 + 0.25, 2 → 0.375, 4 → 0.125.
  auto fused = fuse_rankings(ranked, own, 0.75, 0.0, 3);
  EXPECT_EQ(items(fused), (std::vector<ItemIndex>{1, 3, 2}));
  EXPECT_NEAR(fused[1].score, 0.5, 1e-6);
  // Even weights: 3 (in both) first; 2 and 4 tie at 0.25 and go to the lower item.
  EXPECT_EQ(items(fuse_rankings(ranked, own, 0.5, 0.0, 4)), (std::vector<ItemIndex>{3, 1, 2, 4}));
  // A larger offset flattens the ranks: item 3, second in neither list's head, still wins with 0.5.
  EXPECT_EQ(items(fuse_rankings(ranked, own, 0.5, 100.0, 1)), (std::vector<ItemIndex>{3}));
  // Weight 0 is the thought's own list.
  EXPECT_EQ(items(fuse_rankings(ranked, own, 0.0, 10.0, 5)), (std::vector<ItemIndex>{3, 4}));
  EXPECT_TRUE(fuse_rankings(ranked, own, 0.5, 10.0, 0).empty());
}

TEST(ThinkAndRecFusion, LogRanksWeighTheThoughtAgainstTheRanking) {
  const Ranking ranked = {{1, 9.f}, {2, 8.f}, {3, 7.f}, {5, 6.f}}, own = {{3, -1.f}, {4, -2.f}, {1, -3.f}};
  auto items = [](const Ranking& r) {
    std::vector<ItemIndex> out;
    for (const auto& s : r) out.push_back(s.item);
    return out;
  };
  // Weight 0: the ranking's head.
  EXPECT_EQ(items(fuse_ranks(ranked, own, 0.0, 3)), (std::vector<ItemIndex>{1, 2, 3}));
  // An absent item ranks 14 (10 past the longer list). Weight 0.3: 1 → log 2 + 0.3 log 4, 3 → log 4 +
  // 0.3 log 2, 2 → log 3 + 0.3 log 16, 5 → log 5 + 0.3 log 16, 4 → log 16 + 0.3 log 3.
  auto fused = fuse_ranks(ranked, own, 0.3, 5);
  EXPECT_EQ(items(fused), (std::vector<ItemIndex>{1, 3, 2, 5, 4}));
  EXPECT_NEAR(fused[0].score, -(std::log(2.0) + 0.3 * std::log(4.0)), 1e-6);
  // A heavy weight lets the thought's first item lead; its second, absent from the ranking, passes
  // the ranking's second.
  EXPECT_EQ(items(fuse_ranks(ranked, own, 3.0, 3)), (std::vector<ItemIndex>{3, 1, 4}));
  // Weight 1: 1 and 3 (ranks 0, 2 and 2, 0) tie, and so do 2 and 4 (1, absent and absent, 1): the
  // better rank in the ranking goes first.
  EXPECT_EQ(items(fuse_ranks(ranked, own, 1.0, 4)), (std::vector<ItemIndex>{1, 3, 2, 4}));
  EXPECT_TRUE(fuse_ranks(ranked, own, 0.3, 0).empty());
  EXPECT_EQ(fuse_ranks(ranked, own, 0.3, 50).size(), 5u);  // every item once
}

/// think_and_rec that fuses its list with ranked candidates (weight 0.75 on the ranking).
class FusingThink : public ScriptedTool {
 public:
  FusingThink() : ScriptedTool("think_and_rec", true) {}
  std::vector<Ranking> after_ranking(const std::vector<const RequestState*>& requests, std::vector<Ranking> own,
                                     int k) const override {
    for (size_t i = 0; i < own.size(); ++i) own[i] = fuse_rankings(requests[i]->candidates, own[i], 0.75, 0.0, k);
    return own;
  }
};

TEST(AgentLoop, ThinkingAfterRankingFusesTheListsAndTheTableReplaysIt) {
  auto tools = scripted_tools();
  tools.think = std::make_shared<FusingThink>();
  CostModel costs;
  AgentOptions o;
  // After 4, fast_rec ranks 5 then 7 and think_and_rec 7 then 5; after 3, 4 then 6 and 6 then 4.
  const std::vector<Example> examples = {{0, {4}, 5}, {1, {3}, 6}};
  std::vector<RequestState> requests(2);
  requests[0].history = {4};
  requests[1].history = {3};
  auto alone = run_agent(tools, ScriptPolicy({kThink}), requests, 3, o, costs);
  EXPECT_EQ(alone[0].items[0].item, 7);
  std::vector<RequestState> again(2);
  again[0].history = {4};
  again[1].history = {3};
  auto fused = run_agent(tools, ScriptPolicy({kFastWide, kRank, kThink}), again, 3, o, costs);
  EXPECT_EQ(fused[0].plan, "fast_rec+rank_candidates+think_and_rec");
  EXPECT_EQ(fused[0].items[0].item, 5);  // the ranking's weight decides the head
  EXPECT_EQ(fused[0].rationale, "after 4");
  // The threshold router's arm that thinks after ranking makes the same calls when unsure.
  auto fresh = [] {
    std::vector<RequestState> r(1);
    r[0].history = {4};
    return r;
  };
  auto unsure = fresh(), sure = fresh();
  const AgentAnswer thought = run_agent(tools, ThresholdRouter({1e30, true}), unsure, 3, o, costs)[0];
  EXPECT_EQ(thought.plan, "fast_rec+rank_candidates+think_and_rec");
  EXPECT_EQ(thought.calls, (std::vector<int>{kFastWide, kRank, kThink}));
  EXPECT_EQ(plan_mix(thought.calls), kPlanRankSlow);
  const AgentAnswer ranked = run_agent(tools, ThresholdRouter({-1e30, true}), sure, 3, o, costs)[0];
  EXPECT_EQ(ranked.plan, "fast_rec+rank_candidates");
  EXPECT_EQ(plan_mix(ranked.calls), kPlanFastRank);

  auto table = build_episode_table(tools, examples, 3, 1, [](const Sequence&) { return RequestFeatures{}; }, false);
  for (size_t i = 0; i < examples.size(); ++i) {
    const auto& u = table.users[i];
    EXPECT_NEAR(u.ndcg[kListThinkRankWide], ndcg_of_list(fused[i].items, examples[i].target), 1e-6);
    EXPECT_NEAR(u.ndcg[kListThink], ndcg_of_list(alone[i].items, examples[i].target), 1e-6);
    EpisodeState s;
    for (int a : plan_actions(kPlanRankSlow)) replay_step(u, s, a, table.costs, 4);
    EXPECT_TRUE(s.done);
    EXPECT_EQ(s.list, kListThinkRankWide);
    EXPECT_EQ(plan_of(s), kPlanRankSlow);
    EXPECT_TRUE(calls_think(s));
    EXPECT_NEAR(episode_outcome(u, s, table.costs).first, u.ndcg[kListThinkRankWide], 1e-9);
  }
  EXPECT_NEAR(table.users[0].ndcg[kListThinkRankWide], 1.0, 1e-6);
  EXPECT_LT(table.users[0].ndcg[kListThink], 1.0);
  EXPECT_LT(table.users[1].ndcg[kListThinkRankWide], table.users[1].ndcg[kListThink]);
  // Thinking after ranking fast_rec(k)'s candidates is its own list source.
  EpisodeState narrow;
  for (int a : {kFastK, kRank, kThink}) replay_step(table.users[0], narrow, a, table.costs, 4);
  EXPECT_EQ(narrow.list, kListThinkRankFast);
  EXPECT_EQ(plan_of(narrow), kNumPlans);
}

TEST(Planner, PlanMixNamesTheCanonicalPlanACallSequenceCostsLike) {
  EXPECT_EQ(plan_mix({}), kPlanFastOnly);
  EXPECT_EQ(plan_mix({kFastK}), kPlanFastOnly);
  EXPECT_EQ(plan_mix({kFastK, kFastWide}), kPlanFastOnly);
  EXPECT_EQ(plan_mix({kFastWide, kRank}), kPlanFastRank);
  EXPECT_EQ(plan_mix({kThink}), kPlanSlow);
  EXPECT_EQ(plan_mix({kFastK, kThink}), kPlanSlow);
  EXPECT_EQ(plan_mix({kFastWide, kRank, kThink}), kPlanRankSlow);
  EXPECT_EQ(plan_mix({kFastK, kRank, kThink, kFastK}), kPlanRankSlow);
  // Thinking, then ranking its list, is not thinking after ranking.
  EXPECT_EQ(plan_mix({kFastWide, kThink, kRank}), kPlanSlow);
}

PlannerOptions toy_options() {
  PlannerOptions o;
  o.policy.dim = 16;
  o.policy.hidden = 32;
  o.policy.history = 3;
  o.policy.dropout = 0.0;
  o.betas = {0, 50};
  o.wide = 5;
  o.cost_requests = 5;
  o.explore = 0.2;
  o.sft.epochs = 40;
  o.sft.patience = 40;
  o.sft.batch_size = 64;
  o.grpo.epochs = 6;
  o.grpo.patience = 6;
  o.grpo.batch_size = 64;
  o.grpo.lr = 2e-3;
  o.budget_share = 0;
  return o;
}

std::vector<int64_t> popularity_of(const Dataset& data) {
  std::vector<int64_t> pop(data.num_items(), 0);
  for (const auto& s : training_parts(data))
    for (ItemIndex i : s) ++pop[i];
  return pop;
}

TEST(Planner, WarmupLabelsBreakTiesByTheExpectedRewardAtBeta) {
  // fast_rank hits more users than fast_only but costs more; most users are missed by every plan.
  EpisodeTable table;
  table.costs.ms = {1.0, 2.0, 1.0, 15.0, 0.0};
  table.costs.decision_ms = 0.0;
  auto user = [](float fast, float rank, float think) {
    UserEpisode u;
    u.ndcg[kListFast] = fast;
    u.ndcg[kListRankWide] = rank;
    u.ndcg[kListThink] = think;
    return u;
  };
  table.users = {user(0, 0, 0), user(0, 0, 0), user(0, 1, 0), user(0, 1, 0), user(1, 1, 0), user(0, 0, 1)};
  const std::vector<size_t> all = {0, 1, 2, 3, 4, 5};
  const auto at0 = plan_prior(table, all, 0.0);
  EXPECT_NEAR(at0[kPlanFastRank], 0.5, 1e-9);
  EXPECT_NEAR(at0[kPlanFastOnly], 1.0 / 6, 1e-9);
  // β = 0: the all-miss user and the user both fast plans hit get the more accurate plan.
  EXPECT_EQ(warmup_plan(table.users[0], at0), kPlanFastRank);
  EXPECT_EQ(warmup_plan(table.users[4], at0), kPlanFastRank);
  // A user's own outcome still decides when it is not a tie.
  EXPECT_EQ(warmup_plan(table.users[5], at0), kPlanSlow);
  // β = 1000 NDCG/s: 2 ms more costs 2 of reward, so the ties go to the cheapest plan (best_plan's).
  const auto dear = plan_prior(table, all, 1000.0);
  EXPECT_EQ(warmup_plan(table.users[0], dear), kPlanFastOnly);
  EXPECT_EQ(warmup_plan(table.users[0], dear), best_plan(table.users[0], table.costs));
  EXPECT_EQ(warmup_plan(table.users[2], dear), kPlanFastRank);
}

TEST(Planner, TheThinkSignalFindsTheObservationThatPredictsThinkingsGain) {
  // Thinking after ranking helps exactly the users whose fast_rec(wide) top score is low; the ranker's
  // statistics and the request features carry nothing.
  EpisodeTable table;
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> unit(0, 1);
  for (int i = 0; i < 400; ++i) {
    UserEpisode u;
    u.stats[kListWide].top = unit(rng);
    u.stats[kListRankWide].top = unit(rng);
    u.request.log_length = unit(rng);
    u.ndcg[kListRankWide] = 0.5f;
    u.ndcg[kListThinkRankWide] = u.stats[kListWide].top < 0.25f ? 1.0f : i % 10 == 0 ? 0.0f : 0.5f;
    table.users.push_back(u);
  }
  std::vector<size_t> all(table.users.size());
  std::iota(all.begin(), all.end(), size_t{0});
  const auto s = think_signal(table, all);
  EXPECT_EQ(s.users, 400u);
  EXPECT_NEAR(s.noise, 0.1, 1e-12);
  EXPECT_GT(s.raised, 0.15);
  EXPECT_GT(s.lowered, 0.03);
  EXPECT_LT(s.lowered, 0.1);
  EXPECT_EQ(s.strongest().first, "wide_top");
  EXPECT_LT(s.strongest().second, -0.5);
  for (const auto& [name, r] : s.correlation)
    if (name != "wide_top" && name != "wide_margin" && name != "wide_entropy") EXPECT_LT(std::abs(r), 0.2) << name;
  EXPECT_TRUE(s.to_json()["correlation"].contains("rank_entropy"));
}

TEST(Planner, LearnsWhichRequestsDeserveThinkingAndTradesItForLatency) {
  testing::TempDir run;
  auto data = rule_dataset(600);
  write_sids(data, run.path());
  const SidMap sids = SidMap::load(run / "sid" / "sid_map.json");
  auto tools = indexed_tools(data);
  auto o = toy_options();
  auto ctx = testing::small_context();
  const auto pop = popularity_of(data);
  PlannerPolicy features(sids.sids(), sids.level_sizes(), pop, o.policy);
  auto examples = spaced_valid_examples(data, 0, 50);
  auto table = build_episode_table(tools, examples, 10, 5,
                                   [&](const Sequence& h) { return features->request_features(h); }, false);
  // The scripted tools cost nothing measurable: a fixed cost model makes β matter.
  table.costs.ms = {1.0, 1.5, 0.5, 10.0, 0.0};
  int fast_best = 0, slow_best = 0;
  for (const auto& u : table.users) {
    const int plan = best_plan(u, table.costs);
    EXPECT_NE(plan, kPlanFastRank);  // the same list as fast_only, dearer
    (plan == kPlanSlow ? slow_best : fast_best)++;
  }
  EXPECT_GT(fast_best, 150);
  EXPECT_GT(slow_best, 150);

  TrainControl quiet;
  quiet.progress = false;
  auto r = train_planner_on_table(table, sids, pop, o, ctx, run / "planner", "toy", quiet);
  ASSERT_TRUE(r.finished);
  auto load = [&](const char* file) {
    PlannerPolicy p(sids.sids(), sids.level_sizes(), std::vector<int64_t>(pop.size(), 0), o.policy);
    torch::load(p, (run / "planner" / file).string());
    p->sync_host();
    return p;
  };
  auto sft = load("sft.pt"), grpo = load("model.pt");
  std::vector<size_t> all(table.users.size());
  std::iota(all.begin(), all.end(), 0);
  // Oracle NDCG@10 is 1: the right tool ranks the target first for every user.
  auto s0 = simulate_policy(sft, table, all, 0.0, 0.0, o);
  EXPECT_GT(s0.ndcg10, 0.95);
  EXPECT_GT(s0.slow_rate, 0.3);
  EXPECT_LT(s0.slow_rate, 0.7);
  auto g0 = simulate_policy(grpo, table, all, 0.0, 0.0, o);
  EXPECT_GT(g0.ndcg10, 0.95);
  // At β = 50 NDCG/s, thinking costs 0.5 of reward and gains at most 0.37: one policy, told β, stops.
  auto g50 = simulate_policy(grpo, table, all, 50.0, 0.0, o);
  EXPECT_LT(g50.slow_rate, 0.1);
  EXPECT_LT(g50.cost_ms, 0.5 * g0.cost_ms);
  // A budget below think_and_rec's cost is respected.
  auto budget = simulate_policy(grpo, table, all, 0.0, 5.0, o);
  EXPECT_EQ(budget.slow_rate, 0.0);
  EXPECT_LE(budget.cost_ms, 5.0);

  // GRPO over every canonical plan (exact expected reward) learns the same: think where it pays at
  // β = 0, not at β = 50; the option travels with the options' identity.
  auto po = o;
  po.group_mode = "plans";
  EXPECT_EQ(po.to_json().at("group_mode"), "plans");
  EXPECT_FALSE(o.to_json().contains("group_mode"));  // planners trained before the option stay valid
  auto pr = train_planner_on_table(table, sids, pop, po, ctx, run / "planner-plans", "toy", quiet);
  ASSERT_TRUE(pr.finished);
  PlannerPolicy plans(sids.sids(), sids.level_sizes(), std::vector<int64_t>(pop.size(), 0), o.policy);
  torch::load(plans, (run / "planner-plans" / "model.pt").string());
  plans->sync_host();
  auto p0 = simulate_policy(plans, table, all, 0.0, 0.0, po);
  EXPECT_GT(p0.ndcg10, 0.95);
  EXPECT_GT(p0.slow_rate, 0.3);
  EXPECT_LT(simulate_policy(plans, table, all, 50.0, 0.0, po).slow_rate, 0.1);
  EXPECT_LE(simulate_policy(plans, table, all, 0.0, 5.0, po).cost_ms, 5.0);
  po.group_mode = "all";
  EXPECT_THROW(po.validate(), InputError);

  // The live loop makes exactly the replayed decisions.
  std::vector<size_t> some = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  auto replayed = replay_policy(grpo, table, some, 0.0, 0.0, o);
  auto policy = std::make_shared<LearnedPolicy>(grpo, table.costs, "twistar");
  std::vector<RequestState> requests(some.size());
  for (size_t i = 0; i < some.size(); ++i) requests[i].history = table.users[some[i]].history;
  AgentOptions ao;
  ao.beta = 0.0;
  auto answers = run_agent(tools, *policy, requests, 10, ao, table.costs);
  for (size_t i = 0; i < some.size(); ++i) {
    std::vector<int> live;
    for (const auto& call : answers[i].trace) {
      const std::string tool = call.at("tool");
      live.push_back(tool == "finish"            ? kFinish
                     : tool == "think_and_rec"   ? kThink
                     : tool == "rank_candidates" ? kRank
                     : call.at("arguments").at("k") == 10 ? kFastK
                                                          : kFastWide);
    }
    EXPECT_EQ(live, replayed[i].actions) << "user " << i;
    EXPECT_NEAR(ndcg_of_list(answers[i].items, examples[some[i]].target),
                table.users[some[i]].ndcg[replayed[i].list], 1e-6);
  }

  // Routers in the same loop: the threshold router tuned without a latency cap thinks where fast_rec
  // is unsure; the random router follows its mix.
  const ThresholdRule rule = tune_threshold(table, all, 1e9, o.max_calls).rule;
  EXPECT_FALSE(rule.after_rank);  // thinking after ranking gives the scripted think's own list, dearer
  // Under a cap below think_and_rec's cost it thinks only as much as the cap allows, and its replay
  // is what the tuning measured.
  const double cap = 0.5 * table.costs.of(kThink);
  const auto capped = tune_threshold(table, all, cap, o.max_calls);
  EXPECT_LE(capped.cost_ms, cap);
  EXPECT_LT(capped.slow_rate, 1.0);
  const auto again = replay_threshold(table, all, capped.rule, o.max_calls);
  EXPECT_DOUBLE_EQ(again.ndcg10, capped.ndcg10);
  EXPECT_DOUBLE_EQ(again.cost_ms, capped.cost_ms);
  EXPECT_GE(replay_threshold(table, all, rule, o.max_calls).ndcg10, capped.ndcg10);
  ThresholdRouter router(rule);
  std::vector<RequestState> two(2);
  two[0].history = {0};
  two[1].history = {1};
  auto routed = run_agent(tools, router, two, 10, ao, table.costs);
  EXPECT_EQ(routed[0].plan.substr(0, 8), "fast_rec");
  RandomRouter always_slow({0.0, 0.0, 1.0, 0.0}, 3);
  EXPECT_EQ(run_agent(tools, always_slow, two, 10, ao, table.costs)[1].plan, "think_and_rec");
  EXPECT_THROW(RandomRouter({0.0, 0.0, 0.0}, 3), InputError);
}

TEST(PlannerPolicy, FeatureScaleTravelsWithTheWeightsAndUnobservedStatsStayZero) {
  testing::TempDir run;
  auto data = rule_dataset(50);
  write_sids(data, run.path());
  const SidMap sids = SidMap::load(run / "sid" / "sid_map.json");
  auto o = toy_options();
  const std::vector<int64_t> pop(data.num_items(), 1);
  PlannerPolicy p(sids.sids(), sids.level_sizes(), pop, o.policy);
  p->eval();
  const Sequence h = {1, 2};
  std::vector<float> f(kNumFeatures, 0.3f);
  f[kFirstObservationFeature] = 0.0f;  // fast_rec's top score: not observed yet
  auto logits = [&](PlannerPolicy& m, const std::vector<float>& x) {
    torch::NoGradGuard no_grad;
    return m->forward({&h}, feature_tensor({x}));
  };
  const auto raw = logits(p, f);
  p->set_feature_scale(std::vector<float>(kNumFeatures, 0.1f), std::vector<float>(kNumFeatures, 2.0f));
  const auto scaled = logits(p, f);
  EXPECT_FALSE(torch::allclose(raw, scaled));
  // Saved and loaded, the policy applies the same scale.
  torch::save(p, (run / "p.pt").string());
  PlannerPolicy q(sids.sids(), sids.level_sizes(), pop, o.policy);
  torch::load(q, (run / "p.pt").string());
  q->eval();
  EXPECT_TRUE(torch::allclose(logits(q, f), scaled));
  // The unobserved statistic stays 0: the same logits as a scale that maps 0 to 0 there.
  auto shift = std::vector<float>(kNumFeatures, 0.1f);
  shift[kFirstObservationFeature] = 7.0f;
  q->set_feature_scale(shift, std::vector<float>(kNumFeatures, 2.0f));
  EXPECT_TRUE(torch::allclose(logits(q, f), scaled));
  EXPECT_THROW(q->set_feature_scale(shift, std::vector<float>(kNumFeatures, 0.0f)), Error);
}

TEST(Planner, TrainingResumesAndTheTableRoundTrips) {
  testing::TempDir run;
  auto data = rule_dataset(200);
  write_sids(data, run.path());
  auto tools = indexed_tools(data);
  auto o = toy_options();
  o.sft.epochs = 4;
  o.grpo.epochs = 2;
  auto ctx = testing::small_context();
  TrainControl stop;
  stop.progress = false;
  stop.stop_after_epochs = 2;
  auto partial = train_planner(data, tools, o, ctx, run / "planner", "toy", stop);
  EXPECT_FALSE(partial.finished);
  TrainControl go;
  go.progress = false;
  auto resumed = train_planner(data, tools, o, ctx, run / "planner", "toy", go);
  ASSERT_TRUE(resumed.finished);
  testing::TempDir other;
  write_sids(data, other.path());
  // The same episodes (their measured costs differ from run to run).
  std::filesystem::create_directories(other / "planner");
  std::filesystem::copy_file(run / "planner" / "episodes.json", other / "planner" / "episodes.json");
  auto straight = train_planner(data, tools, o, ctx, other / "planner", "toy", go);
  EXPECT_DOUBLE_EQ(resumed.grpo_holdout_reward, straight.grpo_holdout_reward);
  auto j = nlohmann::json::parse(read_file(run / "planner" / "episodes.json"));
  auto table = EpisodeTable::from_json(j, "episodes.json");
  EXPECT_EQ(table.to_json().at("users"), j.at("users"));
  j["users"][0].erase("ndcg");
  EXPECT_THROW(EpisodeTable::from_json(j, "episodes.json"), InputError);
  auto planner = nlohmann::json::parse(read_file(run / "planner" / "planner.json"));
  EXPECT_TRUE(planner.contains("beta"));
  // The holdout sweep tries the grid and the geometric midpoints between its neighbours: 0, 25, 50.
  const auto& sweep = planner.at("sweep").at("grpo");
  ASSERT_EQ(sweep.size(), 2 * o.betas.size() - 1);
  EXPECT_DOUBLE_EQ(sweep[1].at("beta").get<double>(), 25.0);
  EXPECT_TRUE(planner.at("threshold_holdout").contains("cost_ms"));
}

}  // namespace
}  // namespace twistar
