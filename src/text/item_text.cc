#include "text/item_text.h"

#include "core/error.h"

namespace twistar {
namespace {

bool is_token_byte(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

std::string trim(std::string_view s) {
  const size_t begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return {};
  const size_t end = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(begin, end - begin + 1));
}

void append_words(std::string_view text, size_t limit, std::vector<std::string>* out) {
  std::vector<std::string> words = tokenize(text);
  if (limit > 0 && words.size() > limit) words.resize(limit);
  out->insert(out->end(), std::make_move_iterator(words.begin()),
              std::make_move_iterator(words.end()));
}

void append_categories(const std::vector<std::string>& path, std::vector<std::string>* out) {
  std::string prefix = "cat:";
  bool first = true;
  for (const auto& raw : path) {
    const std::string name = trim(raw);
    if (name.empty()) continue;
    prefix += (first ? "" : ">") + name;
    first = false;
    out->push_back(prefix);
    append_words(name, 0, out);
  }
}

}  // namespace

void ItemTextOptions::validate() const {
  if (max_description_tokens < 0)
    throw_input_error("text.max_description_tokens: must be >= 0 (0 = all), got {}",
                      max_description_tokens);
}

std::vector<std::string> tokenize(std::string_view text) {
  std::vector<std::string> tokens;
  std::string current;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_token_byte(c)) {
      current.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : ch);
    } else if (!current.empty()) {
      tokens.push_back(std::move(current));
      current.clear();
    }
  }
  if (!current.empty()) tokens.push_back(std::move(current));
  return tokens;
}

std::vector<std::string> item_tokens(const ItemMeta& item, const ItemTextOptions& options) {
  std::vector<std::string> tokens;
  if (options.title) append_words(item.title, 0, &tokens);
  if (options.short_text) append_words(item.short_text, 0, &tokens);
  if (options.brand) {
    const std::string brand = trim(item.brand);
    if (!brand.empty()) {
      tokens.push_back("brand:" + brand);
      append_words(brand, 0, &tokens);
    }
  }
  if (options.categories) append_categories(item.categories, &tokens);
  if (options.description)
    append_words(item.description, static_cast<size_t>(options.max_description_tokens), &tokens);
  return tokens;
}

}  // namespace twistar
