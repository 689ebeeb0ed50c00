#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include "core/error.h"

namespace twistar {

void setup_logging(const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off")
    throw_input_error("log-level: unknown level '{}' (trace, debug, info, warn, error, off)", level);
  auto logger = spdlog::get("twistar");
  if (!logger) logger = spdlog::stderr_color_mt("twistar");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("[%H:%M:%S] %^%l%$ %v");
  spdlog::set_level(lvl);
}

}  // namespace twistar
