#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "text/chat_explainer.h"
#include "text/explanations.h"

namespace twistar {
namespace {

// An OpenAI-compatible endpoint on loopback that answers with a fixed status and reply.
class FakeChatServer {
 public:
  FakeChatServer(int status, std::string content) : status_(status), content_(std::move(content)) {
    server_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        bodies_.push_back(req.body);
      }
      res.status = status_;
      const nlohmann::json reply = {
          {"choices", {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", content_}}}}}}};
      res.set_content(reply.dump(), "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::yield();
  }
  ~FakeChatServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  std::vector<std::string> bodies() {
    std::lock_guard<std::mutex> lock(mutex_);
    return bodies_;
  }

 private:
  httplib::Server server_;
  int status_;
  std::string content_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<std::string> bodies_;
};

Dataset two_items() {
  Dataset d;
  d.item_ids = {"A1", "B2"};
  d.items.resize(2);
  d.items[0].title = "Rose Lip Balm";
  d.items[1].title = "Lip Scrub";
  d.items[0].brand = d.items[1].brand = "Acme";
  d.sequences = {{0, 1, 0}};
  d.user_ids = {"u"};
  d.reindex();
  return d;
}

ItemKnowledge one_pair() {
  PairKnowledge p;
  p.a = 0;
  p.b = 1;
  p.co_users = 4;
  p.a_first = 3;
  p.b_first = 1;
  p.swing = 0.3f;
  p.same_brand = true;
  ItemKnowledge k;
  k.pairs = {p};
  return k;
}

ChatOptions options_for(const std::string& url) {
  ChatOptions o;
  o.url = url;
  o.model = "tiny-llm";
  o.timeout_seconds = 5;
  return o;
}

TEST(ChatExplainer, EndpointWritesTheExplanationsFromTheFacts) {
  FakeChatServer server(200, "  Shoppers pair the Rose Lip Balm with the Lip Scrub.\n");
  ChatExplainer chat(options_for(server.url()));
  ExplanationOptions eo;
  eo.per_pair = 2;
  const Corpus c = build_corpus(one_pair(), two_items(), eo, &chat);
  ASSERT_EQ(c.explanations.size(), 2u);
  for (const auto& e : c.explanations) {
    EXPECT_EQ(e.source, "llm");
    EXPECT_EQ(e.text, "Shoppers pair the Rose Lip Balm with the Lip Scrub.");
    EXPECT_FALSE(e.claims.empty()) << "the grounded claims stay recorded";
  }
  EXPECT_EQ(c.stats.llm_explanations, 2);
  EXPECT_EQ(c.stats.llm_failures, 0);
  const auto bodies = server.bodies();
  ASSERT_EQ(bodies.size(), 2u);
  const auto req = nlohmann::json::parse(bodies[0]);
  EXPECT_EQ(req["model"], "tiny-llm");
  ASSERT_EQ(req["messages"].size(), 2u);
  const std::string prompt = req["messages"][1]["content"];
  EXPECT_NE(prompt.find("\"co_users\":4"), std::string::npos) << prompt;
  EXPECT_NE(prompt.find("Rose Lip Balm"), std::string::npos);
  EXPECT_NE(prompt.find("Acme"), std::string::npos);
}

TEST(ChatExplainer, FailuresFallBackToTemplatesAndStopCalling) {
  FakeChatServer server(500, "ignored");
  ChatOptions o = options_for(server.url());
  o.max_consecutive_failures = 2;
  ChatExplainer chat(o);
  ExplanationOptions eo;
  eo.per_pair = 3;
  const Corpus c = build_corpus(one_pair(), two_items(), eo, &chat);
  ASSERT_EQ(c.explanations.size(), 3u);
  for (const auto& e : c.explanations) {
    EXPECT_EQ(e.source, "template");
    EXPECT_NE(e.text.find("4 shoppers"), std::string::npos) << e.text;
  }
  EXPECT_EQ(server.bodies().size(), 2u) << "gives up after max_consecutive_failures";
  EXPECT_EQ(c.stats.llm_failures, 2);
  EXPECT_EQ(c.stats.llm_explanations, 0);
}

TEST(ChatExplainer, UnreachableOrMalformedReplies) {
  int closed_port = 0;
  {
    FakeChatServer gone(200, "x");
    closed_port = std::stoi(gone.url().substr(gone.url().rfind(':') + 1));
  }
  ChatExplainer unreachable(options_for("http://127.0.0.1:" + std::to_string(closed_port) + "/v1"));
  EXPECT_FALSE(unreachable.explain({{"co_users", 2}}, "draft").has_value());
  EXPECT_EQ(unreachable.failures(), 1);
  FakeChatServer empty(200, "   ");
  ChatExplainer blank(options_for(empty.url()));
  EXPECT_FALSE(blank.explain({{"co_users", 2}}, "draft").has_value());
}

TEST(ChatExplainer, OptionsAreValidated) {
  EXPECT_THROW(options_for("https://example.com/v1").validate(), InputError);
  EXPECT_THROW(options_for("ftp://x").validate(), InputError);
  EXPECT_NO_THROW(options_for("http://localhost:8080/v1").validate());
  EXPECT_NO_THROW(options_for("http://10.0.0.2:8000").validate());
  EXPECT_NO_THROW(ChatOptions().validate()) << "no url: endpoint disabled";
}

}  // namespace
}  // namespace twistar
