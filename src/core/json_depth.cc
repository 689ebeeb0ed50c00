#include "core/json_depth.h"

namespace twistar {

std::optional<size_t> json_too_deep(std::string_view text, size_t limit, bool python) {
  size_t depth = 0;
  char quote = 0;  // the open string's quote, or 0 outside strings
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quote) {
      if (c == '\\') ++i;  // the escaped character cannot close the string
      else if (c == quote) quote = 0;
      continue;
    }
    if (c == '"' || (python && c == '\'')) {
      quote = c;
    } else if (c == '[' || c == '{' || (python && c == '(')) {
      if (++depth > limit) return i;
    } else if ((c == ']' || c == '}' || (python && c == ')')) && depth > 0) {
      --depth;
    }
  }
  return std::nullopt;
}

}  // namespace twistar
