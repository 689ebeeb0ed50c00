#include "eval/evaluator.h"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <random>

#include "core/compute_threads.h"
#include "core/error.h"
#include "core/progress.h"
#include "eval/metrics.h"

namespace twistar {

void EvalOptions::validate() const {
  if (list_length < 10) throw_input_error("eval.list_length: must be >= 10, got {}", list_length);
  if (interleave_block == 0) throw_input_error("eval.interleave_block: must be >= 1");
  if (rank_threads == 0) throw_input_error("eval.rank_threads: must be >= 1");
  if (throughput_batch > 0 && throughput_threads == 0)
    throw_input_error("eval.throughput_threads: must be >= 1 when throughput is measured");
}

nlohmann::json EvalResult::to_json() const {
  nlohmann::json j = extra;
  for (const auto& [k, v] : metrics) j[k] = v;
  j["users"] = ranks.size();
  j["latency_ms"] = latency.to_json();
  if (throughput > 0) j["throughput_users_per_s"] = throughput;
  j["eval_seconds"] = eval_seconds;
  return j;
}

namespace {

using Clock = std::chrono::steady_clock;

/// The order the evaluator serves `n` requests in: as given, or a seeded random permutation for a
/// system that adapts to its traffic (Recommender::adapts_to_traffic).
std::vector<size_t> serving_order(size_t n, bool adapts_to_traffic) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  if (adapts_to_traffic) {
    std::mt19937_64 rng(20261127);
    std::shuffle(order.begin(), order.end(), rng);
  }
  return order;
}

/// The requests timed one at a time: `requests` evenly spaced examples (at most all), in the serving
/// order.
std::vector<const Example*> timed_examples(const std::vector<Example>& examples, size_t requests,
                                           bool adapts_to_traffic) {
  requests = std::min(requests, examples.size());
  std::vector<const Example*> out;
  out.reserve(requests);
  for (size_t r : serving_order(requests, adapts_to_traffic)) out.push_back(&examples[r * examples.size() / requests]);
  return out;
}

double time_one(const Recommender& rec, const Example& ex, const RecommendOptions& ropts) {
  auto t0 = Clock::now();
  rec.recommend({ex.history}, ropts);
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

RecommendOptions recommend_options(const EvalOptions& options) {
  RecommendOptions ropts;
  ropts.k = options.list_length;
  ropts.exclude_history = options.exclude_history;
  return ropts;
}

void rank_all(const Recommender& rec, const std::vector<Example>& examples, const RecommendOptions& ropts,
              size_t threads, bool progress, std::vector<int>& ranks, std::vector<Ranking>* lists) {
  const size_t batch = std::max<size_t>(1, rec.preferred_batch_size());
  const size_t batches = (examples.size() + batch - 1) / batch;
  Progress bar("eval " + rec.name(), examples.size(), progress);
  ranks.assign(examples.size(), 0);
  if (lists) lists->assign(examples.size(), {});
  const auto order = serving_order(examples.size(), rec.adapts_to_traffic());
  // Each batch writes its own examples' ranks and lists.
  auto rank_batch = [&](size_t b) {
    const size_t start = b * batch, end = std::min(examples.size(), start + batch);
    std::vector<Sequence> histories;
    for (size_t e = start; e < end; ++e) histories.push_back(examples[order[e]].history);
    auto rankings = rec.recommend(histories, ropts);
    if (rankings.size() != histories.size())
      throw_error("{} returned {} rankings for {} histories", rec.name(), rankings.size(), histories.size());
    for (size_t e = start; e < end; ++e) {
      ranks[order[e]] = rank_of(rankings[e - start], examples[order[e]].target);
      if (lists) (*lists)[order[e]] = std::move(rankings[e - start]);
    }
    bar.tick(end - start);
  };
  if (threads > 1 && rec.adapts_to_traffic()) {
    // Served in order, each batch still computed as the spread passes compute theirs.
    const ComputeThreadsGuard one_thread(1);
    for_each_task(batches, 1, rank_batch);
  } else {
    for_each_task(batches, threads, rank_batch);
  }
}

LatencyStats time_requests(const Recommender& rec, const std::vector<Example>& examples,
                           const RecommendOptions& ropts, size_t requests) {
  if (requests == 0 || examples.empty()) return {};
  const auto timed = timed_examples(examples, requests, rec.adapts_to_traffic());
  const ComputeThreadsGuard one_thread(1);
  std::vector<double> samples;
  samples.reserve(timed.size());
  // One untimed warm-up request so lazy initialisation does not land in the tail.
  rec.recommend({examples.front().history}, ropts);
  for (const Example* ex : timed) samples.push_back(time_one(rec, *ex, ropts));
  return summarize_latency(std::move(samples));
}

/// Users per second over `requests` evenly spaced examples in batches of `batch`, the batches taken
/// in turn by `threads` request threads, each with one intra-op thread (the serving layout).
double measure_throughput(const Recommender& rec, const std::vector<Example>& examples,
                          const RecommendOptions& ropts, size_t requests, size_t batch,
                          size_t threads) {
  if (requests == 0 || batch == 0 || examples.empty()) return 0.0;
  requests = std::min(requests, examples.size());
  std::vector<std::vector<Sequence>> batches;
  for (size_t r = 0; r < requests; ++r) {
    if (r % batch == 0) batches.emplace_back();
    batches.back().push_back(examples[r * examples.size() / requests].history);
  }
  const ComputeThreadsGuard one_thread(1);
  rec.recommend(batches.front(), ropts);  // warm-up
  auto t0 = Clock::now();
  for_each_task(batches.size(), threads, [&](size_t b) { rec.recommend(batches[b], ropts); });
  return static_cast<double>(requests) / std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

EvalResult evaluate(const Recommender& recommender, const std::vector<Example>& examples,
                    const EvalOptions& options) {
  options.validate();
  EvalResult result;
  result.system = recommender.name();
  const RecommendOptions ropts = recommend_options(options);
  auto t0 = Clock::now();
  rank_all(recommender, examples, ropts, options.rank_threads, options.progress, result.ranks,
           options.keep_lists ? &result.lists : nullptr);
  result.eval_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  MetricAccumulator acc;
  for (int r : result.ranks) acc.add_rank(r);
  result.metrics = acc.summary();
  if (options.before_timing) options.before_timing();
  result.latency = time_requests(recommender, examples, ropts, options.latency_requests);
  result.throughput = measure_throughput(recommender, examples, ropts, options.latency_requests,
                                         options.throughput_batch, options.throughput_threads);
  return result;
}

InterleavedTimes time_interleaved(const Recommender& a, const Recommender& b, const std::vector<Example>& examples,
                                  const EvalOptions& options) {
  options.validate();
  InterleavedTimes out;
  if (options.latency_requests == 0 || examples.empty()) return out;
  const RecommendOptions ropts = recommend_options(options);
  const auto timed =
      timed_examples(examples, options.latency_requests, a.adapts_to_traffic() || b.adapts_to_traffic());
  const ComputeThreadsGuard one_thread(1);
  a.recommend({examples.front().history}, ropts);  // warm-up
  b.recommend({examples.front().history}, ropts);
  out.a.assign(timed.size(), 0.0);
  out.b.assign(timed.size(), 0.0);
  const size_t block = options.interleave_block;  // >= 1 (validate)
  for (size_t start = 0, turn = 0; start < timed.size(); start += block, ++turn) {
    const size_t end = std::min(timed.size(), start + block);
    auto serve = [&](const Recommender& rec, std::vector<double>& ms) {
      for (size_t r = start; r < end; ++r) ms[r] = time_one(rec, *timed[r], ropts);
    };
    if (turn % 2 == 0) {
      serve(a, out.a);
      serve(b, out.b);
    } else {
      serve(b, out.b);
      serve(a, out.a);
    }
  }
  return out;
}

}  // namespace twistar
