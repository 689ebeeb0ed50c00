#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nn/loss.h"
#include "nn/transformer.h"
#include "nn/torch_io.h"
#include "core/atomic_file.h"
#include "test_util.h"

namespace twistar {
namespace {

TEST(FusedCrossEntropy, MatchesUnfusedLossAndGradients) {
  torch::manual_seed(0);
  auto h = torch::randn({37, 16}, torch::requires_grad());
  auto w = torch::randn({101, 16}, torch::requires_grad());
  auto t = torch::randint(0, 101, {37}, torch::kLong);
  auto ref = torch::nn::functional::cross_entropy(h.mm(w.t()), t) * 3.0;
  ref.backward();
  auto gh = h.grad().clone(), gw = w.grad().clone();
  h.mutable_grad().zero_();
  w.mutable_grad().zero_();
  auto fused = full_softmax_cross_entropy(h, w, t) * 3.0;  // upstream gradient != 1
  fused.backward();
  EXPECT_NEAR(fused.item<double>(), ref.item<double>(), 1e-5);
  EXPECT_TRUE(torch::allclose(h.grad(), gh, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(w.grad(), gw, 1e-5, 1e-6));
}

TEST(Transformer, CausalMaskHidesFutureAndPadding) {
  auto valid = torch::tensor({1, 1, 0}, torch::kBool).unsqueeze(0);
  auto m = causal_padding_mask(valid);
  ASSERT_EQ(m.sizes(), (std::vector<int64_t>{1, 1, 3, 3}));
  EXPECT_FALSE(m[0][0][1][0].item<bool>());
  EXPECT_TRUE(m[0][0][0][1].item<bool>());  // future
  EXPECT_TRUE(m[0][0][2][2].item<bool>());  // padding key
}

TEST(Transformer, KvCacheDecodingEqualsFullPass) {
  torch::manual_seed(1);
  TransformerOptions o;
  o.dim = 16;
  o.heads = 2;
  o.layers = 2;
  o.dropout = 0;
  o.attn_dropout = 0;
  TransformerStack stack(o);
  stack->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({2, 5, 16});
  auto full = stack(x, causal_padding_mask(torch::ones({2, 5}, torch::kBool)));
  KVCache cache;
  std::vector<torch::Tensor> steps;
  for (int t = 0; t < 5; ++t)
    steps.push_back(stack(x.slice(1, t, t + 1), torch::Tensor(), &cache));
  EXPECT_EQ(cache.length(), 5);
  EXPECT_TRUE(torch::allclose(torch::cat(steps, 1), full, 1e-5, 1e-5));
}

}  // namespace
}  // namespace twistar

namespace twistar {
namespace {

// The same weights give the same file, whatever the (temporary) path they were written through, so
// stages that hash a model file see the same input after the same training.
TEST(TorchIo, TheSameWeightsWriteTheSameBytesAndLoadBack) {
  torch::manual_seed(1);
  torch::nn::Linear layer(3, 2);
  testing::TempDir tmp;
  save_torch_atomic(tmp.path() / "a.pt", layer.ptr());
  save_torch_atomic(tmp.path() / "other-name.pt", layer.ptr());
  EXPECT_EQ(read_file(tmp.path() / "a.pt"), read_file(tmp.path() / "other-name.pt"));
  torch::nn::Linear back(3, 2);
  torch::load(back, (tmp.path() / "a.pt").string());
  EXPECT_TRUE(torch::equal(back->weight, layer->weight));
  torch::serialize::OutputArchive archive;
  archive.write("x", torch::arange(4));
  save_archive_atomic(tmp.path() / "x.pt", archive);
  save_archive_atomic(tmp.path() / "y.pt", archive);
  EXPECT_EQ(read_file(tmp.path() / "x.pt"), read_file(tmp.path() / "y.pt"));
}

}  // namespace
}  // namespace twistar
