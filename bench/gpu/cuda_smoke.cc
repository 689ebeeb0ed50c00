// CUDA smoke test of the core models: SID generator, SASRec and trie-constrained beam search on
// `cuda` (falls back to comparing CPU with CPU when this libtorch has no CUDA device, so the
// harness itself can be checked on a CPU machine).
//
// Sections (each reports and goes on after a failure; the exit status counts the failures):
//   env          libtorch version, CUDA device, a probe of how torch treats a CPU index on a CUDA tensor
//   sidgen       same weights on CPU and CUDA: encode_last, loss, every gradient, step log-probs
//                (exhaustive SID scoring), beam search and fast_rec rankings
//   sasrec       same weights on CPU and CUDA: scores, fused loss and gradients (also against a plain
//                cross-entropy), SasrecRecommender rankings
//   speed        AdamW training steps/s on full-length batches, CPU and CUDA
//   trainers     train_sasrec / train_sid_generator (2 epochs) on CUDA through the real training loop
//                (checkpoints, validation with beam search), load back, fast_rec from a run directory
#include <torch/torch.h>
#include <torch/version.h>

#include <execinfo.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "agent/fast_rec.h"
#include "core/context.h"
#include "data/batching.h"
#include "data/split.h"
#include "data/synth.h"
#include "models/sasrec.h"
#include "models/sasrec_trainer.h"
#include "models/sid_generator.h"
#include "models/sid_generator_trainer.h"
#include "nn/loss.h"
#include "search/beam_search.h"
#include "sid/sid_map.h"

using namespace twistar;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

int g_failures = 0;
bool g_cuda = false;
torch::Device g_dev(torch::kCPU);

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void sync() {
  if (g_cuda) torch::cuda::synchronize();
}

void section(const char* name, const std::function<void()>& body) {
  std::printf("\n=== %s\n", name);
  std::fflush(stdout);
  auto t0 = Clock::now();
  try {
    body();
    std::printf("--- %s: done in %.2f s\n", name, seconds_since(t0));
  } catch (const std::exception& e) {
    ++g_failures;
    std::printf("--- %s: FAILED with exception after %.2f s:\n%s\n", name, seconds_since(t0), e.what());
  }
  std::fflush(stdout);
}

void check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "[ok]  " : "[FAIL]", what.c_str());
  if (!ok) ++g_failures;
  std::fflush(stdout);
}

/// Max |a - b| over entries finite in both; +inf when the finite patterns differ.
double max_abs_diff(const torch::Tensor& a_in, const torch::Tensor& b_in) {
  auto a = a_in.detach().to(torch::kCPU, torch::kDouble);
  auto b = b_in.detach().to(torch::kCPU, torch::kDouble);
  if (a.sizes() != b.sizes()) return std::numeric_limits<double>::infinity();
  auto fa = torch::isfinite(a), fb = torch::isfinite(b);
  if (!torch::equal(fa, fb)) return std::numeric_limits<double>::infinity();
  if (fa.sum().item<int64_t>() == 0) return 0.0;
  return (a - b).abs().masked_select(fa).max().item<double>();
}

double max_abs(const torch::Tensor& t) {
  auto a = t.detach().to(torch::kCPU, torch::kDouble);
  auto f = torch::isfinite(a);
  return f.sum().item<int64_t>() == 0 ? 0.0 : a.abs().masked_select(f).max().item<double>();
}

void report_diff(const std::string& what, const torch::Tensor& cpu, const torch::Tensor& dev, double tol) {
  double d = max_abs_diff(cpu, dev);
  char buf[256];
  std::snprintf(buf, sizeof(buf), "%-44s max|cpu-cuda| = %.3e  (max|x| = %.3e, tol %.0e)", what.c_str(), d,
                max_abs(cpu), tol);
  check(d <= tol, buf);
}

void check_on_device(const std::string& what, const torch::Tensor& t) {
  check(t.device().type() == g_dev.type(), what + " lives on " + t.device().str());
}

