// Explanations written by an OpenAI-compatible chat endpoint (a llama.cpp or vLLM server) from a
// pair's facts, instead of the templates of text/explanations.h. Optional: the templates are the
// default and need no network. Only plain http:// is supported.
//
// The prompt gives the facts as JSON and the template text as a faithful draft, and asks for a
// rewrite that adds nothing else; the reply is not checked against the facts, so the corpus records
// which explanations came from the endpoint ("source": "llm").
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>

namespace httplib {
class Client;
}

namespace twistar {

struct ChatOptions {
  /// Base URL of the API, e.g. http://127.0.0.1:8080/v1 (requests go to <url>/chat/completions);
  /// empty disables the endpoint.
  std::string url;
  /// The `model` field of each request.
  std::string model = "default";
  /// Per-request connect + read timeout.
  double timeout_seconds = 60.0;
  /// After this many consecutive failures the endpoint is no longer called (templates are used).
  int max_consecutive_failures = 3;
  double temperature = 0.0;
  int max_tokens = 200;

  bool enabled() const { return !url.empty(); }
  /// Throws InputError naming the bad field (an https:// or malformed url, say).
  void validate() const;
  nlohmann::json to_json() const;
};

class ChatExplainer {
 public:
  explicit ChatExplainer(ChatOptions options);
  ~ChatExplainer();
  ChatExplainer(const ChatExplainer&) = delete;
  ChatExplainer& operator=(const ChatExplainer&) = delete;

  /// The endpoint's explanation of `facts`, or nullopt when the call fails (logged) or the endpoint
  /// was given up on.
  std::optional<std::string> explain(const nlohmann::json& facts, const std::string& draft);

  /// The request body explain() sends (exposed for tests).
  nlohmann::json request(const nlohmann::json& facts, const std::string& draft) const;

  /// Failed calls so far.
  int failures() const { return failures_; }

 private:
  ChatOptions options_;
  std::string path_;
  std::unique_ptr<httplib::Client> client_;
  int failures_ = 0;
  int consecutive_failures_ = 0;
};

}  // namespace twistar
