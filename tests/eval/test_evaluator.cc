#include <gtest/gtest.h>

#include <torch/torch.h>

#include <atomic>
#include <set>

#include "core/compute_threads.h"
#include "core/error.h"
#include "data/split.h"
#include "eval/baselines.h"
#include "eval/evaluator.h"
#include "eval/report.h"
#include "graph/popularity.h"
#include "test_util.h"

namespace twistar {
namespace {

// Always recommends items in index order: ranks are predictable by hand.
class IndexOrder : public Recommender {
 public:
  std::string name() const override { return "index"; }
  std::vector<Ranking> recommend(const std::vector<Sequence>& histories,
                                 const RecommendOptions& o) const override {
    std::vector<Ranking> out;
    for (const auto& h : histories) {
      Ranking r;
      for (ItemIndex i = 0; i < 100 && static_cast<int>(r.size()) < o.k; ++i) {
        if (o.exclude_history && std::find(h.begin(), h.end(), i) != h.end()) continue;
        r.push_back({i, -static_cast<float>(i)});
      }
      out.push_back(r);
    }
    return out;
  }
  size_t preferred_batch_size() const override { return 2; }
};

TEST(Evaluator, RanksFollowProtocolAndExclusion) {
  std::vector<Example> ex(3);
  ex[0].history = {0, 1};
  ex[0].target = 2;  // 0,1 excluded -> rank 1
  ex[1].history = {5};
  ex[1].target = 2;  // rank 3
  ex[2].history = {};
  ex[2].target = 50;  // beyond the list
  EvalOptions o;
  o.latency_requests = 3;
  o.progress = false;
  auto r = evaluate(IndexOrder(), ex, o);
  EXPECT_EQ(r.ranks, (std::vector<int>{1, 3, 0}));
  EXPECT_DOUBLE_EQ(r.metrics["recall@1"], 1.0 / 3);
  EXPECT_EQ(r.latency.count, 3u);
  o.exclude_history = false;
  auto keep = evaluate(IndexOrder(), ex, o);
  EXPECT_EQ(keep.ranks, (std::vector<int>{3, 3, 0}));
  EXPECT_TRUE(keep.lists.empty()) << "lists are kept only when asked";
  o.keep_lists = true;
  auto lists = evaluate(IndexOrder(), ex, o);
  ASSERT_EQ(lists.lists.size(), ex.size());
  for (const auto& list : lists.lists) EXPECT_EQ(list.size(), static_cast<size_t>(o.list_length));
  EXPECT_EQ(lists.lists[0][0].item, 0);  // the history is kept: index order from 0
  EXPECT_EQ(lists.lists[1][2].item, ex[1].target);
}

// Counts the histories it is asked about, from any thread.
class Counting : public IndexOrder {
 public:
  std::vector<Ranking> recommend(const std::vector<Sequence>& histories,
                                 const RecommendOptions& o) const override {
    seen += histories.size();
    max_batch = std::max(max_batch.load(), histories.size());
    return IndexOrder::recommend(histories, o);
  }
  mutable std::atomic<size_t> seen{0}, max_batch{0};
};

TEST(Evaluator, ThroughputServesEveryTimedRequestInBatches) {
  std::vector<Example> ex(10);
  for (size_t i = 0; i < ex.size(); ++i) ex[i].target = static_cast<ItemIndex>(i);
  EvalOptions o;
  o.latency_requests = 10;
  o.throughput_batch = 4;
  o.throughput_threads = 2;
  o.progress = false;
  Counting rec;
  auto r = evaluate(rec, ex, o);
  EXPECT_GT(r.throughput, 0.0);
  EXPECT_TRUE(r.to_json().contains("throughput_users_per_s"));
  // ranking (10, batches of 2) + latency (1 warm-up + 10) + throughput (4 warm-up + 10)
  EXPECT_EQ(rec.seen.load(), 35u);
  EXPECT_EQ(rec.max_batch.load(), 4u);
  // before_timing runs once, between the ranking pass and the timed requests.
  Counting timed;
  size_t seen_before_timing = 0;
  o.before_timing = [&] { seen_before_timing = timed.seen.load(); };
  evaluate(timed, ex, o);
  EXPECT_EQ(seen_before_timing, 10u);
  EXPECT_EQ(timed.seen.load(), 35u);
  o.before_timing = nullptr;
  o.throughput_batch = 0;
  auto none = evaluate(IndexOrder(), ex, o);
  EXPECT_EQ(none.throughput, 0.0);
  EXPECT_FALSE(none.to_json().contains("throughput_users_per_s"));
}

// Recommends the item after the history's last one and records the order it was asked in.
class NextItem : public Recommender {
 public:
  explicit NextItem(bool adapts) : adapts_(adapts) {}
  std::string name() const override { return "next"; }
  std::vector<Ranking> recommend(const std::vector<Sequence>& histories, const RecommendOptions&) const override {
    std::vector<Ranking> out;
    for (const auto& h : histories) {
      asked.push_back(h.back());
      out.push_back({{h.back() + 1, 1.0f}});
    }
    intra_op.insert(torch::get_num_threads());
    return out;
  }
  size_t preferred_batch_size() const override { return 3; }
  bool adapts_to_traffic() const override { return adapts_; }
  mutable std::vector<ItemIndex> asked;
  mutable std::set<int> intra_op;

