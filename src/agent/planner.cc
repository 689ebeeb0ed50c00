#include "agent/planner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "agent/fast_rec.h"
#include "agent/planner_batch.h"
#include "agent/planner_grpo.h"
#include "agent/rank_candidates.h"
#include "agent/routers.h"
#include "agent/think_and_rec.h"
#include "core/atomic_file.h"
#include "core/compute_threads.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/manifest.h"
#include "sid/sid_map.h"
#include "nn/torch_io.h"

namespace twistar {
namespace fs = std::filesystem;

namespace {

/// Users of the table split into training and holdout (by a hash of the position and seed).
void split_users(size_t n, double holdout, uint64_t seed, std::vector<size_t>& train, std::vector<size_t>& held) {
  for (size_t i = 0; i < n; ++i) {
    const uint64_t h = fnv1a64(std::to_string(i), seed);
    (static_cast<double>(h % 10000) / 10000.0 < holdout ? held : train).push_back(i);
  }
}

double mean_holdout_reward(PlannerPolicy& policy, const EpisodeTable& table, const std::vector<size_t>& users,
                           const PlannerOptions& o) {
  double total = 0;
  for (double beta : o.betas) total += simulate_policy(policy, table, users, beta, 0.0, o).reward;
  return total / static_cast<double>(o.betas.size());
}

}  // namespace

// ---- options ----

nlohmann::json PlannerOptions::to_json() const {
  nlohmann::json j = policy.to_json();
  j["betas"] = betas;
  j["beta"] = beta;
  j["latency_share"] = latency_share;
  j["holdout"] = holdout;
  j["users"] = users;
  j["cost_requests"] = cost_requests;
  j["wide"] = wide;
  j["max_calls"] = max_calls;
  j["invalid_penalty"] = invalid_penalty;
  j["explore"] = explore;
  nlohmann::json s, g;
  sft.add_to(s);
  grpo.add_to(g);
  j["sft"] = s;
  j["grpo"] = g;
  j["group"] = group;
  if (group_mode != "sample") j["group_mode"] = group_mode;  // absent in planners trained before it
  j["ppo_epochs"] = ppo_epochs;
  j["sample_explore"] = sample_explore;
  j["clip"] = clip;
  j["kl"] = kl;
  j["budget_share"] = budget_share;
  j["budgets_ms"] = budgets_ms;
  j["reasoner"] = reasoner;
  return j;
}

void PlannerOptions::read(const nlohmann::json& j) {
  policy.read(j);
  betas = j.value("betas", betas);
  beta = j.value("beta", beta);
  latency_share = j.value("latency_share", latency_share);
  holdout = j.value("holdout", holdout);
  users = j.value("users", users);
  cost_requests = j.value("cost_requests", cost_requests);
  wide = j.value("wide", wide);
  max_calls = j.value("max_calls", max_calls);
  invalid_penalty = j.value("invalid_penalty", invalid_penalty);
  explore = j.value("explore", explore);
  if (j.contains("sft")) sft.read(j.at("sft"));
  if (j.contains("grpo")) grpo.read(j.at("grpo"));
  group = j.value("group", group);
  group_mode = j.value("group_mode", group_mode);
  ppo_epochs = j.value("ppo_epochs", ppo_epochs);
  sample_explore = j.value("sample_explore", sample_explore);
  clip = j.value("clip", clip);
  kl = j.value("kl", kl);
  budget_share = j.value("budget_share", budget_share);
  budgets_ms = j.value("budgets_ms", budgets_ms);
  reasoner = j.value("reasoner", reasoner);
}

void PlannerOptions::validate() const {
  policy.validate();
  sft.validate();
  grpo.validate();
  if (betas.empty()) throw_input_error("planner: betas must not be empty");
  for (double b : betas)
    if (!(b >= 0)) throw_input_error("planner: betas must be >= 0, got {}", b);
  if (!(latency_share > 0)) throw_input_error("planner: latency_share = {} must be positive", latency_share);
  if (!(holdout > 0 && holdout < 1)) throw_input_error("planner: holdout = {} must be in (0, 1)", holdout);
  if (users < 0) throw_input_error("planner: users = {} must be >= 0", users);
  if (wide < 1) throw_input_error("planner: wide = {} must be positive", wide);
  if (max_calls < 1) throw_input_error("planner: max_calls = {} must be positive", max_calls);
  if (!(invalid_penalty >= 0)) throw_input_error("planner: invalid_penalty must be >= 0");
  if (!(explore >= 0 && explore <= 1)) throw_input_error("planner: explore = {} must be in [0, 1]", explore);
  if (group < 2) throw_input_error("planner: group = {} must be at least 2", group);
  if (group_mode != "sample" && group_mode != "plans")
    throw_input_error("planner: group_mode = '{}' must be 'sample' or 'plans'", group_mode);
  if (ppo_epochs < 1) throw_input_error("planner: ppo_epochs = {} must be positive", ppo_epochs);
  if (!(sample_explore >= 0 && sample_explore < 1))
    throw_input_error("planner: sample_explore = {} must be in [0, 1)", sample_explore);
  if (!(clip > 0 && clip < 1)) throw_input_error("planner: clip = {} must be in (0, 1)", clip);
  if (!(kl >= 0)) throw_input_error("planner: kl = {} must be >= 0", kl);
  if (!(budget_share >= 0 && budget_share <= 1)) throw_input_error("planner: budget_share must be in [0, 1]");
  if (budget_share > 0 && budgets_ms.empty()) throw_input_error("planner: budget_share > 0 needs budgets_ms");
  if (reasoner.empty()) throw_input_error("planner: reasoner must not be empty");
}

// ---- replay ----

std::vector<EpisodeState> replay_policy(PlannerPolicy& policy, const EpisodeTable& table,
                                       const std::vector<size_t>& users, double beta, double budget_ms,
                                       const PlannerOptions& options) {
  torch::NoGradGuard no_grad;
  const bool was_training = policy->is_training();
  policy->eval();
  std::vector<EpisodeState> states(users.size());
  for (int round = 0; round < options.max_calls; ++round) {
    DecisionBatch b;
    std::vector<size_t> open;
    for (size_t i = 0; i < users.size(); ++i)
      if (!states[i].done) {
        open.push_back(i);
        add_decision(b, table.users[users[i]], states[i], beta, budget_ms, table.costs);
      }
    if (open.empty()) break;
    auto actions = masked_log_probs(policy, b).argmax(1).to(torch::kCPU);
    auto acc = actions.accessor<int64_t, 1>();
    for (size_t g = 0; g < open.size(); ++g)
      replay_step(table.users[users[open[g]]], states[open[g]], static_cast<int>(acc[static_cast<int64_t>(g)]),
                  table.costs, options.max_calls);
  }
  if (was_training) policy->train();
  return states;
}

SimSummary simulate_policy(PlannerPolicy& policy, const EpisodeTable& table, const std::vector<size_t>& users,
                           double beta, double budget_ms, const PlannerOptions& options) {
  return summarise_episodes(table, users, replay_policy(policy, table, users, beta, budget_ms, options), beta,
                            options.invalid_penalty);
}

// ---- the learned policy ----

LearnedPolicy::LearnedPolicy(PlannerPolicy model, CostModel costs, std::string name)
    : model_(std::move(model)), costs_(costs), name_(std::move(name)) {
  model_->eval();
}

std::vector<int> LearnedPolicy::decide(const std::vector<const Sequence*>& histories,
                                       const std::vector<EpisodeState>& states, double beta, double budget_ms) const {
  torch::NoGradGuard no_grad;
  DecisionBatch b;
  for (size_t i = 0; i < states.size(); ++i)
    add_decision(b, *histories[i], model_->request_features(*histories[i]), states[i], beta, budget_ms, costs_);
  auto actions = masked_log_probs(model_, b).argmax(1).to(torch::kCPU);
  auto acc = actions.accessor<int64_t, 1>();
  std::vector<int> out(states.size());
  for (size_t i = 0; i < states.size(); ++i) out[i] = static_cast<int>(acc[static_cast<int64_t>(i)]);
  return out;
}

// ---- training ----

namespace {

PlannerPolicy make_policy(const SidMap& sids, const std::vector<int64_t>& popularity, const PlannerOptions& o) {
  return PlannerPolicy(sids.sids(), sids.level_sizes(), popularity, o.policy);
}

struct SftExample {
  size_t user;
  EpisodeState state;
  double beta;
  int action;
};

std::vector<SftExample> sft_examples(const EpisodeTable& table, const std::vector<size_t>& users,
                                     const PlannerOptions& o, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<std::array<double, kNumPlans>> priors;
  for (double beta : o.betas) priors.push_back(plan_prior(table, users, beta));
  std::vector<SftExample> out;
  for (size_t i : users) {
    const auto& u = table.users[i];
    const size_t b = rng() % o.betas.size();
    const double beta = o.betas[b];
    int plan = warmup_plan(u, priors[b]);
    if (unit(rng) < o.explore) plan = static_cast<int>(rng() % kNumPlans);
    EpisodeState s;
    for (int a : plan_actions(plan)) {
      out.push_back({i, s, beta, a});
      replay_step(u, s, a, table.costs, o.max_calls);
    }
  }
  return out;
}

constexpr double kMinFeatureScale = 0.1;

/// Each feature's mean and standard deviation (at least kMinFeatureScale) over the warm-up examples,
/// the observation statistics' over their observed (non-zero) values only (set_feature_scale);
/// features that never vary keep shift 0, scale 1.
void fit_feature_scale(PlannerPolicy& policy, const EpisodeTable& table, const std::vector<SftExample>& examples) {
  std::array<double, kNumFeatures> n{}, sum{}, sq{};
  for (const auto& ex : examples) {
    const auto f = feature_vector(table.users[ex.user].request, ex.state, ex.beta, 0.0, table.costs);
    for (int i = 0; i < kNumFeatures; ++i) {
      if (f[i] == 0 && i >= kFirstObservationFeature && i < kEndObservationFeature) continue;
      n[i] += 1;
      sum[i] += f[i];
      sq[i] += static_cast<double>(f[i]) * f[i];
    }
  }
  std::vector<float> shift(kNumFeatures, 0.0f), scale(kNumFeatures, 1.0f);
  for (int i = 0; i < kNumFeatures; ++i) {
    if (n[i] < 2) continue;
    const double mean = sum[i] / n[i], sd = std::sqrt(std::max(sq[i] / n[i] - mean * mean, 0.0));
    if (sd < 1e-4) continue;
    shift[i] = static_cast<float>(mean);
    // The floor keeps near-constant features (a catalogue's flat popularity) from turning noise into
    // large inputs.
    scale[i] = static_cast<float>(std::max(sd, kMinFeatureScale));
  }
  policy->set_feature_scale(shift, scale);
}

LoopResult train_sft(PlannerPolicy& policy, const EpisodeTable& table, const std::vector<SftExample>& examples,
                     const std::vector<size_t>& held, const PlannerOptions& o, const Context& ctx, const fs::path& dir,
                     const nlohmann::json& identity, const TrainControl& control) {
  auto optimizer = make_adamw(*policy, o.sft);
  LoopCallbacks cb;
  cb.train_epoch = [&](int epoch) {
    policy->train();
    std::vector<size_t> order(examples.size());
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(ctx.seed * 1000003ULL + static_cast<uint64_t>(epoch));
    std::shuffle(order.begin(), order.end(), rng);
    double total = 0;
    int batches = 0;
    for (size_t start = 0; start < order.size(); start += static_cast<size_t>(o.sft.batch_size)) {
      const size_t end = std::min(order.size(), start + static_cast<size_t>(o.sft.batch_size));
      DecisionBatch b;
      std::vector<int64_t> labels;
      for (size_t r = start; r < end; ++r) {
        const auto& ex = examples[order[r]];
        add_decision(b, table.users[ex.user], ex.state, ex.beta, 0.0, table.costs);
        labels.push_back(ex.action);
      }
      auto logp = masked_log_probs(policy, b);
      total += descend(optimizer, torch::nll_loss(logp, torch::tensor(labels, torch::kLong).to(logp.device())));
      ++batches;
    }
    return batches > 0 ? total / batches : 0.0;
  };
  cb.validate = [&] { return mean_holdout_reward(policy, table, held, o); };
  return run_training_loop("planner sft", dir, policy.ptr(), optimizer, identity, o.sft, cb, control);
}


/// The βs the holdout sweep tries: the training grid and, between neighbours, their geometric mean
/// (half the upper one next to 0). The policy reads β as a continuous input, so the served β need not
/// be a grid point; a coarse grid would otherwise leave much of the latency cap unused.
std::vector<double> selection_betas(const std::vector<double>& grid) {
  std::vector<double> g = grid;
  std::sort(g.begin(), g.end());
  g.erase(std::unique(g.begin(), g.end()), g.end());
  std::vector<double> out;
  for (size_t i = 0; i < g.size(); ++i) {
    if (i > 0) out.push_back(g[i - 1] > 0 ? std::sqrt(g[i - 1] * g[i]) : g[i] / 2);
    out.push_back(g[i]);
  }
  return out;
}

/// The most accurate β whose holdout mean cost is within latency_share of think_and_rec's cost.
double select_beta(const nlohmann::json& sweep, const CostModel& costs, double share) {
  double best_beta = -1, best_ndcg = -1;
  double fallback_beta = 0, fallback_cost = 1e300;
  for (const auto& row : sweep) {
    const double cost = row.at("cost_ms"), ndcg = row.at("ndcg@10"), beta = row.at("beta");
    if (cost <= costs.think_share(share) && ndcg > best_ndcg + 1e-12) {
      best_ndcg = ndcg;
      best_beta = beta;
    }
    if (cost < fallback_cost) {
      fallback_cost = cost;
      fallback_beta = beta;
    }
  }
  return best_beta >= 0 ? best_beta : fallback_beta;
}

std::vector<int64_t> training_popularity(const Dataset& data) {
  std::vector<int64_t> pop(data.num_items(), 0);
  for (const auto& s : training_parts(data))
    for (ItemIndex i : s) ++pop[i];
  return pop;
}

}  // namespace

PlannerTrainResult train_planner(const Dataset& data, const Toolbox& tools, const PlannerOptions& options,
                                 const Context& ctx, const fs::path& dir, const std::string& tools_key,
                                 const TrainControl& control) {
  options.validate();
  tools.check();
  ctx.apply();
  fs::create_directories(dir);
  PlannerTrainResult result;
  const fs::path sid_path = dir.parent_path() / "sid" / "sid_map.json";
  if (!fs::exists(sid_path)) throw_input_error("{}: missing; run `twistar sid` first", sid_path.string());
  const SidMap sids = SidMap::load(sid_path);
  const auto popularity = training_popularity(data);
  auto policy = make_policy(sids, popularity, options);

  // 1. Episodes, cached beside the planner under the identity of the tools and data they came from.
  const int k = 10;
  auto examples = spaced_valid_examples(data, options.users, 50);
  if (examples.size() < 10) throw_input_error("{}: only {} validation users; the planner needs at least 10",
                                              data.name, examples.size());
  const fs::path episodes_path = dir / "episodes.json";
  const std::string key = hash_string(fmt::format("{}|{}|{}|{}|{}", data.fingerprint(), options.users, options.wide,
                                                  options.cost_requests, tools_key));
  EpisodeTable table;
  auto t0 = std::chrono::steady_clock::now();
  bool cached = false;
  if (fs::exists(episodes_path)) {
    auto j = nlohmann::json::parse(read_file(episodes_path), nullptr, false);
    if (!j.is_discarded() && j.value("key", "") == key) {
      table = EpisodeTable::from_json(j, episodes_path.string());
      result.episode_seconds = j.value("seconds", 0.0);
      cached = true;
    }
  }
  if (!cached) {
    table = build_episode_table(tools, examples, k, options.cost_requests,
                                [&](const Sequence& h) { return policy->request_features(h); }, control.progress,
                                static_cast<size_t>(ctx.resolved_threads()));
    result.episode_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto j = table.to_json();
    j["key"] = key;
    j["seconds"] = result.episode_seconds;
    write_file_atomic(episodes_path, j.dump());
  }
  auto trained = train_planner_on_table(table, sids, popularity, options, ctx, dir, key, control);
  trained.episode_seconds = result.episode_seconds;
  return trained;
}

PlannerTrainResult train_planner_on_table(const EpisodeTable& table, const SidMap& sids,
                                          const std::vector<int64_t>& popularity, const PlannerOptions& options,
                                          const Context& ctx, const fs::path& dir, const std::string& key,
                                          const TrainControl& control) {
  options.validate();
  ctx.apply();
  // The policy is small, so one intra-op thread trains it about as fast as several, and the trained
  // planner is then the same for every --threads: reductions split over threads round differently,
  // and the holdout's β selection amplified that (a Beauty planner served β 0.1 with two threads and
  // 0.02 with one).
  const ComputeThreadsGuard one_thread(1);
  fs::create_directories(dir);
  PlannerTrainResult result;
  auto policy = make_policy(sids, popularity, options);
  const torch::Device device(ctx.device);
  policy->to(device);
  result.costs = table.costs;
  spdlog::info("planner: {} validation episodes; costs ms: fast_rec {:.2f}, fast_rec({}) {:.2f}, rank_candidates "
               "{:.2f}, think_and_rec {:.2f}",
               table.users.size(), table.costs.ms[kFastK], options.wide, table.costs.ms[kFastWide],
               table.costs.ms[kRank], table.costs.ms[kThink]);
  std::vector<size_t> train, held;
  split_users(table.users.size(), options.holdout, ctx.seed, train, held);
  if (train.empty() || held.empty()) throw_input_error("planner: too few validation users to hold some out");

  // 2. Supervised warm-up.
  nlohmann::json identity = options.to_json();
  identity["seed"] = ctx.seed;
  identity["episodes"] = key;
  const auto examples = sft_examples(table, train, options, ctx.seed);
  fit_feature_scale(policy, table, examples);
  auto sft = train_sft(policy, table, examples, held, options, ctx, dir / "sft", identity, control);
  result.sft_seconds = sft.seconds;
  if (!sft.finished) return result;
  result.sft_holdout_reward = sft.best;
  save_torch_atomic(dir / "sft.pt", policy);

  // 3. GRPO from the warm-up policy, with a KL anchor to it.
  auto reference = make_policy(sids, popularity, options);
  torch::load(reference, (dir / "sft.pt").string());
  reference->to(device);
  identity["sft"] = hash_file(dir / "sft.pt");
  auto grpo = train_grpo(policy, reference, table, train, options, ctx, dir / "grpo", identity, control,
                         [&] { return mean_holdout_reward(policy, table, held, options); });
  result.grpo_seconds = grpo.seconds;
  if (!grpo.finished) return result;
  result.grpo_holdout_reward = grpo.best;
  save_torch_atomic(dir / "model.pt", policy);

  // 4. The β sweep on the holdout users, the served β and the threshold router.
  nlohmann::json sweep = {{"sft", nlohmann::json::array()}, {"grpo", nlohmann::json::array()}};
  for (double beta : selection_betas(options.betas)) {
    auto g = simulate_policy(policy, table, held, beta, 0.0, options).to_json();
    g["beta"] = beta;
    sweep["grpo"].push_back(g);
    auto s = simulate_policy(reference, table, held, beta, 0.0, options).to_json();
    s["beta"] = beta;
    sweep["sft"].push_back(s);
  }
  result.sweep = sweep;
  result.beta = options.beta >= 0 ? options.beta : select_beta(sweep["grpo"], table.costs, options.latency_share);
  // The threshold router is tuned by the same rule as the served β: the most accurate within the
  // latency cap (on the training users; reported on the holdout ones).
  const double cap_ms = table.costs.think_share(options.latency_share);
  result.threshold = tune_threshold(table, train, cap_ms, options.max_calls).rule;
  const auto threshold_held = replay_threshold(table, held, result.threshold, options.max_calls);
  auto at_beta = simulate_policy(policy, table, held, result.beta, 0.0, options);
  // How far any router's choice of whom to think for can go on this data (every validation user).
  std::vector<size_t> everyone(table.users.size());
  std::iota(everyone.begin(), everyone.end(), size_t{0});
  const auto signal = think_signal(table, everyone);
  nlohmann::json shares = nlohmann::json::array();
  for (int p = 0; p < kNumPlans; ++p) shares.push_back(at_beta.plan_shares[p]);
  nlohmann::json planner = {{"beta", result.beta},
                            {"threshold", result.threshold.threshold},
                            {"threshold_after_rank", result.threshold.after_rank},
                            {"costs", table.costs.to_json()},
                            {"wide", options.wide},
                            {"max_calls", options.max_calls},
                            {"reasoner", options.reasoner},
                            {"holdout_plan_shares", shares},
                            {"threshold_holdout", threshold_held.to_json()},
                            {"think_signal", signal.to_json()},
                            {"policy", options.policy.to_json()},
                            {"sweep", sweep}};
  write_file_atomic(dir / "planner.json", planner.dump(2) + "\n");
  result.finished = true;
  const double t = result.threshold.threshold;
  const std::string router =
      (t <= -1e29   ? std::string("never thinks")
       : t >= 1e29  ? std::string("always thinks")
                    : fmt::format("thinks below a top score of {:.3f}", t)) +
      (result.threshold.after_rank ? " (after ranking)" : "");
  spdlog::info("planner: served beta {:.4g} (holdout ndcg@10 {:.4f}, cost {:.2f} ms, slow rate {:.1f}%); the "
               "threshold router {} (holdout ndcg@10 {:.4f}, cost {:.2f} ms, slow rate {:.1f}%)",
               result.beta, at_beta.ndcg10, at_beta.cost_ms, 100.0 * at_beta.slow_rate, router,
               threshold_held.ndcg10, threshold_held.cost_ms, 100.0 * threshold_held.slow_rate);
  const auto [strongest, r] = signal.strongest();
  spdlog::info("planner: thinking after ranking raises NDCG@10 for {:.1f}% of the validation users and lowers it for "
               "{:.1f}% (mean {:+.5f}); the observation that predicts it best, {}, correlates r = {:+.3f} (noise "
               "level ±{:.3f})",
               100.0 * signal.raised, 100.0 * signal.lowered, signal.mean_gain, strongest, r, signal.noise);
  return result;
}

Toolbox load_toolbox(const fs::path& run_dir, const Context& ctx, const std::string& reasoner, int wide,
                     std::shared_ptr<ThinkMemo> memo) {
  Toolbox t;
  auto fast = load_fast_rec(run_dir, ctx);
  auto rank = load_rank_candidates(run_dir, ctx);
  auto think = load_think_and_rec(run_dir, ctx, {}, reasoner, std::move(memo));
  think->set_reranker(fast, rank);
  t.fast = fast;
  t.rank = rank;
  t.think = think;
  t.wide = wide;
  return t;
}

PlannerAssets load_planner(const fs::path& run_dir, const Context& ctx, std::shared_ptr<ThinkMemo> memo) {
  const fs::path dir = run_dir / "planner", json_path = dir / "planner.json";
  for (const fs::path& p : {json_path, dir / "model.pt", dir / "sft.pt"})
    if (!fs::exists(p)) throw_input_error("{}: missing; run `twistar train planner --run {}` first", p.string(),
                                          run_dir.string());
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(json_path));
  } catch (const nlohmann::json::exception& e) {
    throw_input_error("{}: {}", json_path.string(), e.what());
  }
  PlannerAssets a;
  PlannerOptions o;
  try {
    a.costs = CostModel::from_json(j.at("costs"), json_path.string());
    a.beta = j.at("beta").get<double>();
    a.threshold = {j.at("threshold").get<double>(), j.value("threshold_after_rank", false)};
    o.wide = j.at("wide").get<int>();
    o.max_calls = j.at("max_calls").get<int>();
    o.reasoner = j.at("reasoner").get<std::string>();
    o.policy.read(j.at("policy"));
    auto shares = j.at("holdout_plan_shares").get<std::vector<double>>();
    if (shares.size() != kNumPlans) throw_input_error("{}: holdout_plan_shares needs {} values", json_path.string(),
                                                      kNumPlans);
    for (int p = 0; p < kNumPlans; ++p) a.holdout_shares[p] = shares[p];
  } catch (const nlohmann::json::exception& e) {
    throw_input_error("{}: {}", json_path.string(), e.what());
  }
  a.tools = load_toolbox(run_dir, ctx, o.reasoner, o.wide, std::move(memo));
  const SidMap sids = SidMap::load(run_dir / "sid" / "sid_map.json");
  // The popularity buffer comes back with the weights.
  const std::vector<int64_t> no_popularity(static_cast<size_t>(sids.num_items()), 0);
  auto load = [&](const char* file, const char* name) {
    auto policy = make_policy(sids, no_popularity, o);
    try {
      torch::load(policy, (dir / file).string());
    } catch (const c10::Error& e) {
      throw_input_error("{}: cannot load the planner: {}", (dir / file).string(), e.what_without_backtrace());
    }
    policy->sync_host();
    policy->to(torch::Device(ctx.device));
    return std::make_shared<LearnedPolicy>(policy, a.costs, name);
  };
  a.sft = load("sft.pt", "twistar_sft");
  a.grpo = load("model.pt", "twistar");
  return a;
}

}  // namespace twistar
