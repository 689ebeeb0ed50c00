// TOML configuration files for the CLI. Files are parsed by toml++ (full TOML, errors with line and
// column) and fed to CLI11, so every option can come from a file and the command line overrides it.
// Top-level keys set global options; a table `[train]` sets the options of the `train` subcommand.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace twistar {

class TomlConfig : public CLI::Config {
 public:
  std::string to_config(const CLI::App* app, bool default_also, bool write_description,
                        std::string prefix) const override;
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;
};

}  // namespace twistar
