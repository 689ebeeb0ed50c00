#include "tune/memory.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/manifest.h"
#include "tune/reflector.h"

namespace twistar {
namespace fs = std::filesystem;

namespace {

const char* direction_word(int d) { return d > 0 ? "raising" : "lowering"; }

nlohmann::json parse_json_file(const fs::path& path) {
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    throw_input_error("{}: not valid JSON ({})", path.string(), e.what());
  }
}

nlohmann::json lesson_to_json(const AxisLesson& l) {
  return {{"model", l.model}, {"axis", l.axis}, {"direction", l.direction}, {"from", l.from},
          {"helped", l.helped}, {"hurt", l.hurt}, {"neutral", l.neutral},
          {"mean_rel_delta", l.mean_rel_delta}, {"verdict", l.verdict()},
          {"evidence", l.evidence}};
}

AxisLesson lesson_from_json(const nlohmann::json& j, const std::string& where) {
  AxisLesson l;
  try {
    l.model = j.at("model");
    l.axis = j.at("axis");
    l.direction = j.at("direction");
    l.from = j.at("from");
    l.helped = j.at("helped");
    l.hurt = j.at("hurt");
    l.neutral = j.at("neutral");
    l.mean_rel_delta = j.at("mean_rel_delta");
  } catch (const nlohmann::json::exception& e) {
    throw_input_error("{}: bad lesson entry {} ({})", where, j.dump(), e.what());
  }
  return l;
}

}  // namespace

std::string AxisLesson::verdict() const {
  if (mean_rel_delta > kNeutralBand) return "helped";
  if (mean_rel_delta < -kNeutralBand) return "hurt";
  return "neutral";
}

std::string dataset_key(const std::string& name, const std::string& fingerprint) {
  std::string safe;
  for (char c : name) safe += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  if (safe.empty()) safe = "dataset";
  return safe + "-" + fingerprint.substr(0, 8);
}

TuneMemory::TuneMemory(fs::path root, std::string key) : root_(std::move(root)), key_(std::move(key)) {}

fs::path TuneMemory::dataset_dir() const { return root_ / "datasets" / key_; }

std::vector<TrialRecord> TuneMemory::load_trials() const {
  fs::path path = dataset_dir() / "trials.jsonl";
  std::vector<TrialRecord> out;
  if (!fs::exists(path)) return out;
  std::istringstream in(read_file(path));
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string where = fmt::format("{}:{}", path.string(), n);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      throw_input_error("{}: not valid JSON ({})", where, e.what());
    }
    out.push_back(TrialRecord::from_json(j, where));
  }
  return out;
}

void TuneMemory::append_trial(const TrialRecord& record) const {
  fs::path path = dataset_dir() / "trials.jsonl";
  std::string content = fs::exists(path) ? read_file(path) : std::string();
  if (!content.empty() && content.back() != '\n') content += '\n';
  content += record.to_json().dump() + "\n";
  write_file_atomic(path, content);
}

std::vector<AxisLesson> axis_lessons(const std::vector<TrialRecord>& trials) {
  std::map<std::tuple<std::string, std::string, int, double>, AxisLesson> by;
  for (const auto& t : trials) {
    const auto& r = t.reflection;
    if (r.verdict == "baseline" || r.changes.empty() || r.changes.size() > 2) continue;
    for (const auto& c : r.changes) {
      auto& l = by[{t.model, c.axis, c.direction, c.from}];
      l.model = t.model;
      l.axis = c.axis;
      l.direction = c.direction;
      l.from = c.from;
      (r.verdict == "helped" ? l.helped : r.verdict == "hurt" ? l.hurt : l.neutral) += 1;
      l.mean_rel_delta += r.rel_delta;
      l.evidence.push_back({{"trial", t.id}, {"parent", t.hypothesis.parent}, {"from", c.from},
                            {"to", c.to}, {"rel_delta", r.rel_delta},
                            {"paired", r.changes.size() > 1}});
    }
  }
  std::vector<AxisLesson> out;
  for (auto& [k, l] : by) {
    l.mean_rel_delta /= l.observations();
    out.push_back(l);
  }
  return out;
}

