// The text tokenizer of the reasoning LM: a SentencePiece unigram model trained on item text and
// the collaborative-commonsense corpus, with every semantic-ID code as a token of its own.
//
// Vocabulary: a *SID token* names one (level, code) pair, written "<a_12>" for code 12 at level 0,
// "<b_7>" at level 1 and so on ("a" + level); an item's SID is the concatenation of its level
// tokens. SID tokens and the special tokens (<bos> <eos> <think> </think> <sep> <hist> <target>) are
// SentencePiece user-defined symbols: wherever their text occurs in the input it becomes exactly that
// one id, never split and never merged with neighbouring text. <pad> is SentencePiece's pad (id 0,
// not produced by encode) and <unk> its unknown (id 1, only for bytes the byte fallback cannot
// cover, i.e. never). Normalisation is the identity, so decode(encode(text)) == text.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sid/sid_types.h"

namespace twistar {

class SpBackend;

struct SpTokenizerOptions {
  /// Total vocabulary, special and SID tokens included (a soft limit when the text is small).
  int vocab_size = 8000;
  /// SentencePiece model type: unigram | bpe.
  std::string model_type = "unigram";
  /// Training threads; 1 makes training reproducible.
  int threads = 1;
  /// Seeds SentencePiece's random generator.
  uint32_t seed = 42;

  void validate() const;
  nlohmann::json to_json() const;
};

class SpTokenizer {
 public:
  /// The special tokens, in id order after <pad> (0) and <unk> (1).
  static const std::vector<std::string>& special_tokens();
  /// "<a_12>": the text of the SID token of `code` at `level` (levels 0..25).
  static std::string sid_token(int level, int code);

  /// Trains on `texts` (in their order) with one SID token per code of each level
  /// (`sid_level_sizes[l]` codes at level l) and writes the model to `path` atomically.
  static SpTokenizer train(const std::vector<std::string>& texts,
                           const std::vector<int32_t>& sid_level_sizes,
                           const SpTokenizerOptions& options, const std::filesystem::path& path);
  /// Throws InputError naming the file when it is missing, not a SentencePiece model, or lacks the
  /// special tokens.
  static SpTokenizer load(const std::filesystem::path& path);

  SpTokenizer(SpTokenizer&&) noexcept;
  SpTokenizer& operator=(SpTokenizer&&) noexcept;
  ~SpTokenizer();

  std::vector<int> encode(std::string_view text) const;
  std::string decode(const std::vector<int>& ids) const;
  /// The pieces of `text` (for inspection and tests).
  std::vector<std::string> pieces(std::string_view text) const;
  int vocab_size() const;

  /// Id of the SID token; throws for a level or code outside the trained sizes.
  int sid_token_id(int level, int code) const;
  bool is_sid_token(int id) const;
  /// The SID as token text, "<a_3><b_17><c_250>".
  std::string sid_text(const Sid& sid) const;
  /// Codes per SID level the model was trained with.
  const std::vector<int32_t>& sid_level_sizes() const { return level_sizes_; }

  int pad_id() const { return 0; }
  int unk_id() const { return 1; }
  int bos_id() const { return special_ids_[0]; }
  int eos_id() const { return special_ids_[1]; }
  int think_id() const { return special_ids_[2]; }
  int think_end_id() const { return special_ids_[3]; }
  int sep_id() const { return special_ids_[4]; }
  int hist_id() const { return special_ids_[5]; }
  int target_id() const { return special_ids_[6]; }

 private:
  SpTokenizer();
  void index_tokens(const std::string& where);

  std::unique_ptr<SpBackend> sp_;
  std::vector<int> special_ids_;
  std::vector<int32_t> level_sizes_;
  /// Id of code 0 of each level; SID ids of a level are contiguous.
  std::vector<int> level_offsets_;
  int first_sid_id_ = -1;
  int end_sid_id_ = -1;
};

}  // namespace twistar
