// Every stage of a run directory writes a manifest.json beside its artifacts: what produced them
// (format version, config, input hashes) and what they measured (metrics, wall time). A stage whose
// manifest matches its current config and inputs is skipped.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace twistar {

struct Manifest {
  static constexpr int kFormatVersion = 1;

  int format_version = kFormatVersion;
  std::string stage;
  /// The options the stage ran with.
  nlohmann::json config = nlohmann::json::object();
  /// Input name -> content hash.
  std::map<std::string, std::string> inputs;
  nlohmann::json metrics = nlohmann::json::object();
  double wall_seconds = 0.0;
  std::string created;
  std::string twistar_version = TWISTAR_VERSION;

  nlohmann::json to_json() const;
  static Manifest from_json(const nlohmann::json& j, const std::string& where);

  /// Writes `dir/manifest.json` atomically (stamps `created`).
  void save(const std::filesystem::path& dir);
  /// Reads `dir/manifest.json`; nullopt when absent. Throws for a newer format version.
  static std::optional<Manifest> load(const std::filesystem::path& dir);
};

/// True when `dir` holds a finished stage produced by the same config and inputs.
bool stage_is_current(const std::filesystem::path& dir, const std::string& stage,
                      const nlohmann::json& config, const std::map<std::string, std::string>& inputs);

/// Current UTC time as ISO-8601.
std::string utc_now_iso();

}  // namespace twistar
