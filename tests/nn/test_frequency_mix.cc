#include <gtest/gtest.h>

#include <torch/fft.h>

#include "nn/frequency_mix.h"

namespace twistar {
namespace {

TEST(FrequencyMix, LowPassMatrixIsTheOrthonormalRfftIrfftOfTheLowBand) {
  for (int64_t n : {7, 10, 50})
    for (int64_t cutoff : {0, 1, 5, 9, 200}) {
      auto x = torch::randn({3, n, 4}, torch::kFloat64);
      auto f = torch::fft::rfft(x, c10::nullopt, 1, "ortho");
      f.slice(1, std::min(cutoff / 2 + 1, f.size(1))).zero_();
      auto expected = torch::fft::irfft(f, n, 1, "ortho");
      auto got = torch::matmul(low_pass_matrix(n, cutoff).to(torch::kFloat64), x);
      EXPECT_TRUE(torch::allclose(got, expected, 1e-5, 1e-6)) << "n " << n << " cutoff " << cutoff;
    }
}

TEST(FrequencyMix, LastOnlyEqualsTheLastRowOfTheFullOutput) {
  torch::manual_seed(11);
  FrequencyMixOptions o;
  o.dim = 8;
  o.heads = 2;
  o.window = 6;
  FrequencyMixBlock block(o);
  block->eval();
  torch::NoGradGuard no_grad;
  auto valid = torch::tensor({0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1}, torch::kBool).view({3, 6});
  auto valid_f = valid.to(torch::kFloat32).unsqueeze(-1);
  auto x = torch::randn({3, 6, 8}) * valid_f;
  auto mask = additive_causal_mask(valid);
  auto full = block(x, mask, valid_f, false);
  auto last = block(x, mask, valid_f, true);
  ASSERT_EQ(last.sizes(), (std::vector<int64_t>{3, 1, 8}));
  EXPECT_TRUE(torch::allclose(last.squeeze(1), full.select(1, 5), 1e-5, 1e-6));
}

TEST(FrequencyMix, FewerPositionsThanTheWindowEqualTheZeroPaddedWindow) {
  torch::manual_seed(12);
  FrequencyMixOptions o;
  o.dim = 8;
  o.window = 7;
  FrequencyMixStack stack(o);
  stack->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({2, 3, 8});
  auto valid = torch::tensor({0, 1, 1, 1, 1, 1}, torch::kBool).view({2, 3});
  auto padded_valid = torch::cat({torch::zeros({2, 4}, torch::kBool), valid}, 1);
  auto padded_x = torch::cat({torch::randn({2, 4, 8}), x}, 1);  // padding inputs are ignored
  EXPECT_TRUE(torch::allclose(stack(x, valid), stack(padded_x, padded_valid), 1e-5, 1e-6));
}

TEST(FrequencyMix, AttentionIsCausalAndSkipsPadding) {
  auto valid = torch::tensor({0, 1, 1}, torch::kBool).view({1, 3});
  auto m = additive_causal_mask(valid).view({3, 3});
  // Query 2 sees keys 1 and 2, query 1 sees key 1; the padding key 0 is hidden from all.
  EXPECT_EQ(m[2][1].item<float>(), 0.0f);
  EXPECT_EQ(m[2][2].item<float>(), 0.0f);
  EXPECT_LT(m[1][2].item<float>(), -1000.0f);
  EXPECT_LT(m[2][0].item<float>(), -1000.0f);
}

}  // namespace
}  // namespace twistar
