// Line-oriented reading of data files (plain or gzip) that remembers where it is, so every parse
// error can name the file and line.
#pragma once

#include <zlib.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace twistar {

class LineReader {
 public:
  /// Opens `path`; a name ending in ".gz" is decompressed on the fly. Throws InputError if missing.
  explicit LineReader(std::string path);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  /// Reads the next line without its newline (and without a trailing '\r'); false at end of file.
  bool next(std::string& line);
  /// 1-based number of the line last returned.
  size_t line_number() const { return line_; }
  const std::string& path() const { return path_; }

  /// Throws InputError "path:line: message".
  [[noreturn]] void fail(const std::string& message) const;

 private:
  bool fill();

  std::string path_;
  gzFile gz_ = nullptr;
  std::vector<char> buf_;
  size_t pos_ = 0, end_ = 0;
  bool eof_ = false;
  size_t line_ = 0;
};

/// Splits on any run of the given delimiter characters (empty fields dropped).
std::vector<std::string_view> split_ws(std::string_view s, std::string_view delims = " \t");
/// Splits on every occurrence of one delimiter (empty fields kept).
std::vector<std::string_view> split_exact(std::string_view s, char delim);
std::string_view trim(std::string_view s);
/// Parses a whole string as a base-10 integer; false if it is not one.
bool parse_int64(std::string_view s, int64_t& out);
bool parse_double(std::string_view s, double& out);

}  // namespace twistar
