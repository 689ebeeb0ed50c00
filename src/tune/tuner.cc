#include "tune/tuner.h"

#include <fmt/format.h>

#include <cmath>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/manifest.h"
#include "tune/reflector.h"

namespace twistar {
namespace fs = std::filesystem;

void TuneOptions::validate() const {
  if (method != "tune" && method != "random" && method != "tpe")
    throw_input_error("method: must be tune, random or tpe, got '{}'", method);
  if (trials < 1) throw_input_error("trials: must be >= 1, got {}", trials);
  if (memory.empty()) throw_input_error("memory: a directory is required");
  if (run.empty()) throw_input_error("run: a directory is required");
  tpe.validate();
  llm.validate();
}

int trials_to_reach(const std::vector<TrialRecord>& trials, double target, double fraction) {
  double best = -1;
  for (size_t i = 0; i < trials.size(); ++i) {
    if (std::isfinite(trials[i].outcome.valid)) best = std::max(best, trials[i].outcome.valid);
    if (best >= fraction * target) return static_cast<int>(i + 1);
  }
  return 0;
}

namespace {

Proposal propose(const TuneOptions& o, const ProposalContext& c, bool first_of_run, std::mt19937_64& rng) {
  if (o.method == "random") return propose_random(c, rng);
  if (o.method == "tpe") return propose_tpe(c, o.tpe, rng);
  if (first_of_run && !c.trials.empty()) {
    // A new run on a dataset the memory knows: retrain the best remembered configuration first,
    // so the run can select it (its model lives in another run directory) and later trials have a
    // parent measured here.
    const TrialRecord* best = &c.trials.front();
    for (const auto& t : c.trials)
      if (std::isfinite(t.outcome.valid) && (!std::isfinite(best->outcome.valid) || t.outcome.valid > best->outcome.valid))
        best = &t;
    return {c.space->snap(best->params),
            {"memory", fmt::format("memory: the best configuration remembered for this dataset (trial #{}, valid NDCG@10 {:.4f})",
                                   best->id, best->outcome.valid),
             0, {}}};
  }
  if (o.llm.enabled() && !c.trials.empty()) {
    std::string why;
    if (auto p = llm_propose(o.llm, c, why)) return *p;
    spdlog::warn("tune: LLM proposal not used ({}); the rules decide", why);
    Proposal p = propose_by_rules(c, rng);
    p.hypothesis.text += " [llm proposal rejected: " + why + "]";
    return p;
  }
  return propose_by_rules(c, rng);
}

nlohmann::json proposal_json(int index, const std::string& model, const Proposal& p) {
  return {{"index", index},
          {"model", model},
          {"params", SearchSpace::to_json(p.params)},
          {"hypothesis",
           {{"source", p.hypothesis.source}, {"text", p.hypothesis.text},
            {"parent", p.hypothesis.parent}, {"axes", p.hypothesis.axes}}}};
}

/// The proposal a killed run was training, when it is for trial `index` of `model`.
std::optional<Proposal> load_pending(const fs::path& path, int index, const SearchSpace& space) {
  if (!fs::exists(path)) return std::nullopt;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    throw_input_error("{}: not valid JSON ({})", path.string(), e.what());
  }
  if (j.value("index", 0) != index || j.value("model", std::string()) != space.model()) return std::nullopt;
  Proposal p;
  p.params = space.from_json(j.value("params", nlohmann::json::object()), path.string() + ": params");
  auto h = j.value("hypothesis", nlohmann::json::object());
  p.hypothesis = {h.value("source", std::string()), h.value("text", std::string()), h.value("parent", 0),
                  h.value("axes", std::vector<std::string>{})};
  return p;
}

nlohmann::json trial_summary(const TrialRecord& t) {
  return {{"id", t.id},
          {"index", t.index},
          {"hypothesis", t.hypothesis.text},
          {"source", t.hypothesis.source},
          {"params", SearchSpace::to_json(t.params)},
          {"valid_ndcg@10", std::isfinite(t.outcome.valid) ? nlohmann::json(t.outcome.valid) : nlohmann::json()},
          {"best_epoch", t.outcome.best_epoch},
          {"epochs", t.outcome.epochs},
          {"seconds", t.outcome.seconds},
          {"parameters", t.outcome.parameters},
          {"diagnosis", t.reflection.diagnosis},
          {"verdict", t.reflection.verdict},
          {"rule", t.reflection.rule}};
}

std::string report_markdown(const nlohmann::json& r) {
  std::string md = fmt::format(
      "# twistar tune: {} on {} ({} method, seed {})\n\n"
      "Budget per trial: {} min, {} epochs, patience {}. Selection on validation NDCG@10; the test "
      "split was read once, for the selected trial.\n\n",
      r["model"].get<std::string>(), r["dataset"].get<std::string>(), r["method"].get<std::string>(),
      r["seed"].get<uint64_t>(), r["budget"]["minutes"].get<double>(), r["budget"]["epochs"].get<int>(),
      r["budget"]["patience"].get<int>());
  md += "| # | id | hypothesis | valid NDCG@10 | best so far | epoch | s | params | diagnosis | verdict |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n";
  for (size_t i = 0; i < r["trials"].size(); ++i) {
    const auto& t = r["trials"][i];
    double v = t["valid_ndcg@10"].is_number() ? t["valid_ndcg@10"].get<double>() : std::nan("");
    md += fmt::format("| {} | {} | {} | {:.4f} | {:.4f} | {}/{} | {:.0f} | {} | {} | {} |\n", t["index"].get<int>(),
                      t["id"].get<int>(), t["hypothesis"].get<std::string>(), v,
                      r["best_so_far"][i].get<double>(), t["best_epoch"].get<int>(), t["epochs"].get<int>(),
                      t["seconds"].get<double>(), t["parameters"].get<int64_t>(),
                      t["diagnosis"].get<std::string>(), t["verdict"].get<std::string>());
  }
  const auto& b = r["best"];
  md += fmt::format("\nSelected: trial #{} ({}), valid NDCG@10 {:.4f}.\n", b["id"].get<int>(),
                    b["config"].get<std::string>(), b["valid_ndcg@10"].get<double>());
  if (r.contains("test") && !r["test"].empty()) {
    md += "\nTest split (once, selected trial): ";
    for (const char* k : {"recall@5", "recall@10", "ndcg@5", "ndcg@10"})
      if (r["test"].contains(k)) md += fmt::format("{} {:.4f}  ", k, r["test"][k].get<double>());
    md += "\n";
  }
  return md;
}

}  // namespace

