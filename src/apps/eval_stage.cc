// The eval stage behind `twistar eval`: builds each system from a run directory (make_system),
// evaluates them on one split over the same users, and adds what the report needs beyond the
// metrics: training extras, the planner's plan mix and β, its β sweep, the interleaved latency
// ratio, complementarity and the oracle router, paired comparisons, and the users' lists.
#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include <fmt/ranges.h>

#include "agent/rank_candidates.h"
#include "agent/routers.h"
#include "apps/pipeline.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/manifest.h"
#include "eval/baselines.h"
#include "eval/latency.h"
#include "eval/metrics.h"
#include "eval/report.h"
#include "graph/popularity.h"
#include "models/sasrec_trainer.h"
#include "serve/item_table.h"
#include "sid/sid_map.h"

namespace twistar {
namespace fs = std::filesystem;

namespace {

/// EvalStageOptions::lists: each user's list from every system that kept them.
void write_eval_lists(const std::filesystem::path& path, const Dataset& data, const std::vector<Example>& examples,
                      const std::vector<EvalResult>& results) {
  auto id = [&](ItemIndex item) -> const std::string& { return data.item_ids.at(static_cast<size_t>(item)); };
  write_file_atomic(path, [&](std::ostream& out) {
    for (size_t e = 0; e < examples.size(); ++e) {
      const Example& ex = examples[e];
      nlohmann::json history = nlohmann::json::array();
      for (ItemIndex item : ex.history) history.push_back(id(item));
      nlohmann::json lists = nlohmann::json::object();
      for (const auto& r : results) {
        if (r.lists.size() != examples.size()) continue;
        nlohmann::json items = nlohmann::json::array();
        for (const auto& s : r.lists[e]) items.push_back({id(s.item), s.score});
        lists[r.system] = std::move(items);
      }
      out << nlohmann::json{{"user", data.user_ids.at(static_cast<size_t>(ex.user))},
                            {"target", id(ex.target)},
                            {"history", std::move(history)},
                            {"lists", std::move(lists)}}
                 .dump()
          << '\n';
    }
  });
  spdlog::info("eval: lists of {} users written to {}", examples.size(), path.string());
}

/// With fast_only and slow both evaluated: how much the slow path recovers where fast_rec(10)
/// misses, and the oracle choice between the two (per user, whichever ranks the target higher),
/// recorded in slow's extra.
void add_complementarity(std::vector<EvalResult>& results) {
  const EvalResult* fast = nullptr;
  EvalResult* slow = nullptr;
  for (auto& r : results) {
    if (r.system == "fast_only") fast = &r;
    if (r.system == "slow") slow = &r;
  }
  if (!fast || !slow || fast->ranks.size() != slow->ranks.size() || fast->ranks.empty()) return;
  auto hit = [](int rank) { return rank >= 1 && rank <= 10; };
  double fast_hits = 0, slow_hits = 0, oracle_hits = 0, fast_misses = 0, recovered = 0, oracle_ndcg = 0;
  for (size_t i = 0; i < fast->ranks.size(); ++i) {
    const int f = fast->ranks[i], s = slow->ranks[i];
    fast_hits += hit(f);
    slow_hits += hit(s);
    oracle_hits += hit(f) || hit(s);
    if (!hit(f)) {
      ++fast_misses;
      recovered += hit(s);
    }
    oracle_ndcg += std::max(ndcg_at(f, 10), ndcg_at(s, 10));
  }
  const double n = static_cast<double>(fast->ranks.size());
  nlohmann::json c = {{"fast_recall@10", fast_hits / n},
                      {"slow_recall@10", slow_hits / n},
                      {"oracle_recall@10", oracle_hits / n},
                      {"oracle_ndcg@10", oracle_ndcg / n},
                      {"oracle_over_fast_recall@10", fast_hits > 0 ? oracle_hits / fast_hits : 0.0},
                      {"recovered_share_of_fast_misses", fast_misses > 0 ? recovered / fast_misses : 0.0}};
  slow->extra["complementarity"] = c;
  spdlog::info("complementarity: fast recall@10 {:.4f}, slow {:.4f}, oracle {:.4f} ({:.2f}x fast); slow "
               "recovers {:.1f}% of fast_rec's misses",
               fast_hits / n, slow_hits / n, oracle_hits / n, c["oracle_over_fast_recall@10"].get<double>(),
               100.0 * c["recovered_share_of_fast_misses"].get<double>());
}

/// The plan mix, slow-call rate, per-tool latency and training time of an agent system.
void add_agent_extra(const AgentRecommender& agent, EvalResult& r, const fs::path& run_dir) {
  // Over every episode run: each user once, then the evenly spaced requests timed one at a time.
  r.extra["plan_shares"] = agent.plan_shares();
  r.extra["slow_rate"] = agent.slow_rate();
  const auto mix = agent.mix_shares();
  for (int p = 0; p < kNumPlans; ++p) r.extra["mix_shares"][plan_name(p)] = mix[p];
  if (const auto* random = dynamic_cast<const RandomRouter*>(&agent.policy()))
    for (int p = 0; p < kNumPlans; ++p) r.extra["router_mix"][plan_name(p)] = random->shares()[p];
  for (auto& [tool, samples] : agent.single_request_costs())
    r.extra["tool_latency_ms"][tool] = summarize_latency(std::move(samples)).to_json();
  if (auto m = Manifest::load(run_dir / "planner")) {
    r.extra["train_seconds"] = m->wall_seconds;
    r.extra["beta"] = m->metrics.value("beta", 0.0);
  }
  const auto& control = agent.beta_control();
  if (control.target_ms() > 0) {
    r.extra["latency_target_ms"] = control.target_ms();
    r.extra["latency_target_step"] = control.step();
    r.extra["beta_mean"] = control.mean_beta();
    r.extra["beta_last"] = control.beta();
  }
}

/// What a system's row says about its training: the stage's wall time and settings (a system built
/// at evaluation, e.g. a router, its build time).
void add_training_extra(const std::string& name, const EvalStageOptions& options, const fs::path& run_dir,
                        double build_seconds, EvalResult& r) {
  if (name == "sasrec" || name == "bsarec" || name == "fast_only" || name == "fast_rank") {
    auto m = Manifest::load(run_dir / (name == "fast_only" ? "sidgen" : name == "fast_rank" ? "ranker" : name));
    r.extra["train_seconds"] = m ? m->wall_seconds : 0.0;
    r.extra["best_epoch"] = m ? m->metrics.value("best_epoch", 0) : 0;
    if (name == "fast_only") r.extra["beam"] = options.fast.beam;
    if (name == "fast_rank" && m) {
      r.extra["ranker"] = m->config.value("kind", "");
      r.extra["candidates"] = m->config.value("candidates", 0);
      r.extra["ranker_valid_ndcg@10"] = m->metrics.value("valid_ndcg@10", 0.0);
    }
  } else if (name == "slow" || name == "fast_rank_slow") {
    auto m = Manifest::load(run_dir / options.reasoner);
    r.extra["train_seconds"] = m ? m->wall_seconds : 0.0;
    r.extra["reasoner"] = options.reasoner;
    r.extra["samples"] = options.slow.samples;
    r.extra["beam"] = options.slow.beam;
    r.extra["grammar"] = options.slow.grammar;
    if (options.slow.ground.enabled()) r.extra["grounding"] = options.slow.ground.to_json();
    if (options.slow.propose > 0) r.extra["propose"] = options.slow.propose;
    if (m) r.extra["reasoner_valid_ndcg@10"] = m->metrics.value("valid_ndcg@10", 0.0);
  } else {
    r.extra["train_seconds"] = build_seconds;
  }
}

/// twistar at each fixed β of `betas` over the same users (its `beta_sweep`: NDCG@10, latency, slow
/// rate); afterwards it serves on from the β and target it had.
void add_beta_sweep(AgentRecommender& agent, const std::vector<double>& betas, const EvalOptions& eval,
                    const std::function<EvalResult(const Recommender&, const EvalOptions&)>& evaluate_on,
                    EvalResult& r) {
  if (betas.empty()) return;
  nlohmann::json sweep = nlohmann::json::array();
  const double served_beta = agent.beta_control().beta(), target_ms = agent.beta_control().target_ms();
  EvalOptions quiet = eval;
  quiet.throughput_batch = 0;
  quiet.keep_lists = false;  // --lists holds the served β's lists only
  for (double beta : betas) {
    agent.reset_counts();
    agent.set_beta(beta);
    EvalResult b = evaluate_on(agent, quiet);
    sweep.push_back({{"beta", beta}, {"ndcg@10", b.metrics["ndcg@10"]}, {"recall@10", b.metrics["recall@10"]},
                     {"latency_ms", b.latency.to_json()}, {"slow_rate", agent.slow_rate()}});
    spdlog::info("twistar at beta {}: ndcg@10 {:.4f}, mean {:.2f} ms, slow rate {:.1f}%", beta, b.metrics["ndcg@10"],
                 b.latency.mean, 100.0 * agent.slow_rate());
  }
  r.extra["beta_sweep"] = sweep;
  agent.set_beta(served_beta, target_ms);
}

/// Times the latency pair's systems interleaved (time_interleaved) and adds the first one's
/// `latency_ratio` to its result: the ratio of its mean latency to the reference's, with a bootstrap
/// interval over the turns; for a planner system, also its slow-call rate over those requests (and its warm-up one).
void add_latency_ratio(const std::map<std::string, std::unique_ptr<Recommender>>& systems,
                       const std::vector<std::string>& pair, const std::vector<Example>& examples,
                       const EvalOptions& eval, const BootstrapOptions& bootstrap, std::vector<EvalResult>& results) {
  Recommender& system = *systems.at(pair[0]);
  const Recommender& reference = *systems.at(pair[1]);
  auto* agent = dynamic_cast<AgentRecommender*>(&system);
  if (agent) agent->reset_counts();
  const auto times = time_interleaved(system, reference, examples, eval);
  const LatencyRatio ratio = latency_ratio(times.a, times.b, pair[1], bootstrap, eval.interleave_block);
  nlohmann::json j = ratio.to_json();
  if (agent) j["slow_rate"] = agent->slow_rate();
  spdlog::info("{} against {}, timed interleaved on {} requests: {:.2f} / {:.2f} ms = {:.3f}x ({:.3f}, {:.3f})",
               pair[0], pair[1], ratio.requests, ratio.mean_ms, ratio.reference_mean_ms, ratio.ratio, ratio.lo,
               ratio.hi);
  for (auto& r : results)
    if (r.system == pair[0]) r.extra["latency_ratio"] = j;
}

/// The systems make_system builds (oracle aside: it is computed from the others' ranks).
const std::vector<std::string>& serving_systems() {
  static const std::vector<std::string> names = {"mostpop",       "swing",          "sasrec",         "bsarec",
                                                 "fast_only",     "fast_rank",      "slow",
                                                 "fast_rank_slow", "router_random", "router_threshold",
                                                 "twistar_sft",   "twistar"};
  return names;
}

}  // namespace

std::optional<EvalResult> oracle_router(const std::vector<EvalResult>& results) {
  std::array<const EvalResult*, kNumPlans> plans{};
  for (const auto& r : results)
    for (int p = 0; p < kNumPlans; ++p)
      if (r.system == plan_name(p)) plans[p] = &r;
  for (int p : {kPlanFastOnly, kPlanFastRank, kPlanSlow})
    if (!plans[p] || plans[p]->ranks.empty()) return std::nullopt;
  std::vector<int> present;
  for (int p = 0; p < kNumPlans; ++p) {
    if (!plans[p]) continue;
    if (plans[p]->ranks.size() != plans[0]->ranks.size()) return std::nullopt;
    present.push_back(p);
  }
  const bool timed = std::all_of(present.begin(), present.end(), [&](int p) { return plans[p]->latency.count > 0; });
  MetricAccumulator acc;
  std::vector<double> latency;
  std::array<double, kNumPlans> shares{};
  double slow = 0;
  for (size_t i = 0; i < plans[0]->ranks.size(); ++i) {
    int best = 0;
    for (int p : present) {
      const double a = ndcg_at(plans[p]->ranks[i], 10), b = ndcg_at(plans[best]->ranks[i], 10);
      if (a > b + 1e-12 || (timed && std::abs(a - b) <= 1e-12 && plans[p]->latency.mean < plans[best]->latency.mean))
        best = p;
    }
    acc.add_rank(plans[best]->ranks[i]);
    latency.push_back(plans[best]->latency.mean);
    shares[best] += 1;
    slow += best == kPlanSlow || best == kPlanRankSlow;
  }
  EvalResult r;
  r.system = "oracle";
  r.metrics = acc.summary();
  r.ranks = acc.ranks();
  const double users = static_cast<double>(latency.size());
  if (timed) {
    r.latency = summarize_latency(std::move(latency));
    r.extra["latency_note"] = "per user, the chosen plan's mean latency";
  }
  for (int p : present) r.extra["plan_shares"][plan_name(p)] = shares[p] / users;
  r.extra["slow_rate"] = slow / users;
  return r;
}

std::unique_ptr<Recommender> make_system(const std::string& name, const Dataset& data,
                                         const fs::path& run_dir, const Context& ctx,
                                         const EvalStageOptions& options, std::shared_ptr<ThinkMemo> memo) {
  auto train = training_parts(data);
  if (name == "mostpop")
    return std::make_unique<MostPopRecommender>(item_popularity(train, data.num_items()));
  if (name == "swing") {
    SwingOptions so = options.swing;
    if (so.threads == 0) so.threads = ctx.resolved_threads();
    return std::make_unique<SwingRecommender>(build_swing(train, data.num_items(), so),
                                              item_popularity(train, data.num_items()));
  }
  if (name == "sasrec" || name == "bsarec")
    return std::make_unique<SasrecRecommender>(load_sasrec(run_dir / name, ctx), name);
  if (name == "fast_only")
    return std::make_unique<ToolRecommender>(load_fast_rec(run_dir, ctx, options.fast), "fast_only");
  // fast_rank and fast_rank_slow: fast_rec(m) then rank_candidates(m, k), m the ranker's default.
  auto fast_rank_steps = [&](std::shared_ptr<const FastRec> fast, std::shared_ptr<const RankCandidates> rank) {
    const int m = static_cast<int>(rank->default_m());
    return std::vector<PlanStep>{{std::move(fast), {m, 0}}, {std::move(rank), {10, m}}};
  };
  auto fast = [&] { return load_fast_rec(run_dir, ctx, options.fast); };
  auto rank = [&] { return load_rank_candidates(run_dir, ctx); };
  if (name == "fast_rank") return std::make_unique<ToolRecommender>(fast_rank_steps(fast(), rank()), "fast_rank");
  auto think = [&] { return load_think_and_rec(run_dir, ctx, options.slow, options.reasoner, memo); };
  if (name == "slow") return std::make_unique<ToolRecommender>(think(), "slow");
  if (name == "fast_rank_slow") {
    auto retrieve = fast();
    auto ranker = rank();
    auto plan = fast_rank_steps(retrieve, ranker);
    auto slow = think();
    slow->set_reranker(retrieve, ranker);
    plan.push_back({slow, {10, 0}});
    return std::make_unique<ToolRecommender>(std::move(plan), "fast_rank_slow");
  }
  if (name == "twistar" || name == "twistar_sft" || name == "router_threshold" || name == "router_random") {
    auto planner = load_planner(run_dir, ctx, memo);
    AgentOptions agent;
    agent.beta = options.planner_beta >= 0 ? options.planner_beta : planner.beta;
    agent.budget_ms = options.budget_ms;
    std::shared_ptr<const Policy> policy;
    if (name == "twistar") {
      policy = planner.grpo;
      if (options.planner_beta < 0) agent.target_ms = planner.costs.think_share(options.latency_target);
      agent.target_step = options.latency_target_step;
    }
    if (name == "twistar_sft") policy = planner.sft;
    if (name == "router_threshold") policy = std::make_shared<ThresholdRouter>(planner.threshold);
    if (name == "router_random")
      policy = std::make_shared<RandomRouter>(options.router_shares.value_or(planner.holdout_shares), ctx.seed);
    return std::make_unique<AgentRecommender>(planner.tools, policy, agent, planner.costs, name);
  }
  throw_input_error("systems: unknown system '{}' ({}, oracle)", name, fmt::join(serving_systems(), ", "));
}

nlohmann::json run_eval_stage(const Dataset& data, const EvalStageOptions& options,
                              const Context& ctx, const fs::path& run_dir) {
  options.eval.validate();
  validate_latency_target(options.latency_target, options.latency_target_step);
  if (!options.compare_to.empty()) {
    options.bootstrap.validate();
    if (std::find(options.systems.begin(), options.systems.end(), options.compare_to) == options.systems.end())
      throw_input_error("--compare-to: '{}' is not among --systems", options.compare_to);
  }
  if (!options.latency_pair.empty()) {
    const auto& pair = options.latency_pair;
    if (pair.size() != 2 || pair[0] == pair[1])
      throw_input_error("--latency-pair: two different systems (system,reference), got {} name(s)", pair.size());
    // The system's row carries the ratio; a reference that is not among --systems is loaded for the
    // timing alone (no ranking pass).
    if (std::find(options.systems.begin(), options.systems.end(), pair[0]) == options.systems.end())
      throw_input_error("--latency-pair: '{}' is not among --systems", pair[0]);
    const auto& serving = serving_systems();
    for (const auto& name : pair)
      if (std::find(serving.begin(), serving.end(), name) == serving.end())
        throw_input_error("--latency-pair: '{}' is not a system that serves requests ({})", name,
                          fmt::join(serving, ", "));
    if (options.eval.latency_requests < 2 * options.eval.interleave_block)
      throw_input_error("--latency-pair: needs at least two turns of timed requests (--latency-requests {} < 2 x "
                        "--interleave-block {})", options.eval.latency_requests, options.eval.interleave_block);
    options.bootstrap.validate();
  }
  ctx.apply();
  auto examples = make_examples(data, options.split, {options.max_history});
  if (examples.empty()) throw_input_error("{}: no user is long enough for the {} split", data.name,
                                          split_name(options.split));
  if (options.users > 0 && options.users < examples.size()) {
    std::vector<Example> some;
    for (size_t i = 0; i < options.users; ++i) some.push_back(examples[i * examples.size() / options.users]);
    spdlog::info("eval: {} of the split's {} users (evenly spaced)", some.size(), examples.size());
    examples = std::move(some);
  }
  std::vector<EvalResult> results;
  EvalStageOptions opts = options;
  BootstrapOptions bootstrap = options.bootstrap;
  bootstrap.seed = ctx.seed;
  // The latency pair's systems stay loaded until both were evaluated.
  std::map<std::string, std::unique_ptr<Recommender>> pair_systems;
  // One memo of think_and_rec's searches for every system's ranking pass (each times real searches).
  auto memo = std::make_shared<ThinkMemo>();
  EvalOptions eval = options.eval;
  eval.keep_lists = !options.lists.empty();
  // --threads cores: the ranking passes spread their batches over that many request threads.
  eval.rank_threads = static_cast<size_t>(ctx.resolved_threads());
  eval.before_timing = [memo] { memo->set_active(false); };
  auto evaluate_shared = [&](const Recommender& system, const EvalOptions& o) {
    memo->set_active(true);
    return evaluate(system, examples, o);
  };
  for (const auto& name : options.systems) {
    if (name == "oracle") continue;  // after the others
    auto t0 = std::chrono::steady_clock::now();
    auto system = make_system(name, data, run_dir, ctx, opts, memo);
    double build_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EvalResult r = evaluate_shared(*system, eval);
    add_training_extra(name, options, run_dir, build_seconds, r);
    if (const auto* plan = dynamic_cast<const ToolRecommender*>(system.get())) {
      for (auto& [tool, samples] : plan->single_request_costs())
        r.extra["tool_latency_ms"][tool] = summarize_latency(std::move(samples)).to_json();
    }
    if (auto* agent = dynamic_cast<AgentRecommender*>(system.get())) {
      add_agent_extra(*agent, r, run_dir);
      if (name == "twistar") {
        opts.router_shares = agent->mix_shares();
        add_beta_sweep(*agent, options.planner_betas, eval, evaluate_shared, r);
      }
    }
    spdlog::info("{}: recall@10 {:.4f} ndcg@10 {:.4f} ({} users, {:.1f} s)", name,
                 r.metrics["recall@10"], r.metrics["ndcg@10"], r.ranks.size(), r.eval_seconds);
    results.push_back(std::move(r));
    if (std::find(options.latency_pair.begin(), options.latency_pair.end(), name) != options.latency_pair.end())
      pair_systems[name] = std::move(system);
  }
  memo->set_active(false);  // the pair times real searches
  if (!options.latency_pair.empty()) {
    for (const auto& name : options.latency_pair)
      if (!pair_systems.count(name)) pair_systems[name] = make_system(name, data, run_dir, ctx, opts, memo);
    add_latency_ratio(pair_systems, options.latency_pair, examples, eval, bootstrap, results);
  }
  pair_systems.clear();
  if (!options.lists.empty()) write_eval_lists(options.lists, data, examples, results);
  add_complementarity(results);
  if (std::find(options.systems.begin(), options.systems.end(), "oracle") != options.systems.end()) {
    auto oracle = oracle_router(results);
    if (!oracle) throw_input_error("systems: oracle needs fast_only, fast_rank and slow in the same evaluation");
    results.push_back(std::move(*oracle));
  }
  if (!options.compare_to.empty()) add_paired_comparisons(results, options.compare_to, bootstrap);
  ReportInfo info{options.experiment, data.name, split_name(options.split), options.command, "", ""};
  auto doc = results_json(info, results);
  write_report(run_dir / (options.split == Split::kTest ? "eval" : "eval-valid"), doc);
  return doc;
}

}  // namespace twistar
