// The SentencePiece side of text/sp_backend.h, built as its own module (see that header for why).
// Only this file includes SentencePiece.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include "text/sp_backend.h"

namespace twistar {
namespace {

class VectorIterator : public sentencepiece::SentenceIterator {
 public:
  explicit VectorIterator(const std::vector<std::string>& texts) : texts_(texts) {}
  bool done() const override { return pos_ >= texts_.size(); }
  void Next() override { ++pos_; }
  const std::string& value() const override { return texts_[pos_]; }
  sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }

 private:
  const std::vector<std::string>& texts_;
  size_t pos_ = 0;
};

std::string message(const sentencepiece::util::Status& s) { return s.ok() ? "" : s.ToString(); }

class Backend : public SpBackend {
 public:
  std::string train(const std::unordered_map<std::string, std::string>& kwargs,
                    const std::vector<std::string>& texts, uint32_t seed,
                    std::string* serialized_model) override {
    sentencepiece::SetRandomGeneratorSeed(seed);
    VectorIterator it(texts);
    return message(sentencepiece::SentencePieceTrainer::Train(kwargs, &it, serialized_model));
  }
  std::string load(const std::string& serialized_model) override {
    return message(sp_.LoadFromSerializedProto(serialized_model));
  }
  std::string encode(std::string_view text, std::vector<int>* ids) const override {
    return message(sp_.Encode(text, ids));
  }
  std::string encode_pieces(std::string_view text, std::vector<std::string>* pieces) const override {
    return message(sp_.Encode(text, pieces));
  }
  std::string decode(const std::vector<int>& ids, std::string* text) const override {
    return message(sp_.Decode(ids, text));
  }
  int piece_size() const override { return sp_.GetPieceSize(); }
  int piece_to_id(const std::string& piece) const override { return sp_.PieceToId(piece); }
  std::string id_to_piece(int id) const override { return sp_.IdToPiece(id); }
  int unk_id() const override { return sp_.unk_id(); }

 private:
  sentencepiece::SentencePieceProcessor sp_;
};

}  // namespace
}  // namespace twistar

extern "C" __attribute__((visibility("default"))) twistar::SpBackend* twistar_make_sp_backend() {
  return new twistar::Backend();
}
