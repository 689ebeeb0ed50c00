// Micro-benchmark of fast_rec on a Beauty-sized catalogue (12,101 items, 3 x 256 SIDs) with an
// untrained SID generator of the default shape: one request (batch 1) and batches of 64, on one
// intra-op thread. Run: build/bench/twistar_micro --benchmark_filter=FastRec
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <random>

#include "agent/fast_rec.h"
#include "core/context.h"

namespace {

using namespace twistar;

struct Setup {
  std::shared_ptr<FastRec> tool;
  std::vector<Sequence> histories;

  Setup() {
    set_compute_threads(1);
    std::mt19937 rng(1);
    const int items = 12101;
    CodeMatrix codes(items, 3);
    for (int i = 0; i < items; ++i) {
      codes(i, 0) = rng() % 256;
      codes(i, 1) = rng() % 256;
      codes(i, 2) = i % 256;
    }
    auto map = std::make_shared<SidMap>(SidMap::build(codes, {256, 256, 256}));
    SidGeneratorOptions o;
    o.item_id_input = true;
    SidGenerator model(map->sids(), map->level_sizes(), o);
    tool = std::make_shared<FastRec>(model, map, FastRecOptions{50, 64});
    for (int u = 0; u < 256; ++u) {
      Sequence h(5 + rng() % 10);
      for (auto& x : h) x = static_cast<ItemIndex>(rng() % items);
      histories.push_back(h);
    }
  }
};

Setup& setup() {
  static Setup s;
  return s;
}

void BM_FastRecSingle(benchmark::State& state) {
  auto& s = setup();
  ToolArgs args;
  args.k = static_cast<int>(state.range(0));
  size_t u = 0;
  for (auto _ : state) {
    RequestState r;
    r.history = s.histories[u++ % s.histories.size()];
    benchmark::DoNotOptimize(s.tool->run_one(r, args));
  }
}

void BM_FastRecBatch64(benchmark::State& state) {
  auto& s = setup();
  ToolArgs args;
  args.k = static_cast<int>(state.range(0));
  for (auto _ : state) {
    std::vector<RequestState> batch(64);
    for (size_t i = 0; i < batch.size(); ++i) batch[i].history = s.histories[i];
    benchmark::DoNotOptimize(s.tool->run(batch, args));
  }
  state.SetItemsProcessed(state.iterations() * 64);
}

BENCHMARK(BM_FastRecSingle)->Arg(10)->Arg(50)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FastRecBatch64)->Arg(10)->Arg(50)->Unit(benchmark::kMillisecond);

}  // namespace
