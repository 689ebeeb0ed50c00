#include "text/sp_tokenizer.h"

#include <fmt/format.h>

#include <map>
#include <unordered_map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "text/sp_backend.h"

namespace twistar {
namespace {

constexpr int kMaxLevels = 26;
constexpr int kByteFallbackPieces = 256;

/// (level, code) of a piece spelled like a SID token, or {-1, -1}.
std::pair<int, int> parse_sid_piece(const std::string& piece) {
  if (piece.size() < 5 || piece[0] != '<' || piece[2] != '_' || piece.back() != '>' ||
      piece[1] < 'a' || piece[1] > 'z')
    return {-1, -1};
  int code = 0;
  for (size_t k = 3; k + 1 < piece.size(); ++k) {
    if (piece[k] < '0' || piece[k] > '9' || k > 12) return {-1, -1};
    code = code * 10 + (piece[k] - '0');
  }
  if (piece.size() > 5 && piece[3] == '0') return {-1, -1};  // no leading zeros
  return {piece[1] - 'a', code};
}

}  // namespace

void SpTokenizerOptions::validate() const {
  if (vocab_size < 300) throw_input_error("tokenizer.vocab_size: must be >= 300, got {}", vocab_size);
  if (model_type != "unigram" && model_type != "bpe")
    throw_input_error("tokenizer.model_type: expected unigram or bpe, got '{}'", model_type);
  if (threads < 1) throw_input_error("tokenizer.threads: must be >= 1, got {}", threads);
}

nlohmann::json SpTokenizerOptions::to_json() const {
  return {{"vocab_size", vocab_size}, {"model_type", model_type}, {"threads", threads},
          {"seed", seed}};
}

const std::vector<std::string>& SpTokenizer::special_tokens() {
  static const std::vector<std::string> tokens = {"<bos>", "<eos>",  "<think>", "</think>",
                                                  "<sep>", "<hist>", "<target>"};
  return tokens;
}

std::string SpTokenizer::sid_token(int level, int code) {
  if (level < 0 || level >= kMaxLevels || code < 0)
    throw_error("sid_token: level {} / code {} out of range", level, code);
  return fmt::format("<{}_{}>", static_cast<char>('a' + level), code);
}

SpTokenizer::SpTokenizer() : sp_(make_sp_backend()) {}
SpTokenizer::SpTokenizer(SpTokenizer&&) noexcept = default;
SpTokenizer& SpTokenizer::operator=(SpTokenizer&&) noexcept = default;
SpTokenizer::~SpTokenizer() = default;

SpTokenizer SpTokenizer::train(const std::vector<std::string>& texts,
                               const std::vector<int32_t>& sid_level_sizes,
                               const SpTokenizerOptions& options,
                               const std::filesystem::path& path) {
  options.validate();
  if (sid_level_sizes.size() > kMaxLevels)
    throw_input_error("tokenizer: {} SID levels; at most {} are supported", sid_level_sizes.size(),
                      kMaxLevels);
  std::string symbols;
  size_t num_symbols = 0;
  auto add_symbol = [&](const std::string& s) {
    symbols += (symbols.empty() ? "" : ",") + s;
    ++num_symbols;
  };
  for (const auto& s : special_tokens()) add_symbol(s);
  for (size_t l = 0; l < sid_level_sizes.size(); ++l) {
    if (sid_level_sizes[l] < 1)
      throw_input_error("tokenizer: SID level {} has {} codes", l, sid_level_sizes[l]);
    for (int c = 0; c < sid_level_sizes[l]; ++c) add_symbol(sid_token(static_cast<int>(l), c));
  }
  const size_t reserved = 2 + num_symbols + kByteFallbackPieces;
  if (static_cast<size_t>(options.vocab_size) <= reserved + 50)
    throw_input_error(
        "tokenizer.vocab_size: {} leaves no room for text pieces beside {} special, SID and byte "
        "tokens; use at least {}",
        options.vocab_size, reserved, reserved + 1000);
  if (texts.empty()) throw_input_error("tokenizer: no training text");
  const std::unordered_map<std::string, std::string> kwargs = {
      {"model_type", options.model_type},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"hard_vocab_limit", "false"},
      {"num_threads", std::to_string(options.threads)},
      {"pad_id", "0"},
      {"pad_piece", "<pad>"},
      {"unk_id", "1"},
      {"unk_piece", "<unk>"},
      {"bos_id", "-1"},
      {"eos_id", "-1"},
      {"user_defined_symbols", symbols},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"byte_fallback", "true"},
      {"split_digits", "true"},
      {"character_coverage", "0.9995"},
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      {"max_sentence_length", "16384"},
      {"minloglevel", "2"},
  };
  SpTokenizer tok;
  std::string model;
  if (auto error = tok.sp_->train(kwargs, texts, options.seed, &model); !error.empty())
    throw_error("tokenizer: SentencePiece training failed: {}", error);
  write_file_atomic(path, model);
  if (auto error = tok.sp_->load(model); !error.empty())
    throw_error("tokenizer: cannot load the trained model: {}", error);
  tok.index_tokens(path.string());
  return tok;
}

