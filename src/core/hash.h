// Stable content hashes for manifests (FNV-1a 64): a stage is skipped when its inputs hash the same.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace twistar {

uint64_t fnv1a64(std::string_view bytes, uint64_t seed = 0xcbf29ce484222325ULL);

/// Hex digest of a file's bytes (streamed, so large files are fine).
std::string hash_file(const std::filesystem::path& path);

/// Hex digest of a string.
std::string hash_string(std::string_view bytes);

}  // namespace twistar
