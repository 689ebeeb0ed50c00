// Python literals -> JSON. Some public dumps (Amazon 2014 metadata) are one Python `repr()` per
// line: single-quoted strings, True/False/None, tuples, Python 2 byte-string escapes. json.loads
// rejects them and eval() is not an option outside Python, so this is a small parser for the
// literal subset.
#pragma once

#include <nlohmann/json.hpp>

#include <string_view>

namespace twistar {

/// Parses one literal: dict, list, tuple (-> array), str with optional u/b/r prefix, int (optional
/// Python 2 `L`), float, True/False/None (JSON's true/false/null too). Dict keys that are not
/// strings become their JSON text. Strings come back as valid UTF-8: `\xhh` escapes are bytes when
/// they form UTF-8 (Python 2 byte strings), otherwise Latin-1 code points. Throws InputError
/// "column N: message" (callers prefix the file and line).
nlohmann::json parse_python_literal(std::string_view text);

}  // namespace twistar
