#include "data/pyliteral.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "data/text_io.h"

namespace twistar {

namespace {

void append_utf8(std::string& out, uint32_t cp) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

/// Length of the well-formed UTF-8 sequence at s[i], or 0 if there is none.
size_t utf8_length(const std::string& s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((b(i + k) & 0xC0) != 0x80) return 0;
  // Reject overlong forms, surrogates and values above U+10FFFF.
  if (n == 3 && ((c == 0xE0 && b(i + 1) < 0xA0) || (c == 0xED && b(i + 1) >= 0xA0))) return 0;
  if (n == 4 && ((c == 0xF0 && b(i + 1) < 0x90) || (c == 0xF4 && b(i + 1) >= 0x90))) return 0;
  return n;
}

/// nlohmann::json refuses to dump invalid UTF-8; stray high bytes are read as Latin-1 instead.
std::string to_valid_utf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_length(s, i);
    if (n == 0) {
      append_utf8(out, static_cast<unsigned char>(s[i]));
      ++i;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_string_prefix(char c) {
  return c == 'u' || c == 'U' || c == 'b' || c == 'B' || c == 'r' || c == 'R';
}

bool is_ident(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  nlohmann::json parse_document() {
    nlohmann::json value = parse_value(0);
    skip_ws();
    if (pos_ < s_.size()) fail(fmt::format("unexpected '{}' after the value", s_[pos_]));
    return value;
  }

 private:
  static constexpr int kMaxDepth = 256;

  [[noreturn]] void fail(const std::string& message) const {
    throw_input_error("column {}: {}", pos_ + 1, message);
  }

  void skip_ws() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }

  bool at_string_start() const {
    size_t p = pos_;
    while (p < s_.size() && p < pos_ + 2 && is_string_prefix(s_[p])) ++p;
    return p < s_.size() && (s_[p] == '\'' || s_[p] == '"');
  }

  nlohmann::json parse_value(int depth) {
    if (depth > kMaxDepth) fail("nesting is too deep");
    skip_ws();
    if (pos_ >= s_.size()) fail("unexpected end of input");
    const char c = s_[pos_];
    if (c == '{') return parse_dict(depth);
    if (c == '[') return parse_sequence(depth, ']');
    if (c == '(') return parse_sequence(depth, ')');
    if (at_string_start()) return parse_string();
    if (c == '-' || c == '+' || c == '.' || std::isdigit(static_cast<unsigned char>(c)))
      return parse_number();
    if (is_ident(c)) return parse_keyword();
    fail(fmt::format("unexpected '{}'", c));
  }

  nlohmann::json parse_keyword() {
    const size_t start = pos_;
    while (pos_ < s_.size() && is_ident(s_[pos_])) ++pos_;
    const std::string_view word = s_.substr(start, pos_ - start);
    if (word == "True" || word == "true") return true;
    if (word == "False" || word == "false") return false;
    // JSON has no NaN or infinity; null is the closest faithful value.
    if (word == "None" || word == "null" || word == "nan" || word == "inf") return nullptr;
    pos_ = start;
    fail(fmt::format("unknown name '{}'", word));
  }

  /// After an element: true if another follows, false at `close`.
  bool next_element(char close, const char* what) {
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ',') {
      ++pos_;
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == close) {
        ++pos_;  // trailing comma
        return false;
      }
      return true;
    }
    if (pos_ < s_.size() && s_[pos_] == close) {
      ++pos_;
      return false;
    }
    fail(fmt::format("expected ',' or '{}' in {}", close, what));
  }

  nlohmann::json parse_sequence(int depth, char close) {
    ++pos_;
    nlohmann::json out = nlohmann::json::array();
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == close) {
      ++pos_;
      return out;
    }
    do {
      out.push_back(parse_value(depth + 1));
    } while (next_element(close, close == ']' ? "a list" : "a tuple"));
    return out;
  }

  nlohmann::json parse_dict(int depth) {
    ++pos_;
    nlohmann::json out = nlohmann::json::object();
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return out;
    }
    do {
      nlohmann::json key = parse_value(depth + 1);
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != ':') fail("expected ':' after a dict key");
      ++pos_;
      nlohmann::json value = parse_value(depth + 1);
      out[key.is_string() ? key.get<std::string>() : key.dump()] = std::move(value);
    } while (next_element('}', "a dict"));
    return out;
  }

  nlohmann::json parse_number();
  nlohmann::json parse_string();
  void parse_escape(std::string& out, bool unicode);
  uint32_t read_hex(size_t digits);
  uint32_t parse_code_point(size_t digits);

  std::string_view s_;
  size_t pos_ = 0;
};

