// Micro-benchmark of the SASRec output loss on a Beauty-sized batch (768 positions x 12,101 items,
// width 64): the fused, cache-blocked full-softmax cross-entropy against libtorch's plain
// matmul + cross_entropy. Forward and backward. Run: build/bench/twistar_micro --benchmark_filter=Loss
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "core/context.h"
#include "nn/loss.h"

namespace {

struct Batch {
  torch::Tensor hidden = torch::randn({768, 64}, torch::requires_grad());
  torch::Tensor weight = torch::randn({12101, 64}, torch::requires_grad());
  torch::Tensor targets = torch::randint(0, 12101, {768}, torch::kLong);
};

void BM_LossFused(benchmark::State& state) {
  twistar::set_compute_threads(static_cast<int>(state.range(0)));
  Batch b;
  for (auto _ : state) twistar::full_softmax_cross_entropy(b.hidden, b.weight, b.targets).backward();
}

void BM_LossPlain(benchmark::State& state) {
  twistar::set_compute_threads(static_cast<int>(state.range(0)));
  Batch b;
  for (auto _ : state)
    torch::nn::functional::cross_entropy(b.hidden.mm(b.weight.t()), b.targets).backward();
}

BENCHMARK(BM_LossFused)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LossPlain)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
