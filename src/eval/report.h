// Evaluation reports: results.json in the bench/results schema and a Markdown table.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "eval/evaluator.h"

namespace twistar {

struct ReportInfo {
  std::string experiment;
  std::string dataset;
  std::string split;
  /// The command line that produced the numbers, so anyone can rerun it.
  std::string command;
  /// Filled by `machine_description()` when empty.
  std::string machine;
  /// Filled with the current UTC time when empty.
  std::string date;
};

/// "<cpu model>, N cores, M GiB RAM" from /proc.
std::string machine_description();

/// {"experiment","dataset","split","command","machine","date","systems":{name: result}}.
nlohmann::json results_json(ReportInfo info, const std::vector<EvalResult>& results);

/// A Markdown table of the systems in a results_json document.
std::string markdown_table(const nlohmann::json& results);

/// Writes results.json and results.md into `dir` atomically.
void write_report(const std::filesystem::path& dir, const nlohmann::json& results);

}  // namespace twistar
