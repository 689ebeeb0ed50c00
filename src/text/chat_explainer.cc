#include "text/chat_explainer.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <regex>

#include "core/error.h"
#include "data/text_io.h"

namespace twistar {
namespace {

constexpr const char* kSystemPrompt =
    "You explain why shoppers who buy one product also buy another. Use only the facts given; do "
    "not invent features, prices, effects or opinions. Keep every number exact. Reply with two or "
    "three plain sentences and nothing else.";

// scheme://host[:port] and the path of an http:// URL.
struct ParsedUrl {
  std::string origin;
  std::string path;
};

ParsedUrl parse_url(const std::string& url) {
  static const std::regex re(R"(^(http://[A-Za-z0-9.\-\[\]:]+?(:[0-9]+)?)(/.*)?$)");
  std::smatch m;
  if (url.rfind("https://", 0) == 0)
    throw_input_error("chat.url: '{}': only http:// is supported (put a TLS proxy in front)", url);
  if (!std::regex_match(url, m, re))
    throw_input_error("chat.url: '{}' is not an http://host[:port][/path] URL", url);
  std::string path = m[3].str();
  while (!path.empty() && path.back() == '/') path.pop_back();
  return {m[1].str(), path};
}

}  // namespace

void ChatOptions::validate() const {
  if (!enabled()) return;
  parse_url(url);
  if (model.empty()) throw_input_error("chat.model: must not be empty");
  if (!(timeout_seconds > 0)) throw_input_error("chat.timeout_seconds: must be > 0");
  if (max_consecutive_failures < 1)
    throw_input_error("chat.max_consecutive_failures: must be >= 1");
  if (max_tokens < 1) throw_input_error("chat.max_tokens: must be >= 1");
}

nlohmann::json ChatOptions::to_json() const {
  if (!enabled()) return {{"url", ""}};
  return {{"url", url},
          {"model", model},
          {"temperature", temperature},
          {"max_tokens", max_tokens}};
}

ChatExplainer::ChatExplainer(ChatOptions options) : options_(std::move(options)) {
  options_.validate();
  if (!options_.enabled()) throw_error("ChatExplainer: no url");
  const ParsedUrl u = parse_url(options_.url);
  path_ = u.path + "/chat/completions";
  client_ = std::make_unique<httplib::Client>(u.origin);
  const double whole = std::floor(options_.timeout_seconds);
  const auto sec = static_cast<time_t>(whole);
  const auto usec = static_cast<time_t>((options_.timeout_seconds - whole) * 1e6);
  client_->set_connection_timeout(sec, usec);
  client_->set_read_timeout(sec, usec);
  client_->set_write_timeout(sec, usec);
}

ChatExplainer::~ChatExplainer() = default;

nlohmann::json ChatExplainer::request(const nlohmann::json& facts, const std::string& draft) const {
  const std::string user = "Facts (JSON): " + facts.dump() + "\nFaithful draft: " + draft +
                           "\nRewrite the draft as a natural explanation.";
  return {{"model", options_.model},
          {"temperature", options_.temperature},
          {"max_tokens", options_.max_tokens},
          {"messages",
           {{{"role", "system"}, {"content", kSystemPrompt}}, {{"role", "user"}, {"content", user}}}}};
}

std::optional<std::string> ChatExplainer::explain(const nlohmann::json& facts,
                                                  const std::string& draft) {
  if (consecutive_failures_ >= options_.max_consecutive_failures) return std::nullopt;
  std::string error;
  std::optional<std::string> text;
  const auto res = client_->Post(path_, request(facts, draft).dump(), "application/json");
  if (!res) {
    error = httplib::to_string(res.error());
  } else if (res->status != 200) {
    error = fmt::format("HTTP {}", res->status);
  } else {
    const auto body = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
    if (body.is_object() && body.contains("choices") && body["choices"].is_array() &&
        !body["choices"].empty()) {
      const auto& msg = body["choices"][0].value("message", nlohmann::json::object());
      if (msg.contains("content") && msg["content"].is_string()) text = msg["content"];
    }
    if (text) *text = trim(*text);
    if (!text || text->empty()) {
      error = "reply has no choices[0].message.content text";
      text.reset();
    }
  }
  if (text) {
    consecutive_failures_ = 0;
    return text;
  }
  ++failures_;
  ++consecutive_failures_;
  spdlog::warn("chat endpoint {}{}: {}; using the template explanation", options_.url,
               path_.substr(path_.rfind("/chat")), error);
  if (consecutive_failures_ == options_.max_consecutive_failures)
    spdlog::warn("chat endpoint {}: {} failures in a row; templates for the rest of the corpus",
                 options_.url, consecutive_failures_);
  return std::nullopt;
}

}  // namespace twistar
