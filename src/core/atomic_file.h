// Atomic artifact writes: the content goes to a temporary file in the same directory, is flushed to
// disk, then renamed over the destination. A reader (or a resumed run) sees the old file or the new one,
// never half of one.
#pragma once

#include <filesystem>
#include <functional>
#include <ostream>
#include <string>

namespace twistar {

/// Writes `content` to `path` atomically, creating parent directories.
void write_file_atomic(const std::filesystem::path& path, const std::string& content);

/// Calls `writer` with a stream on a temporary file, then renames it to `path`. If `writer` throws the
/// temporary is removed and `path` is untouched.
void write_file_atomic(const std::filesystem::path& path,
                       const std::function<void(std::ostream&)>& writer);

/// Calls `writer` with the path of a temporary file it must create (for libraries that want a file
/// name, such as torch::save), then renames it to `path`.
void write_path_atomic(const std::filesystem::path& path,
                       const std::function<void(const std::filesystem::path&)>& writer);

/// Reads a whole file; throws InputError naming the path when it cannot.
std::string read_file(const std::filesystem::path& path);

}  // namespace twistar
