#include "models/sasrec_trainer.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/manifest.h"
#include "core/progress.h"
#include "data/split.h"
#include "nn/device.h"
#include "nn/loss.h"

namespace twistar {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

struct TrainSequence {
  std::vector<int64_t> inputs, targets;  // tokens (item + 1)
};

std::vector<TrainSequence> make_train_sequences(const Dataset& data, int64_t max_len) {
  std::vector<TrainSequence> out;
  for (const auto& part : training_parts(data)) {
    if (part.size() < 2) continue;
    size_t n = std::min<size_t>(part.size() - 1, max_len);
    size_t start = part.size() - 1 - n;
    TrainSequence s;
    for (size_t i = 0; i < n; ++i) {
      s.inputs.push_back(part[start + i] + 1);
      s.targets.push_back(part[start + i + 1] + 1);
    }
    out.push_back(std::move(s));
  }
  return out;
}

/// Shuffled batches of similar lengths, so padding stays small (the mean history is ~9, not 50).
std::vector<std::vector<size_t>> make_batches(const std::vector<TrainSequence>& seqs, int64_t batch,
                                              std::mt19937_64& rng) {
  std::vector<size_t> order(seqs.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  const size_t block = static_cast<size_t>(batch) * 50;
  std::vector<std::vector<size_t>> batches;
  for (size_t b = 0; b < order.size(); b += block) {
    auto first = order.begin() + b, last = order.begin() + std::min(order.size(), b + block);
    std::stable_sort(first, last, [&](size_t x, size_t y) {
      return seqs[x].inputs.size() < seqs[y].inputs.size();
    });
    for (auto it = first; it < last; it += batch)
      batches.emplace_back(it, std::min(last, it + batch));
  }
  std::shuffle(batches.begin(), batches.end(), rng);
  return batches;
}

void batch_tensors(const std::vector<TrainSequence>& seqs, const std::vector<size_t>& idx,
                   torch::Tensor& inputs, torch::Tensor& targets) {
  int64_t L = 0;
  for (size_t i : idx) L = std::max<int64_t>(L, seqs[i].inputs.size());
  inputs = torch::zeros({static_cast<int64_t>(idx.size()), L}, torch::kLong);
  targets = torch::zeros_like(inputs);
  auto in = inputs.accessor<int64_t, 2>();
  auto tg = targets.accessor<int64_t, 2>();
  for (size_t b = 0; b < idx.size(); ++b)
    for (size_t t = 0; t < seqs[idx[b]].inputs.size(); ++t) {
      in[b][t] = seqs[idx[b]].inputs[t];
      tg[b][t] = seqs[idx[b]].targets[t];
    }
}

torch::Tensor batch_loss(Sasrec& model, const torch::Tensor& inputs, const torch::Tensor& targets) {
  auto h = model->encode(inputs);
  auto valid = targets.ne(0);
  return full_softmax_cross_entropy(h.index({valid}), model->item_weights(),
                                    targets.index({valid}) - 1);
}

struct TrainerState {
  int epoch = 0;  // epochs finished
  int best_epoch = 0;
  double best = -1.0;
  int bad_evals = 0;
  double elapsed = 0.0;
  double lr = 0.0;
  std::vector<double> curve;

  nlohmann::json to_json() const {
    return {{"epoch", epoch}, {"best_epoch", best_epoch}, {"best", best},
            {"bad_evals", bad_evals}, {"elapsed", elapsed}, {"lr", lr}, {"curve", curve}};
  }
  static TrainerState from_json(const nlohmann::json& j) {
    TrainerState s;
    s.epoch = j.at("epoch");
    s.best_epoch = j.at("best_epoch");
    s.best = j.at("best");
    s.bad_evals = j.at("bad_evals");
    s.elapsed = j.at("elapsed");
    s.lr = j.at("lr");
    s.curve = j.at("curve").get<std::vector<double>>();
    return s;
  }
};

std::string checkpoint_name(int epoch, const char* what) {
  return fmt::format("checkpoint-e{}.{}.pt", epoch, what);
}

void save_checkpoint(const fs::path& dir, Sasrec& model, torch::optim::Optimizer& opt,
                     const TrainerState& state, const nlohmann::json& identity) {
  write_path_atomic(dir / checkpoint_name(state.epoch, "model"),
                    [&](const fs::path& p) { torch::save(model, p.string()); });
  write_path_atomic(dir / checkpoint_name(state.epoch, "optim"),
                    [&](const fs::path& p) { torch::save(opt, p.string()); });
  nlohmann::json j = {{"identity", identity}, {"state", state.to_json()}};
  write_file_atomic(dir / "state.json", j.dump(2));
  // Older checkpoints are dropped only once state.json points at the new one.
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("checkpoint-e", 0) == 0 &&
        name.rfind(fmt::format("checkpoint-e{}.", state.epoch), 0) != 0)
      fs::remove(entry.path());
  }
}

