#include "eval/report.h"

#include <fmt/format.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "core/atomic_file.h"
#include "core/manifest.h"

namespace twistar {

std::string machine_description() {
  std::string model = "unknown cpu";
  std::ifstream cpu("/proc/cpuinfo");
  for (std::string line; std::getline(cpu, line);) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  double gib = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGE_SIZE) / (1 << 30);
  return fmt::format("{}, {} cores, {:.0f} GiB RAM", model, std::thread::hardware_concurrency(), gib);
}

nlohmann::json results_json(ReportInfo info, const std::vector<EvalResult>& results) {
  if (info.machine.empty()) info.machine = machine_description();
  if (info.date.empty()) info.date = utc_now_iso();
  nlohmann::json j = {{"experiment", info.experiment}, {"dataset", info.dataset},
                      {"split", info.split},           {"command", info.command},
                      {"machine", info.machine},       {"date", info.date},
                      {"systems", nlohmann::json::object()}};
  for (const auto& r : results) j["systems"][r.system] = r.to_json();
  return j;
}

namespace {
std::string cell(const nlohmann::json& sys, const char* key, const char* fmtstr) {
  if (!sys.contains(key) || !sys[key].is_number()) return "-";
  return fmt::format(fmt::runtime(fmtstr), sys[key].get<double>());
}
}  // namespace

std::string markdown_table(const nlohmann::json& results) {
  std::string out = fmt::format("{} on {} ({} split)\n\n", results.value("experiment", ""),
                                results.value("dataset", ""), results.value("split", ""));
  // With --compare-to: each system's paired NDCG@10 difference to the reference and its interval.
  std::string reference;
  double level = 0;
  for (const auto& [name, sys] : results.at("systems").items())
    if (sys.contains("paired") && sys["paired"].contains("ndcg@10")) {
      reference = sys["paired"].value("reference", "");
      level = sys["paired"]["ndcg@10"].value("level", 0.0);
    }
  out += "| system | Recall@5 | Recall@10 | NDCG@5 | NDCG@10 | HR@1 | mean ms | p50 ms | p99 ms | users/s | train s |";
  if (!reference.empty()) out += fmt::format(" ΔNDCG@10 vs {} (CI) |", reference);
  out += "\n|---|---|---|---|---|---|---|---|---|---|---|" + std::string(reference.empty() ? "" : "---|") + "\n";
  for (const auto& [name, sys] : results.at("systems").items()) {
    nlohmann::json lat = sys.value("latency_ms", nlohmann::json::object());
    if (lat.value("count", 0) == 0) lat = nlohmann::json::object();  // not timed (--latency-requests 0): "-"
    out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |", name,
                       cell(sys, "recall@5", "{:.4f}"), cell(sys, "recall@10", "{:.4f}"),
                       cell(sys, "ndcg@5", "{:.4f}"), cell(sys, "ndcg@10", "{:.4f}"),
                       cell(sys, "recall@1", "{:.4f}"), cell(lat, "mean", "{:.3f}"),
                       cell(lat, "p50", "{:.3f}"), cell(lat, "p99", "{:.3f}"),
                       cell(sys, "throughput_users_per_s", "{:.0f}"), cell(sys, "train_seconds", "{:.0f}"));
    if (!reference.empty()) {
      if (sys.contains("paired") && sys["paired"].contains("ndcg@10")) {
        const auto& p = sys["paired"]["ndcg@10"];
        const auto& ci = p.at("ci");
        out += fmt::format(" {:+.4f} ({:+.4f}, {:+.4f}) |", p.at("diff").get<double>(), ci[0].get<double>(),
                           ci[1].get<double>());
      } else {
        out += name == reference ? " (reference) |" : " - |";
      }
    }
    out += "\n";
  }
  if (!reference.empty())
    out += fmt::format("\nCI: {:.0f}% bootstrap interval of the paired difference over the requests.\n",
                       100.0 * level);
  // With --latency-pair: the ratio of two systems' mean latencies timed interleaved.
  for (const auto& [name, sys] : results.at("systems").items()) {
    if (!sys.contains("latency_ratio")) continue;
    const auto& r = sys["latency_ratio"];
    out += fmt::format("\n{} / {} mean latency, timed interleaved on the same {} requests in turns of {}: {:.2f} / "
                       "{:.2f} ms = {:.3f}x ({:.0f}% CI {:.3f}-{:.3f} over the turns).\n",
                       name, r.value("reference", ""), r.value("requests", 0), r.value("block", 1), r.value("mean_ms", 0.0),
                       r.value("reference_mean_ms", 0.0), r.value("ratio", 0.0), 100.0 * r.value("level", 0.0),
                       r.at("ci")[0].get<double>(), r.at("ci")[1].get<double>());
  }
  return out;
}

void write_report(const std::filesystem::path& dir, const nlohmann::json& results) {
  write_file_atomic(dir / "results.json", results.dump(2) + "\n");
  write_file_atomic(dir / "results.md", markdown_table(results));
}

}  // namespace twistar