nlohmann::json Parser::parse_number() {
  const size_t start = pos_;
  if (s_[pos_] == '-' || s_[pos_] == '+') ++pos_;
  bool is_float = false;
  while (pos_ < s_.size()) {
    const char c = s_[pos_];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      ++pos_;
    } else if (c == '.' || c == 'e' || c == 'E') {
      is_float = true;
      ++pos_;
      if ((c == 'e' || c == 'E') && pos_ < s_.size() && (s_[pos_] == '-' || s_[pos_] == '+'))
        ++pos_;
    } else {
      break;
    }
  }
  const std::string_view digits = s_.substr(start, pos_ - start);
  if (!is_float && pos_ < s_.size() && (s_[pos_] == 'L' || s_[pos_] == 'l'))
    ++pos_;  // Python 2 long
  if (pos_ < s_.size() && is_ident(s_[pos_])) fail(fmt::format("malformed number '{}'", digits));
  int64_t i = 0;
  if (!is_float && parse_int64(digits, i)) return i;
  double d = 0;
  if (!parse_double(digits, d)) fail(fmt::format("malformed number '{}'", digits));
  if (!std::isfinite(d)) return nullptr;
  return d;
}

uint32_t Parser::read_hex(size_t digits) {
  uint32_t v = 0;
  for (size_t k = 0; k < digits; ++k) {
    const int h = pos_ < s_.size() ? hex_value(s_[pos_]) : -1;
    if (h < 0) fail(fmt::format("escape needs {} hex digits", digits));
    v = v * 16 + static_cast<uint32_t>(h);
    ++pos_;
  }
  return v;
}

/// The character a one-letter escape stands for, or 0 when `c` does not start one.
char simple_escape(char c) {
  switch (c) {
    case '\\':
      return '\\';
    case '\'':
      return '\'';
    case '"':
      return '"';
    case 'a':
      return '\a';
    case 'b':
      return '\b';
    case 'f':
      return '\f';
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    case 'v':
      return '\v';
    default:
      return 0;
  }
}

/// One escape after a backslash. Byte escapes (\xhh, octal) stay bytes in byte strings, so UTF-8
/// written byte by byte by Python 2 reassembles; in u'' strings they are code points.
void Parser::parse_escape(std::string& out, bool unicode) {
  if (pos_ >= s_.size()) fail("unterminated string");
  const char c = s_[pos_++];
  if (c == '\n') return;  // line continuation
  if (char simple = simple_escape(c)) {
    out += simple;
  } else if (c == 'x' || (c >= '0' && c <= '7')) {
    uint32_t v = 0;
    if (c == 'x') {
      v = read_hex(2);
    } else {
      v = static_cast<uint32_t>(c - '0');
      for (int k = 0; k < 2 && pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '7'; ++k)
        v = v * 8 + static_cast<uint32_t>(s_[pos_++] - '0');
    }
    if (unicode || v >= 0x100) {
      append_utf8(out, v);
    } else {
      out += static_cast<char>(v);
    }
  } else if (c == 'u' || c == 'U') {
    append_utf8(out, parse_code_point(c == 'u' ? 4 : 8));
  } else {
    out += '\\';  // Python keeps unknown escapes verbatim
    out += c;
  }
}

/// \u / \U digits; narrow Python 2 builds print astral characters as two \u surrogates.
uint32_t Parser::parse_code_point(size_t digits) {
  uint32_t cp = read_hex(digits);
  if (cp >= 0xD800 && cp <= 0xDBFF && s_.substr(pos_, 2) == "\\u") {
    const size_t save = pos_;
    pos_ += 2;
    const uint32_t low = read_hex(4);
    if (low >= 0xDC00 && low <= 0xDFFF) return 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    pos_ = save;  // a lone high surrogate; the next escape is read on its own
  }
  return cp;
}

nlohmann::json Parser::parse_string() {
  bool raw = false, unicode = false;
  while (is_string_prefix(s_[pos_])) {
    raw |= s_[pos_] == 'r' || s_[pos_] == 'R';
    unicode |= s_[pos_] == 'u' || s_[pos_] == 'U';
    ++pos_;
  }
  const char quote = s_[pos_++];
  const size_t start = pos_;
  std::string out;
  while (true) {
    if (pos_ >= s_.size()) {
      pos_ = start - 1;
      fail("string is never closed");
    }
    const char c = s_[pos_++];
    if (c == quote) break;
    if (c != '\\') {
      out += c;
    } else if (!raw) {
      parse_escape(out, unicode);
    } else {
      out += c;  // raw strings keep the backslash but it still protects a quote
      if (pos_ < s_.size()) out += s_[pos_++];
    }
  }
  return to_valid_utf8(out);
}

}  // namespace

nlohmann::json parse_python_literal(std::string_view text) { return Parser(text).parse_document(); }

}  // namespace twistar