 private:
  bool adapts_;
};

TEST(Evaluator, ASystemThatAdaptsToItsTrafficIsServedInARandomOrder) {
  std::vector<Example> ex(40);
  for (size_t i = 0; i < ex.size(); ++i) {
    ex[i].history = {static_cast<ItemIndex>(2 * i)};
    ex[i].target = static_cast<ItemIndex>(2 * i + (i % 4 == 0 ? 2 : 1));  // every fourth one missed
  }
  EvalOptions o;
  o.latency_requests = 10;
  o.throughput_batch = 0;
  o.progress = false;
  std::vector<ItemIndex> in_order;
  for (const auto& e : ex) in_order.push_back(e.history.back());
  for (bool adapts : {false, true}) {
    NextItem rec(adapts);
    auto r = evaluate(rec, ex, o);
    // Each rank lands on its own example whatever the order.
    for (size_t i = 0; i < ex.size(); ++i) EXPECT_EQ(r.ranks[i], i % 4 == 0 ? 0 : 1) << i;
    const std::vector<ItemIndex> ranking(rec.asked.begin(), rec.asked.begin() + 40);
    std::vector<ItemIndex> timed(rec.asked.begin() + 41, rec.asked.end());  // after the warm-up
    ASSERT_EQ(timed.size(), 10u);
    if (!adapts) {
      EXPECT_EQ(ranking, in_order);
      EXPECT_TRUE(std::is_sorted(timed.begin(), timed.end()));
      continue;
    }
    EXPECT_NE(ranking, in_order);
    EXPECT_TRUE(std::is_permutation(ranking.begin(), ranking.end(), in_order.begin()));
    // The same evenly spaced requests are timed, in another order.
    EXPECT_FALSE(std::is_sorted(timed.begin(), timed.end()));
    std::sort(timed.begin(), timed.end());
    for (size_t r = 0; r < 10; ++r) EXPECT_EQ(timed[r], static_cast<ItemIndex>(2 * (r * 4)));
  }
}

// IndexOrder that fails on the batch holding a history that ends in `bad`.
class FailsOn : public IndexOrder {
 public:
  explicit FailsOn(ItemIndex bad) : bad_(bad) {}
  std::vector<Ranking> recommend(const std::vector<Sequence>& histories,
                                 const RecommendOptions& o) const override {
    for (const auto& h : histories)
      if (!h.empty() && h.back() == bad_) throw InputError("history ends in the bad item");
    return IndexOrder::recommend(histories, o);
  }

