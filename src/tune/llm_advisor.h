// Optional: an OpenAI-compatible chat endpoint as the tuner's reflector and proposer. The
// rule-based reflector and proposer stay the default and the fallback: a reply that is missing,
// unparseable or outside the search space (or repeats a tried configuration) is logged and the
// rules decide instead.
//
// Protocol: POST <url>/chat/completions with {model, messages, temperature 0}; the reply's
// choices[0].message.content must contain one JSON object:
//   proposal:   {"params": {<axis>: <value>, ...}, "hypothesis": "<one line>"}
//   reflection: {"rule": "<one line>"}
#pragma once

#include <optional>
#include <string>

#include "tune/proposer.h"

namespace twistar {

struct LlmOptions {
  /// Base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1 (empty = off).
  std::string url;
  /// Model name sent with each request.
  std::string model = "default";
  /// Seconds to wait for a reply.
  int timeout_s = 60;

  bool enabled() const { return !url.empty(); }
  /// Throws InputError naming the bad field.
  void validate() const;
};

/// A proposal from the endpoint, validated against the space and the tried configurations;
/// nullopt (with the reason in `why`) when it cannot be used.
std::optional<Proposal> llm_propose(const LlmOptions& options, const ProposalContext& context,
                                    std::string& why);

/// The endpoint's one-line rule for a finished trial (the rule-based reflection is in `trial`);
/// nullopt (with the reason in `why`) when there is no usable reply.
std::optional<std::string> llm_reflect(const LlmOptions& options, const TrialRecord& trial,
                                       std::string& why);

}  // namespace twistar
