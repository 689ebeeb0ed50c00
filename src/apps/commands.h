// The `twistar` command line: subcommands registered on a CLI11 app. Each subcommand parses its
// options into the library's option structs and calls the pipeline.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "apps/fit.h"
#include "core/context.h"

namespace twistar {

/// Registers every subcommand and the global options on `app`. `command_line` is recorded in reports.
void register_commands(CLI::App& app, const std::string& command_line);

/// Runs one command line in-process (`args` without the program name, e.g. {"train", "sasrec", "--data",
/// "d"}), as the `twistar` program would, except that errors propagate as exceptions (InputError and
/// CLI::ParseError for bad input) instead of becoming exit codes. The Python package's per-stage calls.
void run_command(const std::vector<std::string>& args);

/// The options of `twistar fit` parsed from its flags (`args` as on the command line, e.g.
/// {"--backbone", "sasrec", "--until", "ranker"}; no --data or --run) into `fit` and `ctx` (--threads,
/// --seed). Throws CLI::ParseError or InputError on bad flags.
void parse_fit_options(const std::vector<std::string>& args, FitOptions& fit, Context& ctx);

}  // namespace twistar
