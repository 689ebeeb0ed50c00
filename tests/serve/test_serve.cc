// The recommendation service over real HTTP: a tiny run directory (the cycle dataset, its SIDs and
// a SID generator trained by the sidgen stage) is served on a loopback port and asked through
// httplib::Client. Covers the happy path, every class of bad input, health, metrics, concurrency,
// the `recommend` and `serve` commands.
#include <gtest/gtest.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <set>
#include <thread>

#include "apps/pipeline.h"
#include "cli_util.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "data/synth.h"
#include "fixtures.h"
#include "model_fixtures.h"
#include "serve/http_server.h"
#include "serve/service.h"
#include "test_util.h"
// After Eigen (through the project headers): httplib pulls in <resolv.h>, whose `_res` macro
// breaks Eigen's templates.
#include <httplib.h>

namespace twistar {
namespace {

using nlohmann::json;

ServeOptions test_limits() {
  ServeOptions o;
  o.max_body_bytes = 4096;
  o.max_history = 20;
  o.max_k = 40;
  return o;
}

// The run directory is trained once for every test of the file.
class Serve : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new testing::TempDir;
    // Raw ids that are not their indices, written and read back as `twistar` would.
    Dataset d = testing::cycle_dataset();
    for (auto& id : d.item_ids) id = "item" + id;
    d.reindex();
    write_sequences_dir(d, (*tmp_ / "data").string());
    data_ = new Dataset(load_dataset((*tmp_ / "data").string()));
    testing::cycle_sids().save(run() / "sid" / "sid_map.json");
    run_sidgen_stage(*data_, testing::small_sidgen_options(), testing::small_context(), run(),
                     false);
    service_ = new std::shared_ptr<const Service>(
        load_service(run(), test_limits(), testing::small_context()));
    server_ = new HttpServer({"127.0.0.1", 0, 4}, test_limits());
    port_ = server_->bind();
    server_->start();
    server_->set_service(*service_);
  }
  static void TearDownTestSuite() {
    delete server_;
    delete service_;
    delete data_;
    delete tmp_;
  }
  static std::filesystem::path run() { return *tmp_ / "run"; }
  static std::string id(ItemIndex i) { return data_->item_ids[i]; }
  static ItemIndex index(const std::string& raw) { return *data_->find_item(raw); }

  static httplib::Client client() {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30, 0);
    return c;
  }
  static std::pair<int, json> post(const std::string& body) {
    auto res = client().Post("/v1/recommend", body, "application/json");
    EXPECT_TRUE(res) << "no response";
    if (!res) return {0, json()};
    auto j = json::parse(res->body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << res->body;
    return {res->status, j};
  }
  static void expect_error(const std::string& body, int status, const std::string& code,
                           const std::string& field) {
    auto [s, j] = post(body);
    EXPECT_EQ(s, status) << body << " -> " << j.dump();
    ASSERT_TRUE(j.contains("error")) << body << " -> " << j.dump();
    EXPECT_EQ(j["error"]["code"], code) << body;
    EXPECT_EQ(j["error"]["field"], field) << body;
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
  }
  static std::vector<std::string> ids(const json& answer) {
    std::vector<std::string> out;
    for (const auto& item : answer["items"]) out.push_back(item["id"]);
    return out;
  }

  static testing::TempDir* tmp_;
  static Dataset* data_;
  static std::shared_ptr<const Service>* service_;
  static HttpServer* server_;
  static int port_;
};
testing::TempDir* Serve::tmp_ = nullptr;
Dataset* Serve::data_ = nullptr;
std::shared_ptr<const Service>* Serve::service_ = nullptr;
HttpServer* Serve::server_ = nullptr;
int Serve::port_ = 0;