 private:
  ItemIndex bad_;
};

TEST(Evaluator, TheRankingPassOnSeveralThreadsGivesEveryExampleItsOwnRankAndList) {
  std::vector<Example> ex(41);
  for (size_t i = 0; i < ex.size(); ++i) {
    ex[i].history = {static_cast<ItemIndex>(i % 7), static_cast<ItemIndex>(2 * i)};
    ex[i].target = static_cast<ItemIndex>((3 * i) % 30);
  }
  EvalOptions o;
  o.latency_requests = 0;
  o.throughput_batch = 0;
  o.progress = false;
  o.keep_lists = true;
  const auto one = evaluate(IndexOrder(), ex, o);
  o.rank_threads = 3;
  const auto three = evaluate(IndexOrder(), ex, o);
  EXPECT_EQ(three.ranks, one.ranks);
  ASSERT_EQ(three.lists.size(), ex.size());
  for (size_t i = 0; i < ex.size(); ++i) {
    ASSERT_EQ(three.lists[i].size(), one.lists[i].size()) << i;
    for (size_t r = 0; r < one.lists[i].size(); ++r) EXPECT_EQ(three.lists[i][r].item, one.lists[i][r].item) << i;
  }
  EXPECT_EQ(three.metrics, one.metrics);
  // A system that adapts to its traffic is still served one batch after another, in the serving order,
  // and on one intra-op thread as the spread passes are.
  const ComputeThreadsGuard two(2);
  NextItem serial(true), spread(true);
  o.rank_threads = 1;
  evaluate(serial, ex, o);
  o.rank_threads = 4;
  evaluate(spread, ex, o);
  EXPECT_EQ(spread.asked, serial.asked);
  EXPECT_EQ(serial.intra_op, std::set<int>{2});
  EXPECT_EQ(spread.intra_op, std::set<int>{1});
  EXPECT_EQ(torch::get_num_threads(), 2);
  // An error in one batch reaches the caller.
  EXPECT_THROW(evaluate(FailsOn(30), ex, o), InputError);
  o.rank_threads = 0;
  EXPECT_THROW(evaluate(IndexOrder(), ex, o), InputError);
}

// Records (its name, the history's last item) of every request in a log shared with another system.
class Logged : public Recommender {
 public:
  Logged(char name, bool adapts, std::vector<std::pair<char, ItemIndex>>& log)
      : name_(name), adapts_(adapts), log_(log) {}
  std::string name() const override { return std::string(1, name_); }
  std::vector<Ranking> recommend(const std::vector<Sequence>& histories, const RecommendOptions&) const override {
    std::vector<Ranking> out;
    for (const auto& h : histories) {
      log_.emplace_back(name_, h.back());
      out.push_back({{h.back() + 1, 1.0f}});
    }
    return out;
  }
  bool adapts_to_traffic() const override { return adapts_; }