/// Copies every parameter and buffer of `src` into `dst` (same architecture, both on the CPU).
void copy_weights(torch::nn::Module& dst, const torch::nn::Module& src) {
  torch::NoGradGuard no_grad;
  auto sp = src.named_parameters(true), dp = dst.named_parameters(true);
  for (const auto& p : sp) dp[p.key()].copy_(p.value());
  auto sb = src.named_buffers(true), db = dst.named_buffers(true);
  for (const auto& b : sb) db[b.key()].copy_(b.value());
}

/// Gradients of two copies of a module: worst absolute and worst relative (to that tensor's max) diff.
void report_grad_diff(const std::string& what, const torch::nn::Module& cpu, const torch::nn::Module& dev,
                      double rel_tol) {
  auto cp = cpu.named_parameters(true), dp = dev.named_parameters(true);
  double worst_abs = 0, worst_rel = 0;
  std::string worst_name;
  int missing = 0;
  for (const auto& p : cp) {
    const auto& g1 = p.value().grad();
    const auto& g2 = dp[p.key()].grad();
    if (!g1.defined() || !g2.defined()) {
      if (g1.defined() != g2.defined()) ++missing;
      continue;
    }
    double d = max_abs_diff(g1, g2), m = max_abs(g1);
    double rel = d / std::max(m, 1e-12);
    worst_abs = std::max(worst_abs, d);
    if (rel > worst_rel) {
      worst_rel = rel;
      worst_name = p.key();
    }
  }
  char buf[320];
  std::snprintf(buf, sizeof(buf), "%-44s max abs %.3e, max rel %.3e (%s), tol rel %.0e",
                (what + " gradients").c_str(), worst_abs, worst_rel, worst_name.c_str(), rel_tol);
  check(missing == 0 && worst_rel <= rel_tol, buf);
}

/// Inputs and targets [B, T] of the first `n` training sequences (pad where a sequence ended).
void next_item_batch(const std::vector<NextItemSequence>& seqs, size_t first, size_t n, int64_t offset,
                     int64_t pad, torch::Tensor& inputs, torch::Tensor& targets) {
  int64_t T = 1;
  for (size_t i = first; i < first + n; ++i) T = std::max<int64_t>(T, seqs[i].inputs.size());
  inputs = torch::full({static_cast<int64_t>(n), T}, pad, torch::kLong);
  targets = torch::full_like(inputs, pad);
  auto in = inputs.accessor<int64_t, 2>();
  auto tg = targets.accessor<int64_t, 2>();
  for (size_t r = 0; r < n; ++r)
    for (size_t t = 0; t < seqs[first + r].inputs.size(); ++t) {
      in[r][t] = seqs[first + r].inputs[t] + offset;
      tg[r][t] = seqs[first + r].targets[t] + offset;
    }
}

/// How many of the rankings agree item for item, and the worst score diff where items agree.
void compare_rankings(const std::string& what, const std::vector<Ranking>& a, const std::vector<Ranking>& b,
                      double min_same_share, double tol) {
  size_t same = 0;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    bool eq = a[i].size() == b[i].size();
    for (size_t r = 0; eq && r < a[i].size(); ++r) eq = a[i][r].item == b[i][r].item;
    if (eq) {
      ++same;
      for (size_t r = 0; r < a[i].size(); ++r)
        worst = std::max(worst, static_cast<double>(std::abs(a[i][r].score - b[i][r].score)));
    }
  }
  double share = a.empty() ? 1.0 : static_cast<double>(same) / static_cast<double>(a.size());
  char buf[320];
  std::snprintf(buf, sizeof(buf), "%-44s %zu/%zu lists identical (%.1f%%), max score diff %.3e",
                what.c_str(), same, a.size(), 100.0 * share, worst);
  check(a.size() == b.size() && share >= min_same_share && worst <= tol, buf);
}