TEST_F(Serve, FastModeRecommendsTheNextItemOfTheCycle) {
  auto [status, a] = post(R"({"history": ["item4", "item5", "item6"], "k": 3, "mode": "fast"})");
  ASSERT_EQ(status, 200) << a.dump();
  ASSERT_EQ(a["items"].size(), 3u);
  EXPECT_EQ(a["items"][0]["id"], "item7");
  EXPECT_EQ(a["items"][0]["index"], index("item7"));
  for (const auto& item : a["items"]) {
    EXPECT_NE(item["id"], "item4");
    EXPECT_NE(item["id"], "item6");
    EXPECT_EQ(item["id"], id(item["index"].get<ItemIndex>()));
  }
  EXPECT_GE(a["items"][0]["score"].get<double>(), a["items"][1]["score"].get<double>());
  EXPECT_EQ(a["ran"], "fast");
  ASSERT_EQ(a["plan"].size(), 1u);
  EXPECT_EQ(a["plan"][0]["tool"], "fast_rec");
  EXPECT_EQ(a["plan"][0]["args"]["k"], 3);
  EXPECT_GT(a["latency_ms"]["fast_rec"].get<double>(), 0.0);
  EXPECT_GE(a["latency_ms"]["total"].get<double>(), a["latency_ms"]["fast_rec"].get<double>());
  EXPECT_TRUE(a["unknown_items"].empty());
  EXPECT_FALSE(a.contains("note"));
}

TEST_F(Serve, IndicesAutoModeAndOptions) {
  std::string seven = std::to_string(index("item7"));
  auto [status, a] = post(fmt::format(R"({{"history": [{}, {}, {}], "k": 2}})", index("item4"),
                                      index("item5"), index("item6")));
  ASSERT_EQ(status, 200) << a.dump();
  EXPECT_EQ(a["items"][0]["id"], "item7");
  EXPECT_EQ(a["mode"], "auto");
  EXPECT_EQ(a["ran"], "fast");
  EXPECT_NE(a["note"].get<std::string>().find("no planner"), std::string::npos) << a.dump();
  // explain off: no plan; a budget is reported against.
  auto [s2, b] = post(R"({"history": ["item4"], "explain": false, "latency_budget_ms": 10000})");
  ASSERT_EQ(s2, 200) << b.dump();
  EXPECT_FALSE(b.contains("plan"));
  EXPECT_EQ(b["over_budget"], false);
  EXPECT_EQ(b["items"].size(), 10u);
  // exclude_history false lets history items back in.
  auto [s3, c] = post(R"({"history": ["item4", "item5"], "k": 30, "exclude_history": false})");
  ASSERT_EQ(s3, 200);
  auto all = ids(c);
  EXPECT_NE(std::find(all.begin(), all.end(), "item4"), all.end());
}

TEST_F(Serve, KLargerThanTheCatalogueReturnsEveryOtherItem) {
  auto [status, a] = post(R"({"history": ["item1", "item2"], "k": 40, "mode": "fast"})");
  ASSERT_EQ(status, 200) << a.dump();
  EXPECT_LE(a["items"].size(), 28u);
  EXPECT_GE(a["items"].size(), 1u);
  auto all = ids(a);
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), all.size());
}

TEST_F(Serve, MalformedRequestsAre400WithTheField) {
  expect_error("{not json", 400, "malformed_json", "");
  expect_error("", 400, "malformed_json", "");
  expect_error("{\"history\": " + std::string(3000, '[') + "}", 400, "malformed_json", "");
  expect_error("[1, 2]", 400, "wrong_type", "");
  expect_error(R"({"k": 3})", 400, "missing_field", "history");
  expect_error(R"({"history": "item4"})", 400, "wrong_type", "history");
  expect_error(R"({"history": ["item4", 1.5]})", 400, "wrong_type", "history[1]");
  expect_error(R"({"history": [true]})", 400, "wrong_type", "history[0]");
  expect_error(R"({"history": [{"id": "item4"}]})", 400, "wrong_type", "history[0]");
  expect_error(R"({"history": [], "k": "10"})", 400, "wrong_type", "k");
  expect_error(R"({"history": [], "k": 2.5})", 400, "wrong_type", "k");
  expect_error(R"({"history": [], "k": 0})", 400, "out_of_range", "k");
  expect_error(R"({"history": [], "k": 41})", 400, "out_of_range", "k");
  expect_error(R"({"history": [], "k": 18446744073709551615})", 400, "out_of_range", "k");
  expect_error(R"({"history": [], "mode": "turbo"})", 400, "invalid_value", "mode");
  expect_error(R"({"history": [], "mode": 1})", 400, "wrong_type", "mode");
  expect_error(R"({"history": [], "explain": "yes"})", 400, "wrong_type", "explain");
  expect_error(R"({"history": [], "exclude_history": 1})", 400, "wrong_type", "exclude_history");
  expect_error(R"({"history": [], "latency_budget_ms": -5})", 400, "out_of_range",
               "latency_budget_ms");
  expect_error(R"({"history": [], "latency_budget_ms": "fast"})", 400, "wrong_type",
               "latency_budget_ms");
  expect_error(R"({"histroy": []})", 400, "unknown_field", "histroy");
  // Invalid UTF-8 inside a string is not valid JSON either.
  expect_error("{\"history\": [\"\xff\xfe\"]}", 400, "malformed_json", "");
}

