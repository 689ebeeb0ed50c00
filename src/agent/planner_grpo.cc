#include "agent/planner_grpo.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "agent/planner_batch.h"

namespace twistar {

namespace {

/// A batch's summed loss over its optimiser steps.
struct BatchLoss {
  double total = 0;
  int steps = 0;
};

/// Divides group-centred advantages by their root mean square over the whole batch. Scaling by each
/// group's own spread (plain GRPO) would blow a group whose trajectories differ only by a fraction of a
/// millisecond up to the same weight as one where a plan found the target; on recommendation data,
/// where most users' plans all miss, that drowns the signal.
void scale_by_batch_spread(std::vector<double>& advantage) {
  double sq = 0;
  for (double a : advantage) sq += a * a;
  const double scale = std::sqrt(sq / std::max<double>(1.0, static_cast<double>(advantage.size())));
  for (double& a : advantage) a = scale > 1e-12 ? a / scale : 0.0;
}

/// Exact KL(π || π_ref) per decision over the affordable actions (masked ones have ~zero mass in both).
torch::Tensor kl_to_reference(const torch::Tensor& logp, const torch::Tensor& ref_logp) {
  return (logp.exp() * (logp - ref_logp.to(logp.device()))).sum(1);
}

/// GRPO on one batch of users whose group is every canonical plan, weighted by its probability under
/// the policy: the episode table holds each plan's outcome, so the expected reward and its gradient
/// are exact where sampled trajectories would only rarely try a plan a confident warm-up policy
/// avoids. Advantages as in the sampled group; no ratio clip, since nothing is sampled.
BatchLoss plans_batch(PlannerPolicy& policy, PlannerPolicy& reference, torch::optim::Optimizer& optimizer,
                   const EpisodeTable& table, const std::vector<size_t>& users, const PlannerOptions& o,
                   std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  DecisionBatch b;
  std::vector<int64_t> actions, rows;
  std::vector<double> advantage;
  for (size_t user : users) {
    const double beta = o.betas[rng() % o.betas.size()];
    const double budget = unit(rng) < o.budget_share ? o.budgets_ms[rng() % o.budgets_ms.size()] : 0.0;
    const auto& u = table.users[user];
    std::array<double, kNumPlans> reward{};
    for (int p = 0; p < kNumPlans; ++p) {
      EpisodeState st;
      for (int a : plan_actions(p)) {
        add_decision(b, u, st, beta, budget, table.costs);  // an unaffordable step: probability 0
        actions.push_back(a);
        rows.push_back(static_cast<int64_t>(advantage.size()) + p);
        replay_step(u, st, a, table.costs, o.max_calls);
      }
      reward[p] = episode_reward(u, st, beta, o.invalid_penalty, table.costs);
    }
    const double mean = std::accumulate(reward.begin(), reward.end(), 0.0) / kNumPlans;
    for (double r : reward) advantage.push_back(r - mean);
  }
  scale_by_batch_spread(advantage);
  auto adv = torch::tensor(advantage).to(torch::kFloat);
  auto act = torch::tensor(actions, torch::kLong).unsqueeze(1);
  auto row = torch::tensor(rows, torch::kLong);
  torch::Tensor ref_logp;
  {
    torch::NoGradGuard no_grad;
    ref_logp = masked_log_probs(reference, b);
  }
  BatchLoss out;
  for (int e = 0; e < o.ppo_epochs; ++e) {
    auto logp = masked_log_probs(policy, b);
    auto step_logp = logp.gather(1, act.to(logp.device())).squeeze(1).to(torch::kCPU);
    auto plan_logp = torch::zeros({static_cast<int64_t>(advantage.size())}).index_add(0, row, step_logp);
    auto expected = (plan_logp.exp() * adv).sum() / static_cast<double>(users.size());
    out.total += descend(optimizer, -expected + o.kl * kl_to_reference(logp, ref_logp).mean());
    ++out.steps;
  }
  return out;
}

/// One sampled decision of a GRPO batch.
struct Sample {
  size_t user;
  EpisodeState state;
  double beta, budget;
  int action;
  double old_logp;
  size_t trajectory;
};

/// GRPO on one batch of users with sampled groups: `group` trajectories per user under one β (and
/// sometimes a budget) drawn per user, from the behaviour policy; advantages centred on the group's
/// mean reward, scaled by the batch's spread; clipped ratios; exact KL to the warm-up policy.
BatchLoss sampled_batch(PlannerPolicy& policy, PlannerPolicy& reference, torch::optim::Optimizer& optimizer,
                        const EpisodeTable& table, const std::vector<size_t>& users, const PlannerOptions& o,
                        std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  // Sample G trajectories per user.
  struct Traj {
    size_t user;
    double beta, budget;
    EpisodeState state;
    double reward = 0;
  };
  std::vector<Traj> trajs;
  for (size_t user : users) {
    const double beta = o.betas[rng() % o.betas.size()];
    const double budget = unit(rng) < o.budget_share ? o.budgets_ms[rng() % o.budgets_ms.size()] : 0.0;
    for (int g = 0; g < o.group; ++g) trajs.push_back({user, beta, budget, {}, 0.0});
  }
  std::vector<Sample> samples;
  {
    torch::NoGradGuard no_grad;
    for (int round = 0; round < o.max_calls; ++round) {
      DecisionBatch b;
      std::vector<size_t> open;
      for (size_t t = 0; t < trajs.size(); ++t)
        if (!trajs[t].state.done) {
          open.push_back(t);
          add_decision(b, table.users[trajs[t].user], trajs[t].state, trajs[t].beta, trajs[t].budget, table.costs);
        }
      if (open.empty()) break;
      auto logp = masked_log_probs(policy, b).to(torch::kCPU);
      auto la = logp.accessor<float, 2>();
      for (size_t g = 0; g < open.size(); ++g) {
        // The behaviour policy mixes in `sample_explore` of uniform choice over the affordable
        // calls, so that a confident warm-up policy still tries the others; the importance ratio
        // is taken against this behaviour probability. Sampled with our own generator so that
        // the run is reproducible from the seed.
        const auto& allowed = b.allowed[g];
        const double n_allowed = std::accumulate(allowed.begin(), allowed.end(), 0.0);
        std::array<double, kNumActions> behaviour{};
        for (int c = 0; c < kNumActions; ++c)
          behaviour[c] = (1.0 - o.sample_explore) * std::exp(la[static_cast<int64_t>(g)][c]) +
                         (allowed[c] > 0 ? o.sample_explore / n_allowed : 0.0);
        double x = unit(rng), acc = 0;
        int a = kNumActions - 1;
        for (int c = 0; c < kNumActions; ++c) {
          acc += behaviour[c];
          if (x < acc) {
            a = c;
            break;
          }
        }
        Traj& tr = trajs[open[g]];
        samples.push_back({tr.user, tr.state, tr.beta, tr.budget, a, std::log(behaviour[a]), open[g]});
        replay_step(table.users[tr.user], tr.state, a, table.costs, o.max_calls);
      }
    }
  }
  // Advantages: centred on the group's mean reward, scaled by the whole batch's reward spread.
  for (auto& tr : trajs) tr.reward = episode_reward(table.users[tr.user], tr.state, tr.beta, o.invalid_penalty, table.costs);
  std::vector<double> advantage(trajs.size(), 0.0);
  for (size_t g0 = 0; g0 < trajs.size(); g0 += static_cast<size_t>(o.group)) {
    double mean = 0;
    for (int g = 0; g < o.group; ++g) mean += trajs[g0 + g].reward;
    mean /= o.group;
    for (int g = 0; g < o.group; ++g) advantage[g0 + g] = trajs[g0 + g].reward - mean;
  }
  scale_by_batch_spread(advantage);
  DecisionBatch b;
  std::vector<int64_t> actions;
  std::vector<float> old_logp, adv;
  for (const auto& s : samples) {
    add_decision(b, table.users[s.user], s.state, s.beta, s.budget, table.costs);
    actions.push_back(s.action);
    old_logp.push_back(static_cast<float>(s.old_logp));
    adv.push_back(static_cast<float>(advantage[s.trajectory]));
  }
  if (samples.empty()) return {};
  torch::Tensor ref_logp;
  {
    torch::NoGradGuard no_grad;
    ref_logp = masked_log_probs(reference, b);
  }
  auto act = torch::tensor(actions, torch::kLong).unsqueeze(1);
  auto old = torch::tensor(old_logp);
  auto advt = torch::tensor(adv);
  BatchLoss out;
  for (int e = 0; e < o.ppo_epochs; ++e) {
    auto logp = masked_log_probs(policy, b);
    auto lp = logp.gather(1, act.to(logp.device())).squeeze(1);
    auto ratio = torch::exp(lp - old.to(lp.device()));
    auto a = advt.to(lp.device());
    auto surrogate = torch::min(ratio * a, torch::clamp(ratio, 1.0 - o.clip, 1.0 + o.clip) * a);
    out.total += descend(optimizer, -surrogate.mean() + o.kl * kl_to_reference(logp, ref_logp).mean());
    ++out.steps;
  }
  return out;
}

}  // namespace

LoopResult train_grpo(PlannerPolicy& policy, PlannerPolicy& reference, const EpisodeTable& table,
                      const std::vector<size_t>& train, const PlannerOptions& o, const Context& ctx,
                      const std::filesystem::path& dir, const nlohmann::json& identity, const TrainControl& control,
                      const std::function<double()>& validate) {
  reference->eval();
  for (auto& p : reference->parameters()) p.set_requires_grad(false);
  auto optimizer = make_adamw(*policy, o.grpo);
  LoopCallbacks cb;
  cb.train_epoch = [&](int epoch) {
    // No dropout: the sampling policy and the one whose ratio is taken must be the same function.
    policy->eval();
    std::mt19937_64 rng(ctx.seed * 7919ULL + static_cast<uint64_t>(epoch));
    std::vector<size_t> order = train;
    std::shuffle(order.begin(), order.end(), rng);
    double total = 0;
    int steps = 0;
    const size_t per = static_cast<size_t>(o.grpo.batch_size);
    for (size_t start = 0; start < order.size(); start += per) {
      const size_t end = std::min(order.size(), start + per);
      const std::vector<size_t> users(order.begin() + static_cast<std::ptrdiff_t>(start),
                                      order.begin() + static_cast<std::ptrdiff_t>(end));
      const BatchLoss l = o.group_mode == "plans" ? plans_batch(policy, reference, optimizer, table, users, o, rng)
                                                  : sampled_batch(policy, reference, optimizer, table, users, o, rng);
      total += l.total;
      steps += l.steps;
    }
    return steps > 0 ? total / steps : 0.0;
  };
  cb.validate = validate;
  return run_training_loop("planner grpo", dir, policy.ptr(), optimizer, identity, o.grpo, cb, control);
}

}  // namespace twistar