struct Fixture {
  Dataset data;
  SidMap map;
  std::vector<NextItemSequence> seqs;
  std::vector<Sequence> histories;  // validation histories (evenly spaced users)
};

Fixture make_fixture() {
  Fixture f;
  SynthOptions so;
  so.users = 6000;
  so.items = 1500;
  so.seed = 7;
  f.data = generate_synthetic(so);
  // Random 2-level codes (32 x 32) for 1500 items: collisions get a third, collision level.
  std::mt19937 rng(3);
  CodeMatrix codes(f.data.num_items(), 2);
  for (int32_t i = 0; i < f.data.num_items(); ++i) {
    codes(i, 0) = static_cast<SidCode>(rng() % 32);
    codes(i, 1) = static_cast<SidCode>(rng() % 32);
  }
  f.map = SidMap::build(codes, {32, 32});
  f.seqs = next_item_sequences(f.data, 50);
  for (const auto& e : spaced_valid_examples(f.data, 256, 50)) f.histories.push_back(e.history);
  std::printf("data: %d users, %d items, %zu interactions, %zu training sequences; SIDs %d levels (",
              f.data.num_users(), f.data.num_items(), f.data.num_interactions(), f.seqs.size(),
              f.map.levels());
  for (int32_t s : f.map.level_sizes()) std::printf(" %d", s);
  std::printf(" ), %d trie nodes\n", f.map.trie().num_nodes());
  return f;
}

void test_env() {
  std::printf("libtorch %s, CUDA available: %s, devices: %d, cuDNN: %s\n", TORCH_VERSION,
              g_cuda ? "yes" : "no", static_cast<int>(torch::cuda::device_count()),
              torch::cuda::cudnn_is_available() ? "yes" : "no");
  std::printf("testing device: %s (intra-op threads %d)\n", g_dev.str().c_str(), torch::get_num_threads());
  if (!g_cuda) {
    std::printf("NOTE: no CUDA device: every comparison below is CPU against CPU\n");
    return;
  }
  auto x = torch::randn({4, 3}, torch::TensorOptions().device(g_dev));
  try {
    auto y = x.index_select(0, torch::arange(2, torch::kLong));
    std::printf("probe: CUDA tensor.index_select(CPU index) is accepted (%s)\n", y.device().str().c_str());
  } catch (const std::exception& e) {
    std::printf("probe: CUDA tensor.index_select(CPU index) throws: %.160s\n", e.what());
  }
}