 private:
  char name_;
  bool adapts_;
  std::vector<std::pair<char, ItemIndex>>& log_;
};

TEST(Evaluator, InterleavedTimingServesEachRequestToBothSystemsFirstOneThenTheOther) {
  std::vector<Example> ex(40);
  for (size_t i = 0; i < ex.size(); ++i) ex[i].history = {static_cast<ItemIndex>(i)};
  EvalOptions o;
  o.latency_requests = 10;
  o.interleave_block = 1;
  o.progress = false;
  for (bool adapts : {false, true}) {
    std::vector<std::pair<char, ItemIndex>> log;
    Logged a('a', adapts, log), b('b', false, log);
    auto t = time_interleaved(a, b, ex, o);
    ASSERT_EQ(t.a.size(), 10u);
    ASSERT_EQ(t.b.size(), 10u);
    for (double ms : t.a) EXPECT_GE(ms, 0.0);
    ASSERT_EQ(log.size(), 22u);  // a warm-up each, then 10 requests to both
    EXPECT_EQ(log[0], std::make_pair('a', ItemIndex{0}));
    EXPECT_EQ(log[1], std::make_pair('b', ItemIndex{0}));
    std::vector<ItemIndex> items;
    for (size_t r = 0; r < 10; ++r) {
      const auto& first = log[2 + 2 * r];
      const auto& second = log[3 + 2 * r];
      EXPECT_EQ(first.second, second.second) << r;  // the same request, back to back
      EXPECT_EQ(first.first, r % 2 == 0 ? 'a' : 'b') << r;
      EXPECT_EQ(second.first, r % 2 == 0 ? 'b' : 'a') << r;
      items.push_back(first.second);
    }
    // The requests evaluate() times: evenly spaced, shuffled when either system adapts.
    EXPECT_EQ(std::is_sorted(items.begin(), items.end()), !adapts);
    std::sort(items.begin(), items.end());
    for (size_t r = 0; r < 10; ++r) EXPECT_EQ(items[r], static_cast<ItemIndex>(r * 4));
  }
  // In turns of 4: a's 4 then b's same 4, b's next 4 then a's, a's last 2 then b's.
  o.interleave_block = 4;
  std::vector<std::pair<char, ItemIndex>> turns;
  Logged a('a', false, turns), b('b', false, turns);
  time_interleaved(a, b, ex, o);
  ASSERT_EQ(turns.size(), 22u);
  std::string who;
  for (size_t i = 2; i < turns.size(); ++i) who += turns[i].first;
  EXPECT_EQ(who, "aaaabbbbbbbbaaaaaabb");
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(turns[2 + i].second, turns[6 + i].second) << i;
  o.interleave_block = 0;
  EXPECT_THROW(time_interleaved(a, b, ex, o), InputError);
  o.interleave_block = 1;
  o.latency_requests = 0;
  std::vector<std::pair<char, ItemIndex>> log;
  Logged c('a', false, log), d('b', false, log);
  EXPECT_TRUE(time_interleaved(c, d, ex, o).a.empty());
  EXPECT_TRUE(log.empty());
}

TEST(Baselines, MostPopSkipsHistoryAndSwingUsesLinks) {
  std::vector<Sequence> train = {{0, 1}, {0, 1}, {0, 2}, {3, 1}, {3, 1}};
  auto pop = item_popularity(train, 5);
  MostPopRecommender mp(pop);
  RecommendOptions o;
  o.k = 2;
  auto r = mp.recommend({{1}}, o);
  ASSERT_EQ(r[0].size(), 2u);
  EXPECT_EQ(r[0][0].item, 0);  // 1 is most popular but in the history
  SwingRecommender sw(build_swing(train, 5), pop);
  o.k = 5;
  auto s = sw.recommend({{3}}, o)[0];
  ASSERT_EQ(s.size(), 4u);  // every item but the history, linked ones first
  EXPECT_EQ(s[0].item, 1);
}

TEST(Report, JsonSchemaAndMarkdown) {
  EvalResult r;
  r.system = "sasrec";
  r.metrics = {{"recall@5", 0.1}, {"recall@10", 0.2}, {"ndcg@5", 0.05}, {"ndcg@10", 0.07}};
  r.latency = summarize_latency({1.0, 2.0, 3.0});
  r.extra["train_seconds"] = 12.0;
  auto doc = results_json({"exp", "beauty", "test", "twistar eval", "", ""}, {r});
  for (const char* key : {"experiment", "dataset", "split", "command", "machine", "date", "systems"})
    EXPECT_TRUE(doc.contains(key)) << key;
  const auto& s = doc["systems"]["sasrec"];
  EXPECT_DOUBLE_EQ(s["recall@10"].get<double>(), 0.2);
  for (const char* key : {"mean", "p50", "p95", "p99"}) EXPECT_TRUE(s["latency_ms"].contains(key));
  EXPECT_DOUBLE_EQ(s["train_seconds"].get<double>(), 12.0);
  auto md = markdown_table(doc);
  EXPECT_NE(md.find("| sasrec | 0.1000 | 0.2000 |"), std::string::npos) << md;
  EXPECT_EQ(md.find("timed interleaved"), std::string::npos) << md;
  EXPECT_NE(md.find("| - | 2.000 | 2.000 | 2.980 | - | 12 |"), std::string::npos) << md;
  // A system that was not timed (--latency-requests 0) shows no latency rather than zeros.
  auto untimed = doc;
  untimed["systems"]["sasrec"]["latency_ms"] = LatencyStats{}.to_json();
  EXPECT_NE(markdown_table(untimed).find("| 0.0500 | 0.0700 | - | - | - | - | - | 12 |"), std::string::npos)
      << markdown_table(untimed);
  // A latency pair's ratio is stated under the table.
  doc["systems"]["sasrec"]["latency_ratio"] = {{"reference", "slow"},   {"ratio", 0.25},           {"ci", {0.2, 0.3}},
                                               {"level", 0.95},         {"mean_ms", 2.0},          {"reference_mean_ms", 8.0},
                                               {"requests", 1000},      {"block", 50}};
  md = markdown_table(doc);
  EXPECT_NE(md.find("sasrec / slow mean latency, timed interleaved on the same 1000 requests in turns of 50: "
                    "2.00 / 8.00 ms = 0.250x (95% CI 0.200-0.300 over the turns)."),
            std::string::npos)
      << md;
  testing::TempDir tmp;
  write_report(tmp.path(), doc);
  EXPECT_TRUE(std::filesystem::exists(tmp / "results.json"));
  EXPECT_TRUE(std::filesystem::exists(tmp / "results.md"));
}

}  // namespace
}  // namespace twistar