bool try_resume(const fs::path& dir, const nlohmann::json& identity, Sasrec& model,
                torch::optim::Optimizer& opt, TrainerState& state) {
  fs::path path = dir / "state.json";
  if (!fs::exists(path)) return false;
  auto j = nlohmann::json::parse(read_file(path));
  if (j.value("identity", nlohmann::json()) != identity) {
    spdlog::warn("{}: checkpoint is from another config or dataset; starting over", dir.string());
    return false;
  }
  state = TrainerState::from_json(j.at("state"));
  torch::load(model, (dir / checkpoint_name(state.epoch, "model")).string());
  torch::load(opt, (dir / checkpoint_name(state.epoch, "optim")).string());
  return true;
}

void set_learning_rate(torch::optim::AdamW& opt, double lr) {
  for (auto& group : opt.param_groups())
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

double run_epoch(Sasrec& model, torch::optim::Optimizer& opt, const std::vector<TrainSequence>& seqs,
                 const SasrecOptions& o, const Context& ctx, int epoch, bool progress) {
  // Seeding per epoch makes "k epochs, resume, k more" equal "2k epochs".
  std::mt19937_64 rng(ctx.seed * 1000003ULL + epoch);
  torch::manual_seed(ctx.seed + 7919ULL * epoch);
  auto batches = make_batches(seqs, o.batch_size, rng);
  model->train();
  Progress bar(fmt::format("sasrec epoch {}", epoch), batches.size(), progress);
  double total = 0;
  auto device = torch_device(ctx);
  for (const auto& b : batches) {
    torch::Tensor inputs, targets;
    batch_tensors(seqs, b, inputs, targets);
    auto loss = batch_loss(model, inputs.to(device), targets.to(device));
    opt.zero_grad();
    loss.backward();
    opt.step();
    total += loss.item<double>();
    bar.tick();
  }
  bar.set_note(fmt::format("loss {:.4f}", total / std::max<size_t>(1, batches.size())));
  return total / std::max<size_t>(1, batches.size());
}

}  // namespace

double sasrec_valid_ndcg10(Sasrec& model, const Dataset& data, const Context& ctx) {
  torch::NoGradGuard no_grad;
  model->eval();
  auto examples = make_examples(data, Split::kValid, {static_cast<size_t>(model->max_len())});
  // Similar lengths share a batch, so padding (and the attention cost) stays small.
  std::stable_sort(examples.begin(), examples.end(), [](const Example& a, const Example& b) {
    return a.history.size() < b.history.size();
  });
  double sum = 0;
  const size_t B = 512;
  auto device = torch_device(ctx);
  for (size_t s = 0; s < examples.size(); s += B) {
    size_t e = std::min(examples.size(), s + B);
    std::vector<Sequence> hist;
    std::vector<int64_t> rows, cols, targets;
    for (size_t i = s; i < e; ++i) {
      hist.push_back(examples[i].history);
      targets.push_back(examples[i].target);
      for (ItemIndex h : examples[i].history) {
        rows.push_back(static_cast<int64_t>(i - s));
        cols.push_back(h);
      }
    }
    torch::Tensor tokens, lengths;
    pack_histories(hist, model->max_len(), tokens, lengths);
    auto scores = model->score_last(tokens.to(device), lengths.to(device)).cpu();
    auto target_t = torch::tensor(targets);
    auto target_scores = scores.gather(1, target_t.unsqueeze(1));
    if (!rows.empty())
      scores.index_put_({torch::tensor(rows), torch::tensor(cols)},
                        -std::numeric_limits<float>::infinity());
    auto rank = (scores > target_scores).sum(1) + 1;  // 1-based rank of the target
    auto r = rank.accessor<int64_t, 1>();
    for (int64_t i = 0; i < r.size(0); ++i)
      if (r[i] <= 10) sum += 1.0 / std::log2(r[i] + 1.0);
  }
  return examples.empty() ? 0.0 : sum / examples.size();
}

