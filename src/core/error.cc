#include "core/error.h"

namespace twistar {

std::string at_line(const std::string& file, size_t line, const std::string& message) {
  return fmt::format("{}:{}: {}", file, line, message);
}

}  // namespace twistar
