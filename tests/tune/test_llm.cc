#include <gtest/gtest.h>
#include <httplib.h>

#include <mutex>
#include <thread>

#include "fixtures.h"
#include "tune/fake_runner.h"

namespace twistar {
namespace {

using testing::FakeRunner;
using testing::TempDir;

/// An OpenAI-compatible endpoint on loopback that answers proposals from a script of replies and
/// reflections with a fixed rule.
class FakeEndpoint {
 public:
  explicit FakeEndpoint(std::vector<std::string> proposals) : proposals_(std::move(proposals)) {
    server_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      auto body = nlohmann::json::parse(req.body);
      std::string system = body["messages"][0]["content"];
      std::string content;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (system.find("Propose") != std::string::npos) {
          content = next_ < proposals_.size() ? proposals_[next_] : "no idea";
          ++next_;
        } else {
          content = "{\"rule\": \"fake: the curve says so (trial evidence)\"}";
        }
      }
      nlohmann::json reply = {{"choices", {{{"message", {{"role", "assistant"}, {"content", content}}}}}}};
      res.set_content(reply.dump(), "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::yield();
  }
  ~FakeEndpoint() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mutex_;
  std::vector<std::string> proposals_;
  size_t next_ = 0;
};

TEST(TuneLlm, ValidProposalsAreUsedAndBadOnesFallBackToTheRules) {
  FakeEndpoint endpoint({
      // Trial 2: valid, wrapped in prose and a code fence.
      "Try a wider model:\n```json\n{\"params\": {\"dim\": 128, \"layers\": 2, \"dropout\": 0.5, "
      "\"lr\": 0.003}, \"hypothesis\": \"wider helps\"}\n```",
      // Trial 3: outside the space.
      "{\"params\": {\"dim\": 100}, \"hypothesis\": \"odd width\"}",
      // Trial 4: not JSON.
      "I would raise the learning rate.",
      // Trial 5: repeats trial 2.
      "{\"params\": {\"dim\": 128, \"layers\": 2, \"dropout\": 0.5, \"lr\": 0.003}}",
  });
  TempDir dir;
  Dataset data = testing::cycle_dataset(20, 10, 5);
  FakeRunner runner;
  auto o = testing::tune_options(dir, "tune", 5);
  o.llm.url = endpoint.url();
  auto r = run_tune(data, runner, TrialBudget{}, o);
  ASSERT_EQ(r.trials.size(), 5u);
  EXPECT_EQ(r.trials[0].hypothesis.source, "baseline");
  EXPECT_EQ(r.trials[1].hypothesis.source, "llm");
  EXPECT_EQ(r.trials[1].params.at("dim"), 128);
  EXPECT_NE(r.trials[1].hypothesis.text.find("wider helps"), std::string::npos);
  EXPECT_EQ(r.trials[1].hypothesis.axes, std::vector<std::string>{"dim"});
  for (int i : {2, 3, 4}) {
    EXPECT_NE(r.trials[i].hypothesis.source, "llm");
    EXPECT_NE(r.trials[i].hypothesis.text.find("llm proposal rejected"), std::string::npos)
        << r.trials[i].hypothesis.text;
  }
  EXPECT_NE(r.trials[2].hypothesis.text.find("dim"), std::string::npos);
  EXPECT_NE(r.trials[4].hypothesis.text.find("repeats trial #2"), std::string::npos);
  for (const auto& t : r.trials) {
    EXPECT_EQ(t.reflection.author, "llm");
    EXPECT_EQ(t.reflection.rule, "fake: the curve says so (trial evidence)");
    EXPECT_TRUE(t.reflection.evidence.contains("rules_reflection"));
  }
}

TEST(TuneLlm, UnreachableEndpointFallsBackToTheRules) {
  TempDir dir;
  Dataset data = testing::cycle_dataset(20, 10, 5);
  FakeRunner runner;
  auto o = testing::tune_options(dir, "tune", 2);
  o.llm.url = "http://127.0.0.1:1/v1";  // nothing listens on port 1
  o.llm.timeout_s = 2;
  auto r = run_tune(data, runner, TrialBudget{}, o);
  ASSERT_EQ(r.trials.size(), 2u);
  EXPECT_EQ(r.trials[1].reflection.author, "rules");
  EXPECT_NE(r.trials[1].hypothesis.text.find("llm proposal rejected"), std::string::npos);
}

}  // namespace
}  // namespace twistar
