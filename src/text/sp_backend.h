// The narrow interface through which twistar uses SentencePiece.
//
// Why a separate, isolated library: Debian's libsentencepiece carries its own copy of protobuf-lite
// and exports its symbols, while libtorch loads the system libprotobuf. Linked into one program the
// two interpose each other and the process crashes before main(). So SentencePiece is only linked
// into a small module (libtwistar_sentencepiece.so, src/text/sp_backend_module.cc) that is opened
// with RTLD_LOCAL | RTLD_DEEPBIND: its symbols stay out of the global scope and it binds to its own
// protobuf first. Only virtual calls cross the boundary (same process and libstdc++, so std types are
// fine).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace twistar {

class SpBackend {
 public:
  virtual ~SpBackend() = default;
  /// Every call returns an empty string on success, else SentencePiece's error message.
  virtual std::string train(const std::unordered_map<std::string, std::string>& kwargs,
                            const std::vector<std::string>& texts, uint32_t seed,
                            std::string* serialized_model) = 0;
  virtual std::string load(const std::string& serialized_model) = 0;
  virtual std::string encode(std::string_view text, std::vector<int>* ids) const = 0;
  virtual std::string encode_pieces(std::string_view text, std::vector<std::string>* pieces) const = 0;
  virtual std::string decode(const std::vector<int>& ids, std::string* text) const = 0;
  virtual int piece_size() const = 0;
  virtual int piece_to_id(const std::string& piece) const = 0;
  virtual std::string id_to_piece(int id) const = 0;
  virtual int unk_id() const = 0;
};

/// The module's entry point (extern "C" so dlsym finds it unmangled).
using SpBackendFactory = SpBackend* (*)();
constexpr const char* kSpBackendFactorySymbol = "twistar_make_sp_backend";

/// A fresh backend from the module, which is opened once. The module is looked up in
/// $TWISTAR_SENTENCEPIECE_MODULE, next to the running program, then at its build location; throws
/// Error listing the places tried when none loads.
std::unique_ptr<SpBackend> make_sp_backend();

}  // namespace twistar