TEST_F(Serve, UnknownItemsAreReportedOrRejectedWhenStrict) {
  auto [status, a] = post(R"({"history": ["item4", "nope", 99, -1, "item5"], "k": 3})");
  ASSERT_EQ(status, 200) << a.dump();
  EXPECT_EQ(a["unknown_items"], json::parse(R"(["nope", 99, -1])"));
  EXPECT_EQ(a["history_used"], 2);
  EXPECT_EQ(a["items"][0]["id"], "item6");
  expect_error(R"({"history": ["item4", "nope"], "strict": true})", 400, "unknown_item",
               "history[1]");
  // Strict by configuration, overridden per request.
  ServeOptions strict = test_limits();
  strict.strict = true;
  auto service = load_service(run(), strict, testing::small_context());
  auto r = service->handle(R"({"history": [7, 1000]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"]["field"], "history[1]");
  EXPECT_EQ(service->handle(R"({"history": [7, 1000], "strict": false})").status, 200);
}

TEST_F(Serve, EmptyHistoryFallsBackToTrainingPopularity) {
  auto expected = ItemTable::from_dataset(*data_).most_popular({}, {5, true});
  for (const char* body : {R"({"history": [], "k": 5})", R"({"history": ["gone"], "k": 5})"}) {
    auto [status, a] = post(body);
    ASSERT_EQ(status, 200) << a.dump();
    ASSERT_EQ(a["items"].size(), 5u);
    for (size_t i = 0; i < 5; ++i) EXPECT_EQ(a["items"][i]["index"], expected[i].item);
    EXPECT_EQ(a["ran"], "popularity");
    EXPECT_EQ(a["plan"][0]["tool"], "popularity");
    EXPECT_NE(a["note"].get<std::string>().find("most popular"), std::string::npos) << a.dump();
  }
}

