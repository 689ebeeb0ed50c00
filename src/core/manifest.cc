#include "core/manifest.h"

#include <ctime>

#include "core/atomic_file.h"
#include "core/error.h"

namespace twistar {
namespace fs = std::filesystem;

std::string utc_now_iso() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

nlohmann::json Manifest::to_json() const {
  return {{"format_version", format_version}, {"stage", stage},
          {"config", config},                 {"inputs", inputs},
          {"metrics", metrics},               {"wall_seconds", wall_seconds},
          {"created", created},               {"twistar_version", twistar_version}};
}

Manifest Manifest::from_json(const nlohmann::json& j, const std::string& where) {
  Manifest m;
  try {
    m.format_version = j.at("format_version").get<int>();
    if (m.format_version > kFormatVersion)
      throw_input_error("{}: format_version {} is newer than this twistar understands ({}); upgrade",
                        where, m.format_version, kFormatVersion);
    m.stage = j.at("stage").get<std::string>();
    m.config = j.value("config", nlohmann::json::object());
    m.inputs = j.value("inputs", std::map<std::string, std::string>{});
    m.metrics = j.value("metrics", nlohmann::json::object());
    m.wall_seconds = j.value("wall_seconds", 0.0);
    m.created = j.value("created", "");
    m.twistar_version = j.value("twistar_version", "");
  } catch (const nlohmann::json::exception& e) {
    throw_input_error("{}: malformed manifest: {}", where, e.what());
  }
  return m;
}

void Manifest::save(const fs::path& dir) {
  created = utc_now_iso();
  write_file_atomic(dir / "manifest.json", to_json().dump(2) + "\n");
}

std::optional<Manifest> Manifest::load(const fs::path& dir) {
  fs::path path = dir / "manifest.json";
  if (!fs::exists(path)) return std::nullopt;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    throw_input_error("{}: not valid JSON: {}", path.string(), e.what());
  }
  return from_json(j, path.string());
}

bool stage_is_current(const fs::path& dir, const std::string& stage, const nlohmann::json& config,
                      const std::map<std::string, std::string>& inputs) {
  auto m = Manifest::load(dir);
  return m && m->stage == stage && m->config == config && m->inputs == inputs;
}

}  // namespace twistar