SasrecTrainResult train_sasrec(const Dataset& data, const SasrecOptions& o, const Context& ctx,
                               const fs::path& dir, const TrainControl& control) {
  o.validate();
  ctx.apply();
  fs::create_directories(dir);
  auto device = torch_device(ctx);
  nlohmann::json identity = {{"config", o.to_json()},
                             {"seed", ctx.seed},
                             {"num_items", data.num_items()},
                             {"interactions", data.num_interactions()}};
  Sasrec model(data.num_items(), o);
  model->to(device);
  torch::optim::AdamW opt(model->parameters(),
                          torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
  SasrecTrainResult result;
  TrainerState state;
  state.lr = o.lr;
  result.resumed = try_resume(dir, identity, model, opt, state);
  set_learning_rate(opt, state.lr);
  if (result.resumed) spdlog::info("sasrec: resuming after epoch {}", state.epoch);

  auto seqs = make_train_sequences(data, o.max_len);
  if (seqs.empty()) throw_input_error("{}: no user has a training part of 2+ items", data.name);
  auto t0 = Clock::now();
  double base_elapsed = state.elapsed;
  int run_here = 0;
  bool interrupted = false;
  while (state.epoch < o.epochs && state.bad_evals < o.patience) {
    double loss = run_epoch(model, opt, seqs, o, ctx, state.epoch + 1, control.progress);
    state.epoch += 1;
    if (state.epoch % o.eval_every == 0 || state.epoch == o.epochs) {
      double ndcg = sasrec_valid_ndcg10(model, data, ctx);
      state.curve.push_back(ndcg);
      spdlog::info("sasrec epoch {} loss {:.4f} valid ndcg@10 {:.4f}", state.epoch, loss, ndcg);
      if (ndcg > state.best) {
        state.best = ndcg;
        state.best_epoch = state.epoch;
        state.bad_evals = 0;
        write_path_atomic(dir / "best.pt", [&](const fs::path& p) { torch::save(model, p.string()); });
      } else {
        state.bad_evals += 1;
        if (state.bad_evals % o.lr_patience == 0 && o.lr_decay < 1) {
          state.lr *= o.lr_decay;
          set_learning_rate(opt, state.lr);
          spdlog::info("sasrec: learning rate lowered to {:.2e}", state.lr);
        }
      }
    }
    state.elapsed = base_elapsed + std::chrono::duration<double>(Clock::now() - t0).count();
    save_checkpoint(dir, model, opt, state, identity);
    ++run_here;
    if (o.max_minutes > 0 && state.elapsed > o.max_minutes * 60) {
      spdlog::info("sasrec: time budget of {} minutes reached", o.max_minutes);
      break;
    }
    if (control.stop_after_epochs > 0 && run_here >= control.stop_after_epochs &&
        state.epoch < o.epochs && state.bad_evals < o.patience) {
      interrupted = true;
      break;
    }
  }
  result.epochs_run = state.epoch;
  result.best_epoch = state.best_epoch;
  result.best_valid_ndcg10 = state.best;
  result.train_seconds = state.elapsed;
  result.curve = state.curve;
  result.finished = !interrupted;
  torch::load(model, (dir / "best.pt").string());
  result.model = model;
  if (!result.finished) return result;

  write_path_atomic(dir / "model.pt", [&](const fs::path& p) { fs::copy_file(dir / "best.pt", p); });
  Manifest m;
  m.stage = "sasrec";
  m.config = o.to_json();
  m.config["seed"] = ctx.seed;
  m.config["num_items"] = data.num_items();
  m.metrics = {{"valid_ndcg@10", state.best}, {"best_epoch", state.best_epoch},
               {"epochs", state.epoch},       {"curve", state.curve}};
  m.wall_seconds = state.elapsed;
  m.save(dir);
  return result;
}

Sasrec load_sasrec(const fs::path& dir, const Context& ctx) {
  auto m = Manifest::load(dir);
  if (!m || m->stage != "sasrec")
    throw_input_error("{}: no finished sasrec stage (manifest.json missing)", dir.string());
  SasrecOptions o = SasrecOptions::from_json(m->config);
  Sasrec model(m->config.at("num_items").get<int64_t>(), o);
  torch::load(model, (dir / "model.pt").string());
  model->to(torch_device(ctx));
  model->eval();
  return model;
}

}  // namespace twistar
