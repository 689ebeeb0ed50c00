// Item text as tokens: the bag of words that content embeddings are built from.
//
// Tokens are lowercase ASCII alphanumeric runs; any other ASCII byte separates tokens, and bytes of
// multi-byte UTF-8 characters count as letters so that non-English words stay whole. Besides plain
// words, structured fields add tokens of their own, which plain words cannot express:
//   "brand:<Brand>"            the whole brand name (case kept) as one token;
//   "cat:<A>", "cat:<A>><B>"   every prefix of the category path, so items in the same leaf
//                              category share all of them and items in sibling leaves share the
//                              rest.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "data/dataset.h"

namespace twistar {

struct ItemTextOptions {
  /// Which ItemMeta fields contribute tokens.
  bool title = true;
  bool short_text = true;
  bool brand = true;
  bool categories = true;
  bool description = true;
  /// Keep at most this many description tokens (long descriptions would otherwise drown the title
  /// after TF-IDF normalisation); 0 keeps all.
  int max_description_tokens = 0;

  void validate() const;
};

/// Lowercased alphanumeric runs of `text`, in order (see the header comment for the rules).
std::vector<std::string> tokenize(std::string_view text);

/// All tokens of one item, in field order; empty when the item has no usable text.
std::vector<std::string> item_tokens(const ItemMeta& item, const ItemTextOptions& options = {});

}  // namespace twistar