TEST_F(Serve, OversizedBodiesAndHistoriesAreRejected) {
  std::string big = R"({"history": [")" + std::string(5000, 'x') + R"("]})";
  auto res = client().Post("/v1/recommend", big, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  auto j = json::parse(res->body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << res->body;
  EXPECT_EQ(j["error"]["code"], "body_too_large");
  // The service checks the limit itself too (for transports without one).
  EXPECT_EQ((*service_)->handle(big).status, 413);
  json h = {{"history", json::array()}};
  for (int i = 0; i < 21; ++i) h["history"].push_back(i % 30);
  expect_error(h.dump(), 400, "history_too_long", "history");
}

TEST_F(Serve, ModesWithoutTheirToolAre422) {
  expect_error(R"({"history": ["item4"], "mode": "rank"})", 422, "mode_unavailable", "mode");
  auto [s, a] = post(R"({"history": [], "mode": "slow"})");
  EXPECT_EQ(s, 422);
  EXPECT_NE(a["error"]["message"].get<std::string>().find("run/reasoner"), std::string::npos);
  auto [s2, b] = post(R"({"history": [], "mode": "rank"})");
  EXPECT_NE(b["error"]["message"].get<std::string>().find("run/ranker: train it first"),
            std::string::npos)
      << b.dump();
}

// A stand-in ranker for the plan's wiring: keeps fast_rec's candidates, lowest index first.
class IndexOrderRanker : public Tool {
 public:
  std::string name() const override { return "rank_candidates"; }
  std::vector<Observation> run(std::vector<RequestState>& requests,
                               const ToolArgs& args) const override {
    std::vector<Observation> out;
    for (auto& r : requests) {
      Observation o{name(), r.candidates, 0.5};
      EXPECT_EQ(static_cast<int>(o.items.size()), args.m);
      std::sort(o.items.begin(), o.items.end(),
                [](const ScoredItem& a, const ScoredItem& b) { return a.item < b.item; });
      o.items.resize(static_cast<size_t>(args.k));
      record(r, o);
      out.push_back(o);
    }
    return out;
  }
};

TEST_F(Serve, RankModeRunsFastRecThenTheRanker) {
  ServeOptions o = test_limits();
  o.rank_candidates = 12;
  ServeTools tools;
  tools.fast_rec = load_fast_rec(run(), testing::small_context());
  tools.rank_candidates = std::make_shared<IndexOrderRanker>();
  Service service(ItemTable::load(item_table_path(run())), tools, o, run());
  auto a = service.handle(R"({"history": ["item4", "item5"], "k": 3, "mode": "rank"})");
  ASSERT_EQ(a.status, 200) << a.body.dump();
  EXPECT_EQ(a.plan, "fast_rec>rank_candidates");
  ASSERT_EQ(a.body["plan"].size(), 2u);
  EXPECT_EQ(a.body["plan"][0]["args"]["k"], 12);
  EXPECT_EQ(a.body["plan"][1]["args"], json::parse(R"({"k": 3, "m": 12})"));
  ASSERT_EQ(a.body["items"].size(), 3u);
  EXPECT_LT(a.body["items"][0]["index"].get<int>(), a.body["items"][1]["index"].get<int>());
  EXPECT_EQ(a.body["latency_ms"]["rank_candidates"], 0.5);
}

TEST_F(Serve, HealthzIs503UntilTheModelsAreLoaded) {
  HttpServer loading({"127.0.0.1", 0, 2}, test_limits());
  int port = loading.bind();
  loading.start();
  httplib::Client c("127.0.0.1", port);
  auto h = c.Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 503);
  auto r = c.Post("/v1/recommend", R"({"history": []})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "not_ready");
  loading.set_service(*service_);
  h = c.Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(json::parse(h->body)["items"], 30);
  auto missing = c.Get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(json::parse(missing->body)["error"]["code"], "not_found");
  loading.stop();
  EXPECT_FALSE(c.Get("/healthz"));
}

TEST_F(Serve, MetricsCountStatusesErrorsPlansAndLatency) {
  HttpServer fresh({"127.0.0.1", 0, 2}, test_limits());
  int port = fresh.bind();
  fresh.start();
  fresh.set_service(*service_);
  httplib::Client c("127.0.0.1", port);
  for (const char* body : {R"({"history": ["item1"]})", R"({"history": ["item2"]})",
                           R"({"history": []})", R"({"history": [], "k": 0})", "nope"})
    ASSERT_TRUE(c.Post("/v1/recommend", body, "application/json"));
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  const std::string& t = m->body;
  for (const char* line : {"twistar_ready 1\n", "twistar_requests_total{status=\"200\"} 3\n",
                           "twistar_requests_total{status=\"400\"} 2\n",
                           "twistar_request_errors_total{code=\"out_of_range\"} 1\n",
                           "twistar_request_errors_total{code=\"malformed_json\"} 1\n",
                           "twistar_plans_total{plan=\"fast_rec\"} 2\n",
                           "twistar_plans_total{plan=\"popularity\"} 1\n",
                           "twistar_request_duration_seconds_bucket{le=\"+Inf\"} 5\n",
                           "twistar_request_duration_seconds_count 5\n",
                           "# TYPE twistar_request_duration_seconds histogram\n"})
    EXPECT_NE(t.find(line), std::string::npos) << line << "\n" << t;
}

// Calls fast_rec(k), then finish.
class FastThenFinish : public Policy {
 public:
  std::string name() const override { return "fast_then_finish"; }
  std::vector<int> decide(const std::vector<const Sequence*>&, const std::vector<EpisodeState>& states, double,
                          double) const override {
    std::vector<int> out;
    for (const auto& s : states) out.push_back(s.calls == 0 ? kFastK : kFinish);
    return out;
  }
};

// think_and_rec for a planner that never calls it.
class NeverCalled : public Tool {
 public:
  std::string name() const override { return "think_and_rec"; }
  std::vector<Observation> run(std::vector<RequestState>&, const ToolArgs&) const override {
    ADD_FAILURE() << "think_and_rec was called";
    return {};
  }
};

TEST_F(Serve, MetricsExportThePlannersBetaWhileItHoldsItsLatencyTarget) {
  ServeTools tools;
  tools.fast_rec = load_fast_rec(run(), testing::small_context());
  tools.rank_candidates = std::make_shared<IndexOrderRanker>();
  tools.think_and_rec = std::make_shared<NeverCalled>();
  tools.planner = std::make_shared<FastThenFinish>();
  tools.costs.ms[kFastK] = 4.0;  // every episode costs more than the 2 ms target: β rises as it serves
  tools.beta = std::make_shared<BetaController>(0.05, 2.0);
  HttpServer planned({"127.0.0.1", 0, 2}, test_limits());
  int port = planned.bind();
  planned.start();
  planned.set_service(std::make_shared<const Service>((*service_)->items(), tools, test_limits(), run()));
  httplib::Client c("127.0.0.1", port);
  auto gauge = [&](const std::string& name) {
    auto m = c.Get("/metrics");
    EXPECT_TRUE(m);
    const std::string& t = m->body;
    EXPECT_NE(t.find("# TYPE " + name + " gauge\n"), std::string::npos) << t;
    const auto at = t.find("\n" + name + " ");
    EXPECT_NE(at, std::string::npos) << t;
    return at == std::string::npos ? -1.0 : std::stod(t.substr(at + name.size() + 2));
  };
  EXPECT_DOUBLE_EQ(gauge("twistar_planner_beta"), 0.05);
  EXPECT_DOUBLE_EQ(gauge("twistar_planner_latency_target_ms"), 2.0);
  for (int i = 0; i < 3; ++i) {
    auto res = c.Post("/v1/recommend", R"({"history": ["item4", "item5"]})", "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    EXPECT_NE(res->body.find("\"ran\":\"fast_rec"), std::string::npos) << res->body;
  }
  const double served = gauge("twistar_planner_beta");
  EXPECT_GT(served, 0.05);
  const double cost = tools.costs.of(kFastK) + tools.costs.of(kFinish);  // the finish decision too
  EXPECT_NEAR(served, 0.05 * std::exp(3 * 5e-4 * (cost / 2.0 - 1)), 1e-9);
  // Without a planner there is no β to export.
  auto plain = client().Get("/metrics");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->body.find("twistar_planner_beta"), std::string::npos);
}

