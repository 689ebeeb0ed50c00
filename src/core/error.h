// Errors thrown by library code. They carry the context a user needs to fix the problem (file, line,
// field); only the CLI and the server turn them into exit codes or HTTP statuses.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace twistar {

/// Any failure inside twistar. `what()` is one readable line.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The user's input is wrong (a data file, a config value, a request field). Exit code 2 in the CLI,
/// HTTP 4xx in the server.
class InputError : public Error {
 public:
  using Error::Error;
};

template <typename... Args>
[[noreturn]] void throw_input_error(fmt::format_string<Args...> format, Args&&... args) {
  throw InputError(fmt::format(format, std::forward<Args>(args)...));
}

template <typename... Args>
[[noreturn]] void throw_error(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

/// "file:line: message": the shape of every data-file error.
std::string at_line(const std::string& file, size_t line, const std::string& message);

}  // namespace twistar