TuneResult run_tune(const Dataset& data, TrialRunner& runner, const TrialBudget& budget,
                    const TuneOptions& o) {
  o.validate();
  budget.validate();
  const SearchSpace& space = runner.space();
  TuneMemory memory(o.memory, dataset_key(data.name, data.fingerprint()));
  const std::string run_id = fs::weakly_canonical(fs::absolute(o.run)).string();
  const fs::path tune_dir = o.run / "tune";
  const fs::path pending_path = tune_dir / "pending.json";

  std::vector<TrialRecord> all = memory.load_trials();
  TuneResult result;
  int next_id = 1;
  bool budget_warned = false;
  for (const auto& t : all) {
    next_id = std::max(next_id, t.id + 1);
    if (t.run != run_id || t.model != space.model()) continue;
    if (t.method != o.method)
      throw_input_error("{}: run {} was tuned with --method {}; use another --run for --method {}",
                        (memory.dataset_dir() / "trials.jsonl").string(), run_id, t.method, o.method);
    if (t.budget != budget.to_json() && !budget_warned) {
      budget_warned = true;
      spdlog::warn("tune: trial {} of {} ran under another budget ({}); their scores may not compare",
                   t.index, run_id, t.budget.dump());
    }
    result.trials.push_back(t);
  }
  if (!result.trials.empty())
    spdlog::info("tune: {} trial(s) of {} already in {}; continuing", result.trials.size(), run_id,
                 memory.dataset_dir().string());
  const auto heuristics = transferable(memory.load_heuristics(), space.model(), memory.key());

  int run_here = 0;
  while (static_cast<int>(result.trials.size()) < o.trials) {
    const int index = static_cast<int>(result.trials.size()) + 1;
    std::optional<Proposal> prop = load_pending(pending_path, index, space);
    if (prop) {
      spdlog::info("tune: trial {} resumes its pending proposal", index);
    } else {
      ProposalContext c;
      c.space = &space;
      // The rule-based engineer reads the dataset's whole memory; random search and TPE, the
      // baselines, see only their own run.
      if (o.method == "tune") {
        for (const auto& t : all)
          if (t.model == space.model()) c.trials.push_back(t);
      } else {
        c.trials = result.trials;
      }
      c.heuristics = heuristics;
      std::mt19937_64 rng(o.seed * 1000003ULL + static_cast<uint64_t>(index));
      prop = propose(o, c, result.trials.empty(), rng);
      write_file_atomic(pending_path, proposal_json(index, space.model(), *prop).dump(2) + "\n");
    }
    spdlog::info("tune: trial {}/{}: {} [{}]", index, o.trials, prop->hypothesis.text, space.describe(prop->params));
    TrialOutcome out = runner.train(prop->params, tune_dir / fmt::format("trial-{}", index),
                                    run_here == 0 ? o.stop_after_epochs : 0);
    if (!out.finished) return result;

    TrialRecord rec;
    rec.id = next_id++;
    rec.run = run_id;
    rec.index = index;
    rec.method = o.method;
    rec.seed = o.seed;
    rec.model = space.model();
    rec.dataset = memory.key();
    rec.budget = budget.to_json();
    rec.params = prop->params;
    rec.hypothesis = prop->hypothesis;
    rec.outcome = out;
    rec.finished_at = utc_now_iso();
    const TrialRecord* parent = nullptr;
    for (const auto& t : all)
      if (t.id == rec.hypothesis.parent) parent = &t;
    rec.reflection = reflect(rec, parent);
    if (o.llm.enabled() && o.method == "tune") {
      std::string why;
      if (auto rule = llm_reflect(o.llm, rec, why)) {
        rec.reflection.evidence["rules_reflection"] = rec.reflection.rule;
        rec.reflection.rule = *rule;
        rec.reflection.author = "llm";
      } else {
        spdlog::warn("tune: LLM reflection not used ({}); keeping the rule-based one", why);
      }
    }
    memory.append_trial(rec);
    all.push_back(rec);
    result.trials.push_back(rec);
    memory.write_lessons(all);
    memory.write_heuristics();
    fs::remove(pending_path);
    spdlog::info("tune: trial {} valid NDCG@10 {:.4f} ({}): {}", index, out.valid, rec.reflection.diagnosis,
                 rec.reflection.rule);
    ++run_here;
    if (o.stop_after_trials > 0 && run_here >= o.stop_after_trials &&
        static_cast<int>(result.trials.size()) < o.trials)
      return result;
  }

  // Selection on validation only; the test split is read once, for the selected trial.
  const TrialRecord* best = &result.trials.front();
  for (const auto& t : result.trials)
    if (std::isfinite(t.outcome.valid) && (!std::isfinite(best->outcome.valid) || t.outcome.valid > best->outcome.valid))
      best = &t;
  result.best_id = best->id;
  fs::path report_json = o.run / "tune_report.json";
  nlohmann::json previous;
  if (fs::exists(report_json)) {
    try {
      previous = nlohmann::json::parse(read_file(report_json));
    } catch (const nlohmann::json::parse_error&) {
      spdlog::warn("tune: {} is unreadable; rewriting it", report_json.string());
    }
  }
  if (previous.is_object() && previous.value(nlohmann::json::json_pointer("/best/id"), 0) == best->id &&
      previous.contains("test") && !previous["test"].empty()) {
    result.test = previous["test"];
  } else {
    spdlog::info("tune: evaluating trial #{} on the test split", best->id);
    result.test = runner.test(tune_dir / fmt::format("trial-{}", best->index));
  }

  nlohmann::json trials = nlohmann::json::array();
  std::vector<double> best_so_far;
  double running = 0;
  for (const auto& t : result.trials) {
    trials.push_back(trial_summary(t));
    if (std::isfinite(t.outcome.valid)) running = std::max(running, t.outcome.valid);
    best_so_far.push_back(running);
  }
  result.report = {{"experiment", "tune"},
                   {"model", space.model()},
                   {"dataset", memory.key()},
                   {"method", o.method},
                   {"seed", o.seed},
                   {"budget", budget.to_json()},
                   {"run", run_id},
                   {"memory", fs::absolute(o.memory).string()},
                   {"space", space.describe_space()},
                   {"trials", trials},
                   {"best_so_far", best_so_far},
                   {"trials_to_98pct_of_own_best", trials_to_reach(result.trials, running, 0.98)},
                   {"best",
                    {{"id", best->id}, {"index", best->index}, {"params", SearchSpace::to_json(best->params)},
                     {"config", space.describe(best->params)}, {"valid_ndcg@10", best->outcome.valid}}},
                   {"test", result.test},
                   {"date", utc_now_iso()}};
  write_file_atomic(report_json, result.report.dump(2) + "\n");
  write_file_atomic(o.run / "tune_report.md", report_markdown(result.report));
  result.finished = true;
  return result;
}

}  // namespace twistar
