// Logging goes through spdlog's default logger, on stderr so that stdout stays for results.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace twistar {

/// Level names: trace, debug, info, warn, error, off.
void setup_logging(const std::string& level);

}  // namespace twistar
