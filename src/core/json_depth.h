// A nesting limit for JSON (and Python-literal) text, checked before any parser sees it: a line of
// 100k '[' makes a recursive parser or destructor overflow the stack, so every loader and the HTTP
// body parser refuse text nested deeper than kMaxJsonDepth with an error naming where it is.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace twistar {

/// Deeper than any file twistar reads or writes needs (its own documents nest 6 levels at most).
constexpr size_t kMaxJsonDepth = 64;

/// The byte offset of the first bracket that opens level `limit + 1` of `text` ('[' and '{' outside
/// strings; `python` also treats '...' as strings), or nullopt when the text stays within `limit`.
std::optional<size_t> json_too_deep(std::string_view text, size_t limit = kMaxJsonDepth, bool python = false);

}  // namespace twistar
