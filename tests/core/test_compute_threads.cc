#include <gtest/gtest.h>

#include <torch/torch.h>

#include <stdexcept>

#include "core/compute_threads.h"

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

}  // namespace
}  // namespace twistar
