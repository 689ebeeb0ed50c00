// The `twistar` command line: subcommands registered on a CLI11 app. Each subcommand parses its
// options into the library's option structs and calls the pipeline.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace twistar {

/// Registers every subcommand and the global options on `app`. `command_line` is recorded in reports.
void register_commands(CLI::App& app, const std::string& command_line);

}  // namespace twistar