void test_sidgen(const Fixture& f) {
  SidGeneratorOptions o;  // the defaults: dim 128, 2 + 1 layers, 2 heads, item tokens + item ids
  torch::manual_seed(11);
  SidGenerator cpu(f.map.sids(), f.map.level_sizes(), o);
  SidGenerator dev(f.map.sids(), f.map.level_sizes(), o);
  copy_weights(*dev, *cpu);
  dev->to(g_dev);
  cpu->eval();
  dev->eval();
  check_on_device("sid generator buffer sids", dev->sids());
  check_on_device("sid generator code_weight(0)", dev->code_weight(0));

  torch::Tensor items, lengths;
  pack_item_histories(f.histories, o.max_len, items, lengths);
  {
    torch::NoGradGuard no_grad;
    auto hc = cpu->encode_last(items, lengths);
    auto hd = dev->encode_last(items.to(g_dev), lengths.to(g_dev));
    check_on_device("encode_last output", hd);
    report_diff("sidgen encode_last [256, 128]", hc, hd, 1e-3);
    // Step log-probs of every SID through the KV cache (exhaustive scoring), 16 requests.
    auto hc16 = hc.slice(0, 0, 16), hd16 = hd.slice(0, 0, 16);
    auto ec = exhaustive_sid_log_probs(*cpu, cpu->start(hc16), f.map.sids(), f.map.trie());
    auto ed = exhaustive_sid_log_probs(*dev, dev->start(hd16), f.map.sids(), f.map.trie());
    report_diff("sidgen exhaustive log P(SID) [16, 1500]", ec, ed, 1e-3);
    // Beam search on the device: each returned item's score must be its exhaustive log-prob.
    BeamSearchOptions bs{20, 10};
    auto beams = constrained_beam_search(*dev, dev->start(hd16), f.map.trie(), bs);
    double worst = 0;
    size_t n = 0;
    for (size_t b = 0; b < beams.size(); ++b)
      for (const auto& s : beams[b]) {
        worst = std::max(worst, std::abs(static_cast<double>(s.score) - ed[b][s.item].item<double>()));
        ++n;
      }
    char buf[200];
    std::snprintf(buf, sizeof(buf), "%-44s %zu items, max |beam - exhaustive| = %.3e",
                  "cuda beam scores vs cuda exhaustive", n, worst);
    check(n == 160 && worst < 1e-4, buf);
    // fast_rec's core (encode + beam search with history exclusion), CPU vs device.
    auto rc = sid_generator_recommend(cpu, f.map.trie(), f.histories, bs, true, 64);
    auto rd = sid_generator_recommend(dev, f.map.trie(), f.histories, bs, true, 64);
    compare_rankings("sid_generator_recommend (beam 20, k 10)", rc, rd, 0.95, 1e-3);
  }
  // Teacher-forced loss and gradients (eval mode: no dropout, so both devices compute the same thing).
  torch::Tensor in, tg;
  next_item_batch(f.seqs, 0, 128, 0, -1, in, tg);
  auto lc = cpu->loss(in, tg);
  auto ld = dev->loss(in.to(g_dev), tg.to(g_dev));
  check_on_device("sidgen loss", ld);
  report_diff("sidgen loss (128 sequences)", lc, ld, 1e-3);
  cpu->zero_grad();
  dev->zero_grad();
  lc.backward();
  ld.backward();
  report_grad_diff("sidgen", *cpu, *dev, 1e-3);
  // One AdamW step each, then the weights must still agree.
  auto oc = torch::optim::AdamW(cpu->parameters(), torch::optim::AdamWOptions(3e-3));
  auto od = torch::optim::AdamW(dev->parameters(), torch::optim::AdamWOptions(3e-3));
  oc.step();
  od.step();
  double worst = 0;
  auto cp = cpu->named_parameters(true), dp = dev->named_parameters(true);
  for (const auto& p : cp) worst = std::max(worst, max_abs_diff(p.value(), dp[p.key()]));
  char buf[200];
  std::snprintf(buf, sizeof(buf), "%-44s max|cpu-cuda| = %.3e", "sidgen weights after one AdamW step", worst);
  check(worst < 1e-4, buf);
}

torch::Tensor sasrec_loss(Sasrec& model, const torch::Tensor& inputs, const torch::Tensor& targets,
                          bool fused) {
  auto h = model->encode(inputs);
  auto valid = targets.ne(0);
  auto hv = h.index({valid});
  auto tv = targets.index({valid}) - 1;
  if (fused) return full_softmax_cross_entropy(hv, model->item_weights(), tv);
  return torch::nn::functional::cross_entropy(torch::matmul(hv, model->item_weights().t()), tv);
}