void TuneMemory::write_lessons(const std::vector<TrialRecord>& trials) const {
  auto lessons = axis_lessons(trials);
  nlohmann::json axes = nlohmann::json::array();
  for (const auto& l : lessons) axes.push_back(lesson_to_json(l));
  nlohmann::json best = nlohmann::json::object();
  std::map<std::string, std::vector<int>> diagnoses;
  nlohmann::json rules = nlohmann::json::array();
  for (const auto& t : trials) {
    diagnoses[t.reflection.diagnosis].push_back(t.id);
    if (!t.reflection.rule.empty()) rules.push_back(t.reflection.rule);
    if (!std::isfinite(t.outcome.valid)) continue;
    if (!best.contains(t.model) || t.outcome.valid > best[t.model]["valid"].get<double>())
      best[t.model] = {{"trial", t.id}, {"valid", t.outcome.valid}, {"params", SearchSpace::to_json(t.params)}};
  }
  nlohmann::json doc = {{"dataset", key_}, {"updated", utc_now_iso()}, {"trials", trials.size()},
                        {"best", best}, {"axes", axes}, {"diagnoses", diagnoses}, {"rules", rules}};
  write_file_atomic(dataset_dir() / "lessons.json", doc.dump(2) + "\n");

  std::string md = fmt::format("# Lessons on {}\n\n{} trials. ", key_, trials.size());
  for (const auto& [model, b] : best.items())
    md += fmt::format("Best {}: trial #{} (valid NDCG@10 {:.4f}).", model, b["trial"].get<int>(),
                      b["valid"].get<double>());
  md += "\n\n## What each change did\n\n| model | change | helped | hurt | neutral | mean effect | evidence (trials) |\n|---|---|---|---|---|---|---|\n";
  for (const auto& l : lessons) {
    std::string ev;
    for (const auto& e : l.evidence) ev += fmt::format("{}#{}->#{}", ev.empty() ? "" : ", ", e["parent"].get<int>(), e["trial"].get<int>());
    md += fmt::format("| {} | {} {} from {} | {} | {} | {} | {:+.1f}% | {} |\n", l.model,
                      direction_word(l.direction), l.axis, format_value(l.from), l.helped, l.hurt, l.neutral, 100 * l.mean_rel_delta, ev);
  }
  md += "\n## Diagnoses\n\n";
  for (const auto& [d, ids] : diagnoses) md += fmt::format("- {}: trials {}\n", d, fmt::join(ids, ", "));
  md += "\n## Rules, one per trial\n\n";
  for (const auto& r : rules) md += "- " + r.get<std::string>() + "\n";
  write_file_atomic(dataset_dir() / "lessons.md", md);
}

void TuneMemory::write_heuristics() const {
  using Key = std::tuple<std::string, std::string, int, double>;
  std::map<Key, Heuristic> by;
  std::map<Key, int> counts;
  std::vector<std::string> datasets;
  fs::path dir = root_ / "datasets";
  if (fs::exists(dir)) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
      if (fs::exists(e.path() / "lessons.json")) files.push_back(e.path() / "lessons.json");
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      nlohmann::json doc = parse_json_file(f);
      std::string ds = doc.value("dataset", f.parent_path().filename().string());
      datasets.push_back(ds);
      if (!doc.contains("axes") || !doc["axes"].is_array())
        throw_input_error("{}: missing field 'axes' (an array)", f.string());
      for (const auto& a : doc["axes"]) {
        AxisLesson l = lesson_from_json(a, f.string());
        Key key{l.model, l.axis, l.direction, l.from};
        auto& h = by[key];
        h.model = l.model;
        h.axis = l.axis;
        h.direction = l.direction;
        h.from = l.from;
        std::string v = l.verdict();
        if (v == "helped") h.support += 1;
        if (v == "hurt") h.against += 1;
        h.datasets.push_back(ds);
        h.mean_rel_delta += l.mean_rel_delta;
        counts[key] += 1;
      }
    }
  }
  nlohmann::json list = nlohmann::json::array();
  std::string md = fmt::format("# Heuristics across datasets\n\nFrom the lessons of {} dataset(s): {}.\n\n"
                               "| model | change | helped on | hurt on | mean effect | datasets |\n|---|---|---|---|---|---|\n",
                               datasets.size(), fmt::join(datasets, ", "));
  for (auto& [k, h] : by) {
    h.mean_rel_delta /= counts[k];
    h.rule = fmt::format("{}: {} {} from {} helped on {} dataset(s), hurt on {} (mean {:+.1f}% valid NDCG@10)",
                         h.model, direction_word(h.direction), h.axis, format_value(h.from), h.support,
                         h.against, 100 * h.mean_rel_delta);
    list.push_back({{"model", h.model}, {"axis", h.axis}, {"direction", h.direction}, {"from", h.from},
                    {"support", h.support}, {"against", h.against}, {"datasets", h.datasets},
                    {"mean_rel_delta", h.mean_rel_delta}, {"rule", h.rule}});
    md += fmt::format("| {} | {} {} from {} | {} | {} | {:+.1f}% | {} |\n", h.model,
                      direction_word(h.direction), h.axis, format_value(h.from), h.support, h.against, 100 * h.mean_rel_delta, fmt::join(h.datasets, ", "));
  }
  nlohmann::json doc = {{"updated", utc_now_iso()}, {"datasets", datasets}, {"heuristics", list}};
  write_file_atomic(root_ / "heuristics.json", doc.dump(2) + "\n");
  write_file_atomic(root_ / "heuristics.md", md);
}

std::vector<Heuristic> TuneMemory::load_heuristics() const {
  fs::path path = root_ / "heuristics.json";
  std::vector<Heuristic> out;
  if (!fs::exists(path)) return out;
  nlohmann::json doc = parse_json_file(path);
  if (!doc.contains("heuristics") || !doc["heuristics"].is_array())
    throw_input_error("{}: missing field 'heuristics' (an array)", path.string());
  size_t i = 0;
  for (const auto& j : doc["heuristics"]) {
    Heuristic h;
    try {
      h.model = j.at("model");
      h.axis = j.at("axis");
      h.direction = j.at("direction");
      h.from = j.at("from");
      h.support = j.at("support");
      h.against = j.at("against");
      h.datasets = j.at("datasets").get<std::vector<std::string>>();
      h.mean_rel_delta = j.at("mean_rel_delta");
      h.rule = j.value("rule", std::string());
    } catch (const nlohmann::json::exception& e) {
      throw_input_error("{}: heuristics[{}]: {}", path.string(), i, e.what());
    }
    out.push_back(h);
    ++i;
  }
  return out;
}

}  // namespace twistar
