#include "text/sp_backend.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "core/error.h"

#ifndef TWISTAR_SENTENCEPIECE_MODULE
#define TWISTAR_SENTENCEPIECE_MODULE "libtwistar_sentencepiece.so"
#endif

namespace twistar {
namespace {

constexpr const char* kModuleName = "libtwistar_sentencepiece.so";

std::vector<std::string> candidates() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("TWISTAR_SENTENCEPIECE_MODULE"); env && *env) out.push_back(env);
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) out.push_back((exe.parent_path() / kModuleName).string());
  out.push_back(TWISTAR_SENTENCEPIECE_MODULE);
  return out;
}

SpBackendFactory open_module() {
  std::string tried;
  for (const std::string& path : candidates()) {
    if (!std::filesystem::exists(path)) {
      tried += "; " + path + ": not found";
      continue;
    }
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (handle == nullptr) {
      tried += "; " + path + ": " + dlerror();
      continue;
    }
    if (void* f = dlsym(handle, kSpBackendFactorySymbol)) return reinterpret_cast<SpBackendFactory>(f);
    tried += "; " + path + ": no symbol " + kSpBackendFactorySymbol;
  }
  throw_error("tokenizer: cannot load the SentencePiece module {} (set TWISTAR_SENTENCEPIECE_MODULE); "
              "tried {}", kModuleName, tried.substr(2));
}

}  // namespace

std::unique_ptr<SpBackend> make_sp_backend() {
  // Opened once; the handle stays open for the life of the process.
  static std::once_flag once;
  static SpBackendFactory factory = nullptr;
  static std::string error;
  std::call_once(once, [] {
    try {
      factory = open_module();
    } catch (const Error& e) {
      error = e.what();
    }
  });
  if (factory == nullptr) throw Error(error);
  return std::unique_ptr<SpBackend>(factory());
}

}  // namespace twistar