void test_sasrec(const Fixture& f) {
  SasrecOptions o;  // dim 64, 2 layers, 1 head
  torch::manual_seed(12);
  Sasrec cpu(f.data.num_items(), o);
  Sasrec dev(f.data.num_items(), o);
  copy_weights(*dev, *cpu);
  dev->to(g_dev);
  cpu->eval();
  dev->eval();
  check_on_device("sasrec item_weights", dev->item_weights());
  torch::Tensor tokens, lengths;
  pack_histories(f.histories, o.max_len, tokens, lengths);
  {
    torch::NoGradGuard no_grad;
    auto sc = cpu->score_last(tokens, lengths);
    auto sd = dev->score_last(tokens.to(g_dev), lengths.to(g_dev));
    check_on_device("score_last output", sd);
    report_diff("sasrec score_last [256, 1500]", sc, sd, 1e-3);
    auto cand = torch::randint(f.data.num_items(), {static_cast<int64_t>(f.histories.size()), 50}, torch::kLong);
    auto ic = cpu->score_items(tokens, lengths, cand);
    auto id = dev->score_items(tokens.to(g_dev), lengths.to(g_dev), cand.to(g_dev));
    report_diff("sasrec score_items [256, 50]", ic, id, 1e-3);
  }
  torch::Tensor in, tg;
  next_item_batch(f.seqs, 0, 128, 1, 0, in, tg);
  auto lc = sasrec_loss(cpu, in, tg, true);
  auto ld = sasrec_loss(dev, in.to(g_dev), tg.to(g_dev), true);
  check_on_device("sasrec fused loss", ld);
  report_diff("sasrec fused full-softmax loss", lc, ld, 1e-3);
  cpu->zero_grad();
  dev->zero_grad();
  lc.backward();
  ld.backward();
  report_grad_diff("sasrec fused loss", *cpu, *dev, 1e-3);
  // The fused loss on the device against libtorch's own cross-entropy on the device.
  std::vector<torch::Tensor> fused_grads;
  for (const auto& p : dev->parameters()) fused_grads.push_back(p.grad().defined() ? p.grad().clone() : torch::Tensor());
  dev->zero_grad();
  auto lp = sasrec_loss(dev, in.to(g_dev), tg.to(g_dev), false);
  lp.backward();
  report_diff("cuda fused loss vs cuda plain cross_entropy", ld, lp, 1e-4);
  double worst = 0;
  auto params = dev->parameters();
  for (size_t i = 0; i < params.size(); ++i)
    if (fused_grads[i].defined() && params[i].grad().defined())
      worst = std::max(worst, max_abs_diff(fused_grads[i], params[i].grad()) / std::max(1e-12, max_abs(fused_grads[i])));
  char buf[200];
  std::snprintf(buf, sizeof(buf), "%-44s max rel grad diff %.3e", "cuda fused vs plain gradients", worst);
  check(worst < 1e-3, buf);
  // The serving path.
  SasrecRecommender rec_c(cpu), rec_d(dev);
  auto rc = rec_c.recommend(f.histories, {10, true});
  auto rd = rec_d.recommend(f.histories, {10, true});
  compare_rankings("SasrecRecommender (k 10, history excluded)", rc, rd, 0.95, 1e-3);
}

/// AdamW steps per second on batches of the 128 x 4 longest training sequences.
template <class Model>
double steps_per_second(Model& model, const torch::Device& device, const Fixture& f, int64_t offset,
                        int64_t pad, int warmup, int steps,
                        const std::function<torch::Tensor(Model&, const torch::Tensor&, const torch::Tensor&)>& loss) {
  model->to(device);
  model->train();
  auto opt = torch::optim::AdamW(model->parameters(), torch::optim::AdamWOptions(1e-3));
  std::vector<size_t> order(f.seqs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return f.seqs[a].inputs.size() > f.seqs[b].inputs.size(); });
  std::vector<NextItemSequence> longest;
  for (size_t i = 0; i < 128 * 4 && i < order.size(); ++i) longest.push_back(f.seqs[order[i]]);
  std::vector<std::pair<torch::Tensor, torch::Tensor>> batches;
  for (size_t s = 0; s + 128 <= longest.size(); s += 128) {
    torch::Tensor in, tg;
    next_item_batch(longest, s, 128, offset, pad, in, tg);
    batches.emplace_back(in.to(device), tg.to(device));
  }
  double first = 0, last = 0;
  Clock::time_point t0;
  for (int i = 0; i < warmup + steps; ++i) {
    if (i == warmup) {
      sync();
      t0 = Clock::now();
    }
    const auto& b = batches[i % batches.size()];
    torch::Tensor l = loss(model, b.first, b.second);
    opt.zero_grad();
    l.backward();
    opt.step();
    double v = l.item<double>();
    if (i == 0) first = v;
    last = v;
  }
  sync();
  double sps = steps / seconds_since(t0);
  std::printf("  %-6s %8.1f steps/s  (%d steps; loss %.3f -> %.3f; batch [%ld, %ld])\n",
              device.str().c_str(), sps, steps, first, last, static_cast<long>(batches[0].first.size(0)),
              static_cast<long>(batches[0].first.size(1)));
  check(std::isfinite(last), "training loss finite");
  return sps;
}

