// A token automaton that constrains what a language model may write (the reasoning LM's rationale
// format: agent/grounding.h). State 0 is the start.
#pragma once

#include <cstdint>
#include <vector>

namespace twistar {

class TokenGrammar {
 public:
  virtual ~TokenGrammar() = default;
  /// Vocabulary ids that may follow in `state` (the end-of-text id when the text may end there).
  virtual const std::vector<int64_t>& allowed(int32_t state) const = 0;
  /// The state after writing `id` in `state` (`id` one of allowed(state)).
  virtual int32_t next(int32_t state, int64_t id) const = 0;
};

}  // namespace twistar