SpTokenizer SpTokenizer::load(const std::filesystem::path& path) {
  SpTokenizer tok;
  if (auto error = tok.sp_->load(read_file(path)); !error.empty())
    throw_input_error("{}: not a SentencePiece model: {}", path.string(), error);
  tok.index_tokens(path.string());
  return tok;
}

void SpTokenizer::index_tokens(const std::string& where) {
  special_ids_.clear();
  if (sp_->piece_to_id("<pad>") != 0 || sp_->piece_to_id("<unk>") != 1 || sp_->unk_id() != 1)
    throw_input_error("{}: expected <pad> = 0 and <unk> = 1", where);
  for (const auto& s : special_tokens()) {
    const int id = sp_->piece_to_id(s);
    if (id == sp_->unk_id()) throw_input_error("{}: the model has no '{}' token", where, s);
    special_ids_.push_back(id);
  }
  // SID tokens: (level, code) -> id, then checked to be complete and contiguous level-major.
  std::map<std::pair<int, int>, int> sid_ids;
  for (int id = 0; id < sp_->piece_size(); ++id) {
    const auto lc = parse_sid_piece(sp_->id_to_piece(id));
    if (lc.first >= 0) sid_ids[lc] = id;
  }
  level_sizes_.clear();
  level_offsets_.clear();
  first_sid_id_ = end_sid_id_ = -1;
  int expected = sid_ids.empty() ? -1 : sid_ids.begin()->second;
  first_sid_id_ = expected;
  for (const auto& [lc, id] : sid_ids) {
    const auto [level, code] = lc;
    if (level == static_cast<int>(level_sizes_.size())) {
      level_sizes_.push_back(0);
      level_offsets_.push_back(id);
    }
    if (level != static_cast<int>(level_sizes_.size()) - 1 || code != level_sizes_.back() ||
        id != expected)
      throw_input_error("{}: SID token '{}' (id {}) breaks the level-major order", where,
                        sp_->id_to_piece(id), id);
    ++level_sizes_.back();
    ++expected;
  }
  end_sid_id_ = expected;
}

std::vector<int> SpTokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  if (auto error = sp_->encode(text, &ids); !error.empty())
    throw_error("tokenizer: encode failed: {}", error);
  return ids;
}

std::string SpTokenizer::decode(const std::vector<int>& ids) const {
  for (int id : ids)
    if (id < 0 || id >= vocab_size())
      throw_input_error("tokenizer: id {} outside the vocabulary [0, {})", id, vocab_size());
  std::string text;
  if (auto error = sp_->decode(ids, &text); !error.empty())
    throw_error("tokenizer: decode failed: {}", error);
  return text;
}

std::vector<std::string> SpTokenizer::pieces(std::string_view text) const {
  std::vector<std::string> out;
  if (auto error = sp_->encode_pieces(text, &out); !error.empty())
    throw_error("tokenizer: encode failed: {}", error);
  return out;
}

int SpTokenizer::vocab_size() const { return sp_->piece_size(); }

int SpTokenizer::sid_token_id(int level, int code) const {
  if (level < 0 || level >= static_cast<int>(level_sizes_.size()) || code < 0 ||
      code >= level_sizes_[level])
    throw_input_error("tokenizer: no SID token for level {} code {} (level sizes {})", level, code,
                      fmt::join(level_sizes_, ", "));
  return level_offsets_[level] + code;
}

bool SpTokenizer::is_sid_token(int id) const { return id >= first_sid_id_ && id < end_sid_id_; }

std::string SpTokenizer::sid_text(const Sid& sid) const {
  std::string out;
  for (size_t l = 0; l < sid.size(); ++l) {
    sid_token_id(static_cast<int>(l), sid[l]);  // range check
    out += sid_token(static_cast<int>(l), sid[l]);
  }
  return out;
}

}  // namespace twistar