void test_speed(const Fixture& f) {
  std::vector<torch::Device> devices{torch::Device(torch::kCPU)};
  if (g_cuda) devices.push_back(g_dev);
  for (const auto& d : devices) {
    const bool cpu = d.is_cpu();
    const int warm = cpu ? 1 : 5, steps = cpu ? 5 : 100;
    std::printf("sid generator (dim 128, 2+1 layers):\n");
    torch::manual_seed(1);
    SidGenerator g(f.map.sids(), f.map.level_sizes(), SidGeneratorOptions{});
    steps_per_second<SidGenerator>(g, d, f, 0, -1, warm, steps,
                                   [](SidGenerator& m, const torch::Tensor& i, const torch::Tensor& t) {
                                     return m->loss(i, t);
                                   });
    std::printf("sasrec fused loss (dim 64, 2 layers):\n");
    torch::manual_seed(1);
    Sasrec s(f.data.num_items(), SasrecOptions{});
    steps_per_second<Sasrec>(s, d, f, 1, 0, warm, steps,
                             [](Sasrec& m, const torch::Tensor& i, const torch::Tensor& t) {
                               return sasrec_loss(m, i, t, true);
                             });
    std::printf("sasrec plain cross_entropy (dim 64, 2 layers):\n");
    torch::manual_seed(1);
    Sasrec s2(f.data.num_items(), SasrecOptions{});
    steps_per_second<Sasrec>(s2, d, f, 1, 0, warm, steps,
                             [](Sasrec& m, const torch::Tensor& i, const torch::Tensor& t) {
                               return sasrec_loss(m, i, t, false);
                             });
  }
}