TEST_F(Serve, ConcurrentRequestsGetTheSameAnswersAsSequentialOnes) {
  auto body = [](int i) {
    return fmt::format(R"({{"history": [{}, {}, {}], "k": 5, "mode": "fast"}})", i % 30,
                       (i + 1) % 30, (i + 2) % 30);
  };
  std::vector<std::vector<std::string>> expected(30);
  for (int i = 0; i < 30; ++i) expected[i] = ids(post(body(i)).second);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&, t] {
      auto c = client();
      for (int n = 0; n < 20; ++n) {
        int i = (t * 7 + n) % 30;
        auto res = c.Post("/v1/recommend", body(i), "application/json");
        if (!res || res->status != 200 || ids(json::parse(res->body)) != expected[i]) ++failures;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(Serve, ItemTableRoundTripAndRebuildFromData) {
  auto table = ItemTable::load(item_table_path(run()));
  testing::TempDir tmp;
  table.save(tmp / "items.tsv");
  EXPECT_EQ(read_file(tmp / "items.tsv"), read_file(item_table_path(run())));
  ASSERT_EQ(table.num_items(), 30);
  EXPECT_EQ(table.id(3), data_->item_ids[3]);
  EXPECT_EQ(*table.find("item9"), index("item9"));
  testing::write_text(tmp / "bad.tsv", "index\tid\ttrain_count\n0\ta\t3\n2\tb\t1\n");
  try {
    ItemTable::load(tmp / "bad.tsv");
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.tsv:3"), std::string::npos) << e.what();
  }
  // A run directory without items.tsv: rebuilt from --data when it is the training data.
  std::filesystem::create_directories(tmp / "old" / "sidgen");
  std::filesystem::copy_file(run() / "sidgen" / "manifest.json",
                             tmp / "old" / "sidgen" / "manifest.json");
  EXPECT_THROW(load_item_table(tmp / "old"), InputError);
  auto rebuilt = load_item_table(tmp / "old", (*tmp_ / "data").string());
  EXPECT_EQ(rebuilt.id(5), table.id(5));
  write_sequences_dir(testing::cycle_dataset(100), (tmp / "other").string());
  EXPECT_THROW(load_item_table(tmp / "old", (tmp / "other").string()), InputError);
}

TEST_F(Serve, RecommendCommandPrintsTheServiceAnswer) {
  testing::TempDir tmp;
  std::string base = "--threads 1 recommend --run " + run().string() + " ";
  auto r = testing::run_cli(tmp, base + "--history item4,item5,item6 --k 3 --mode fast --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto a = json::parse(r.out);
  EXPECT_EQ(
      ids(a),
      ids(post(R"({"history": ["item4", "item5", "item6"], "k": 3, "mode": "fast"})").second));
  auto text = testing::run_cli(tmp, base + "--history item4,item5,item6,nope --k 3");
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("  1  item7"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("fast_rec(3)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("unknown items (ignored): [\"nope\"]"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("no planner"), std::string::npos) << text.out;
  auto bad = testing::run_cli(tmp, base + "--history item4 --k 0");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("k: must be in [1, 100]"), std::string::npos) << bad.err;
  auto rank = testing::run_cli(tmp, base + "--history item4 --mode rank");
  EXPECT_EQ(rank.code, 2);
  EXPECT_NE(rank.err.find("run/ranker"), std::string::npos) << rank.err;
  // Limits from a TOML config table, overridden on the command line.
  testing::write_text(tmp / "c.toml", "[recommend]\nmax-k = 5\n");
  std::string config = "--config " + (tmp / "c.toml").string() + " ";
  auto limited = testing::run_cli(tmp, config + base + "--history item4 --k 6");
  EXPECT_EQ(limited.code, 2);
  EXPECT_NE(limited.err.find("k: must be in [1, 5]"), std::string::npos) << limited.err;
  EXPECT_EQ(testing::run_cli(tmp, config + base + "--history item4 --k 6 --max-k 8").code, 0);
  auto none =
      testing::run_cli(tmp, "recommend --run " + (tmp / "nothing").string() + " --history a");
  EXPECT_EQ(none.code, 2);
  EXPECT_NE(none.err.find("items.tsv"), std::string::npos) << none.err;
}

TEST_F(Serve, ServeCommandAnswersAndStopsOnSigterm) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    execl(TWISTAR_CLI_PATH, TWISTAR_CLI_PATH, "--quiet", "serve", "--run", run().c_str(), "--port",
          "0", "--threads", "2", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      if (pid > 0 && waitpid(pid, nullptr, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
  } reaper{pid};
  FILE* f = fdopen(out[0], "r");
  char line[256] = {0};
  ASSERT_TRUE(fgets(line, sizeof line, f)) << "no output from twistar serve";
  std::string first(line);
  auto colon = first.rfind(':');
  ASSERT_NE(first.find("listening on http://127.0.0.1:"), std::string::npos) << first;
  int port = std::stoi(first.substr(colon + 1));
  httplib::Client c("127.0.0.1", port);
  bool ready = false;
  for (int i = 0; i < 600 && !ready; ++i) {
    auto h = c.Get("/healthz");
    ready = h && h->status == 200;
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(ready);
  auto res = c.Post("/v1/recommend", R"({"history": ["item4", "item5", "item6"], "k": 1})",
                    "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(json::parse(res->body)["items"][0]["id"], "item7");
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  reaper.pid = 0;
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  ASSERT_TRUE(fgets(line, sizeof line, f));
  EXPECT_EQ(std::string(line), "stopped\n");
  fclose(f);
}

/// A raw TCP connection to the loopback server, for what httplib's client will not send.
class RawConnection {
 public:
  explicit RawConnection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    timeval tv{10, 0};
    if (fd_ >= 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }
  void send(const std::string& bytes) { ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size())); }
  /// One whole response: the headers, then Content-Length bytes of body.
  std::string read_response() {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd_, buf, sizeof buf, 0)) > 0) {
      out.append(buf, static_cast<size_t>(n));
      const size_t head = out.find("\r\n\r\n");
      const size_t cl = out.find("Content-Length: ");
      if (head != std::string::npos && cl != std::string::npos && cl < head &&
          out.size() >= head + 4 + std::stoul(out.substr(cl + 16)))
        break;
    }
    return out;
  }
  /// Everything the server writes until it closes the connection (or 10 s pass).
  std::string read_all() {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd_, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

TEST_F(Serve, WrongMethodsUnboundedAndOversizedBodiesAreRefusedFromTheHeaders) {
  auto status_of = [](const std::string& request) {
    RawConnection c(port_);
    EXPECT_TRUE(c.connected());
    c.send(request);
    const std::string response = c.read_response();
    EXPECT_NE(response.find("Connection: close"), std::string::npos) << response;
    return response;
  };
  const std::string get = status_of("GET /v1/recommend HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(get.rfind("HTTP/1.1 405", 0), 0u) << get;
  EXPECT_NE(get.find("Allow: POST"), std::string::npos) << get;
  EXPECT_NE(get.find("method_not_allowed"), std::string::npos) << get;
  const std::string del = status_of("DELETE /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(del.rfind("HTTP/1.1 405", 0), 0u) << del;
  // A body declared over the limit is answered before any of it is sent (no wait for 10^12 bytes).
  const std::string huge = status_of("POST /v1/recommend HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000000\r\n\r\n");
  EXPECT_EQ(huge.rfind("HTTP/1.1 413", 0), 0u) << huge;
  const std::string negative = status_of("POST /v1/recommend HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n");
  EXPECT_EQ(negative.rfind("HTTP/1.1 400", 0), 0u) << negative;
  // Chunked and compressed bodies would be buffered (or inflated) before any limit applies.
  const std::string chunked =
      status_of("POST /v1/recommend HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n");
  EXPECT_EQ(chunked.rfind("HTTP/1.1 411", 0), 0u) << chunked;
  const std::string gzip = status_of(
      "POST /v1/recommend HTTP/1.1\r\nHost: t\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nabcd");
  EXPECT_EQ(gzip.rfind("HTTP/1.1 415", 0), 0u) << gzip;
}

TEST_F(Serve, IdleAndHalfSentConnectionsDoNotStarveANormalClient) {
  // 4 x the compute threads: half connect and send nothing, half stop in the middle of a request.
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 16; ++i) {
    slow.push_back(std::make_unique<RawConnection>(port_));
    ASSERT_TRUE(slow.back()->connected());
    if (i % 2) slow.back()->send("POST /v1/recommend HTTP/1.1\r\nHost: t\r\nContent-Le");
  }
  // Every request of a normal client is answered while they hold their connections.
  httplib::Client c("127.0.0.1", port_);
  c.set_read_timeout(1, 0);
  c.set_connection_timeout(1, 0);
  for (int i = 0; i < 10; ++i) {
    auto h = c.Get("/healthz");
    ASSERT_TRUE(h) << "request " << i << " got no answer";
    EXPECT_EQ(h->status, 200);
    auto r = c.Post("/v1/recommend", R"({"history": ["item4", "item5", "item6"], "k": 1})", "application/json");
    ASSERT_TRUE(r) << "request " << i << " got no answer";
    EXPECT_EQ(r->status, 200);
  }
  // The half-sent requests are dropped after the read timeout (the server closes them).
  EXPECT_EQ(slow[1]->read_all().find("200 OK"), std::string::npos);
}

TEST(ServeConnections, BeyondTheConnectionCapNewClientsAreServedOnceStalledOnesTimeOut) {
  HttpOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.threads = 1;
  o.max_connections = 2;
  o.keep_alive_seconds = 1;
  o.read_timeout_ms = 200;
  HttpServer server(o, test_limits());
  const int port = server.bind();
  server.start();
  RawConnection a(port), b(port);
  a.send("GET /heal");
  b.send("GET /heal");
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(10, 0);
  auto h = c.Get("/healthz");  // waits for a connection thread, then gets its answer
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 503);  // no service set: loading
  server.stop();
}

TEST(ServeConnections, OptionsAreChecked) {
  HttpOptions o;
  o.threads = 4;
  o.max_connections = 2;
  EXPECT_THROW(o.validate(), InputError);
  o.max_connections = 0;
  EXPECT_EQ(o.connection_threads(), 64);
  o.read_timeout_ms = 0;
  EXPECT_THROW(o.validate(), InputError);
}

TEST(ServeOptionsCheck, ABadLatencyTargetOrStepNamesItsField) {
  ServeOptions o;
  EXPECT_NO_THROW(o.validate());
  o.latency_target_step = 0;
  try {
    o.validate();
    ADD_FAILURE() << "a zero step was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("latency_target_step"), std::string::npos) << e.what();
  }
  o.latency_target_step = kLatencyTargetStep;
  o.latency_target = -0.1;
  EXPECT_THROW(o.validate(), InputError);
}

}  // namespace
}  // namespace twistar
