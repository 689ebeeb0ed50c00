#include <gtest/gtest.h>

#include <torch/torch.h>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/compute_threads.h"
#include "core/progress.h"

namespace twistar {
namespace {

TEST(ComputeThreadsGuard, HoldsTheCountAndRestoresItAlsoOnAnException) {
  const ComputeThreadsGuard outer(2);  // restores the suite's count after the test
  ASSERT_EQ(torch::get_num_threads(), 2);
  {
    const ComputeThreadsGuard one(1);
    EXPECT_EQ(torch::get_num_threads(), 1);
  }
  EXPECT_EQ(torch::get_num_threads(), 2);
  try {
    const ComputeThreadsGuard one(1);
    throw std::runtime_error("leave the scope");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(torch::get_num_threads(), 2);
}

TEST(ForEachTask, RunsEveryTaskOnceOnThreadsOfOneIntraOpThreadAndRethrowsTheFirstError) {
  const ComputeThreadsGuard outer(2);
  for (size_t threads : {1, 3, 50}) {
    std::vector<std::atomic<int>> runs(40);
    std::mutex mutex;
    std::set<std::thread::id> ids;
    std::set<int> intra_op;
    for_each_task(runs.size(), threads, [&](size_t t) {
      ++runs[t];
      std::lock_guard<std::mutex> lock(mutex);
      ids.insert(std::this_thread::get_id());
      intra_op.insert(torch::get_num_threads());
    });
    for (size_t t = 0; t < runs.size(); ++t) EXPECT_EQ(runs[t].load(), 1) << threads << " threads, task " << t;
    if (threads == 1) {
      EXPECT_EQ(ids, std::set<std::thread::id>{std::this_thread::get_id()});
      EXPECT_EQ(intra_op, std::set<int>{2}) << "one thread keeps the caller's intra-op threads";
    } else {
      EXPECT_EQ(ids.count(std::this_thread::get_id()), 0u);
      EXPECT_LE(ids.size(), threads);
      EXPECT_EQ(intra_op, std::set<int>{1});
    }
    EXPECT_EQ(torch::get_num_threads(), 2) << "the caller's count is restored";
  }
  for (size_t threads : {1, 2}) {
    std::atomic<int> ran{0};
    EXPECT_THROW(for_each_task(100, threads,
                               [&](size_t t) {
                                 ++ran;
                                 if (t == 3) throw std::runtime_error("task 3");
                               }),
                 std::runtime_error);
    EXPECT_LT(ran.load(), 100) << "the others stop after the error";
    EXPECT_EQ(torch::get_num_threads(), 2);
  }
  for_each_task(0, 2, [](size_t) { FAIL() << "no task to run"; });
}

TEST(ForEachTask, TasksTickOneProgressBarWithoutLosingSteps) {
  Progress bar("tasks", 4000, false);
  for_each_task(4000, 4, [&](size_t) { bar.tick(); });
  EXPECT_EQ(bar.done(), 4000u);
}

}  // namespace
}  // namespace twistar