void test_trainers(const Fixture& f) {
  Context ctx;
  ctx.device = g_cuda ? "cuda" : "cpu";
  ctx.threads = 0;
  ctx.seed = 42;
  const fs::path run = fs::temp_directory_path() / "twistar_cuda_smoke_run";
  fs::remove_all(run);
  TrainControl control;
  control.progress = false;

  SasrecOptions so;
  so.train.epochs = 2;
  auto t0 = Clock::now();
  auto sr = train_sasrec(f.data, so, ctx, run / "sasrec", control);
  std::printf("train_sasrec: %d epochs in %.2f s, best valid NDCG@10 %.4f, losses:", sr.epochs_run,
              seconds_since(t0), sr.best_valid_ndcg10);
  for (double l : sr.loop.losses) std::printf(" %.4f", l);
  std::printf("\n");
  check(sr.finished && sr.epochs_run == 2, "train_sasrec finished 2 epochs");
  check_on_device("trained sasrec weights", sr.model->item_weights());
  auto loaded = load_sasrec(run / "sasrec", ctx);
  check_on_device("load_sasrec weights", loaded->item_weights());
  {
    torch::NoGradGuard no_grad;
    sr.model->eval();
    torch::Tensor tokens, lengths;
    pack_histories(f.histories, so.max_len, tokens, lengths);
    auto a = sr.model->score_last(tokens.to(g_dev), lengths.to(g_dev));
    auto b = loaded->score_last(tokens.to(g_dev), lengths.to(g_dev));
    report_diff("trained vs reloaded sasrec scores", a, b, 1e-6);
  }

  SidGeneratorOptions go;
  go.train.epochs = 2;
  go.valid_users = 1024;
  f.map.save(run / "sid" / "sid_map.json");
  t0 = Clock::now();
  auto gr = train_sid_generator(
      f.data, f.map.sids(), f.map.level_sizes(), go, ctx, run / "sidgen",
      [&](SidGenerator& m) { return fast_rec_valid_ndcg10(m, f.map.trie(), f.data, go.valid_users, go.valid_beam); },
      control);
  std::printf("train_sid_generator: %d epochs in %.2f s, best valid NDCG@10 %.4f, losses:",
              gr.loop.epochs_run, seconds_since(t0), gr.loop.best);
  for (double l : gr.loop.losses) std::printf(" %.4f", l);
  std::printf("\n");
  check(gr.loop.finished && gr.loop.epochs_run == 2, "train_sid_generator finished 2 epochs");
  check_on_device("trained sid generator weights", gr.model->code_weight(0));

  auto fast = load_fast_rec(run, ctx);
  std::vector<RequestState> requests(f.histories.size());
  for (size_t i = 0; i < requests.size(); ++i) requests[i].history = f.histories[i];
  ToolArgs args;
  args.k = 10;
  t0 = Clock::now();
  auto obs = fast->run(requests, args);
  double ms = 1000.0 * seconds_since(t0);
  size_t full = 0;
  for (const auto& o : obs) full += o.items.size() == 10;
  char buf[200];
  std::snprintf(buf, sizeof(buf), "fast_rec from the run directory: %zu/%zu requests got 10 items (%.1f ms for the batch)",
                full, obs.size(), ms);
  check(full == obs.size(), buf);
  // One request at a time, as serving does: latency per request.
  std::vector<double> lat;
  for (size_t i = 0; i < 64; ++i) {
    RequestState one;
    one.history = f.histories[i];
    if (i < 2) std::printf("single request %zu: history of %zu items\n", i, one.history.size());
    auto t1 = Clock::now();
    auto o = fast->run_one(one, args);
    lat.push_back(1000.0 * seconds_since(t1));
    if (i < 2) std::printf("single request %zu: %zu items\n", i, o.items.size());
  }
  std::sort(lat.begin(), lat.end());
  std::printf("fast_rec single request on %s: p50 %.2f ms, p95 %.2f ms\n", ctx.device.c_str(), lat[32], lat[60]);
  fs::remove_all(run);
  std::printf("run directory removed; leaving the trainers section\n");
}

}  // namespace

/// A crash prints its stack (demangle with c++filt) before the default action.
void on_fatal_signal(int sig) {
  void* frames[64];
  int n = backtrace(frames, 64);
  const char msg[] = "\n*** fatal signal, backtrace:\n";
  (void)!write(2, msg, sizeof(msg) - 1);
  backtrace_symbols_fd(frames, n, 2);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

/// argv[1], when given, picks the sections whose names contain it (e.g. "trainers").
int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // line by line: a crash keeps what came before it
  std::signal(SIGSEGV, on_fatal_signal);
  std::signal(SIGABRT, on_fatal_signal);
  const std::string only = argc > 1 ? argv[1] : "";
  auto wanted = [&](const std::string& name) { return only.empty() || name.find(only) != std::string::npos; };
  g_cuda = torch::cuda::is_available();
  g_dev = g_cuda ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  Context base;
  base.device = g_cuda ? "cuda" : "cpu";
  base.apply();
  section("env", test_env);
  Fixture f;
  section("fixture", [&] { f = make_fixture(); });
  if (g_failures) return g_failures;
  if (wanted("sidgen")) section("sidgen cpu vs device", [&] { test_sidgen(f); });
  if (wanted("sasrec")) section("sasrec cpu vs device", [&] { test_sasrec(f); });
  if (wanted("speed")) section("speed", [&] { test_speed(f); });
  if (wanted("trainers")) section("trainers on device", [&] { test_trainers(f); });
  std::printf("\nSMOKE %s: %d failure(s)\n", g_failures ? "FAILED" : "PASSED", g_failures);
  return g_failures == 0 ? 0 : 1;
}
