#include "models/training_loop.h"

#include <chrono>
#include <cmath>

#include "core/atomic_file.h"
#include "core/hash.h"
#include "core/error.h"
#include "core/log.h"
#include "core/manifest.h"
#include "core/progress.h"
#include "nn/device.h"
#include "nn/torch_io.h"

namespace twistar {
namespace fs = std::filesystem;

void TrainOptions::validate() const {
  if (lr <= 0) throw_input_error("lr: must be > 0, got {}", lr);
  if (weight_decay < 0) throw_input_error("weight_decay: must be >= 0, got {}", weight_decay);
  if (batch_size < 1) throw_input_error("batch_size: must be >= 1, got {}", batch_size);
  if (epochs < 1) throw_input_error("epochs: must be >= 1, got {}", epochs);
  if (patience < 1) throw_input_error("patience: must be >= 1, got {}", patience);
  if (lr_decay <= 0 || lr_decay > 1) throw_input_error("lr_decay: must be in (0, 1], got {}", lr_decay);
  if (lr_patience < 1) throw_input_error("lr_patience: must be >= 1, got {}", lr_patience);
  if (max_minutes < 0) throw_input_error("max_minutes: must be >= 0, got {}", max_minutes);
  if (eval_every < 1) throw_input_error("eval_every: must be >= 1, got {}", eval_every);
}

void TrainOptions::add_to(nlohmann::json& j) const {
  j["lr"] = lr;
  j["weight_decay"] = weight_decay;
  j["batch_size"] = batch_size;
  j["epochs"] = epochs;
  j["patience"] = patience;
  j["lr_decay"] = lr_decay;
  j["lr_patience"] = lr_patience;
  j["max_minutes"] = max_minutes;
  j["eval_every"] = eval_every;
}

void TrainOptions::read(const nlohmann::json& j) {
  lr = j.value("lr", lr);
  weight_decay = j.value("weight_decay", weight_decay);
  batch_size = j.value("batch_size", batch_size);
  epochs = j.value("epochs", epochs);
  patience = j.value("patience", patience);
  lr_decay = j.value("lr_decay", lr_decay);
  lr_patience = j.value("lr_patience", lr_patience);
  max_minutes = j.value("max_minutes", max_minutes);
  eval_every = j.value("eval_every", eval_every);
}

torch::optim::AdamW make_adamw(torch::nn::Module& model, const TrainOptions& o) {
  return torch::optim::AdamW(model.parameters(), torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
}

std::string module_fingerprint(const torch::nn::Module& module) {
  std::string bytes;
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    auto c = t.detach().to(torch::kCPU).contiguous();
    bytes += name;
    bytes.append(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  };
  for (const auto& p : module.named_parameters()) add(p.key(), p.value());
  for (const auto& b : module.named_buffers()) add(b.key(), b.value());
  return hash_string(bytes);
}

void finish_training_stage(const fs::path& dir, const std::string& stage, const nlohmann::json& config,
                           const std::string& metric_name, const LoopResult& result) {
  write_path_atomic(dir / "model.pt", [&](const fs::path& p) { fs::copy_file(dir / "best.pt", p); });
  Manifest m;
  m.stage = stage;
  m.config = config;
  m.metrics = {{metric_name, result.best},
               {"best_epoch", result.best_epoch},
               {"epochs", result.epochs_run},
               {"curve", result.curve}};
  m.wall_seconds = result.seconds;
  m.save(dir);
}

namespace {

using Clock = std::chrono::steady_clock;

struct LoopState {
  int epoch = 0;  // epochs finished
  int best_epoch = 0;
  double best = -1.0;
  int bad_evals = 0;
  double elapsed = 0.0;
  double lr = 0.0;
  std::vector<double> curve;
  std::vector<double> losses;

  nlohmann::json to_json() const {
    // JSON has no NaN: a diverged epoch's loss is stored as null.
    nlohmann::json l = nlohmann::json::array();
    for (double v : losses) l.push_back(std::isfinite(v) ? nlohmann::json(v) : nlohmann::json());
    return {{"epoch", epoch}, {"best_epoch", best_epoch}, {"best", best}, {"bad_evals", bad_evals},
            {"elapsed", elapsed}, {"lr", lr}, {"curve", curve}, {"losses", l}};
  }
  static LoopState from_json(const nlohmann::json& j) {
    LoopState s;
    s.epoch = j.at("epoch");
    s.best_epoch = j.at("best_epoch");
    s.best = j.at("best");
    s.bad_evals = j.at("bad_evals");
    s.elapsed = j.at("elapsed");
    s.lr = j.at("lr");
    s.curve = j.at("curve").get<std::vector<double>>();
    // Checkpoints written before the loss was recorded have no "losses".
    for (const auto& v : j.value("losses", nlohmann::json::array()))
      s.losses.push_back(v.is_number() ? v.get<double>() : std::nan(""));
    return s;
  }
};

std::string checkpoint_name(int epoch, const char* what) {
  return fmt::format("checkpoint-e{}.{}.pt", epoch, what);
}

void save_module(const std::shared_ptr<torch::nn::Module>& model, const fs::path& path) {
  save_torch_atomic(path, model);
}

void save_checkpoint(const fs::path& dir, const std::shared_ptr<torch::nn::Module>& model,
                     torch::optim::Optimizer& opt, const LoopState& state,
                     const nlohmann::json& identity) {
  save_module(model, dir / checkpoint_name(state.epoch, "model"));
  save_torch_atomic(dir / checkpoint_name(state.epoch, "optim"), opt);
  nlohmann::json j = {{"identity", identity}, {"state", state.to_json()}};
  write_file_atomic(dir / "state.json", j.dump(2));
  // Older checkpoints are dropped only once state.json points at the new one.
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string file = entry.path().filename().string();
    if (file.rfind("checkpoint-e", 0) == 0 &&
        file.rfind(fmt::format("checkpoint-e{}.", state.epoch), 0) != 0)
      fs::remove(entry.path());
  }
}

// The identity a checkpoint must match to be resumed: everything but the time budget, so a training
// stopped by its budget continues when rerun with a larger one.
nlohmann::json resume_key(nlohmann::json identity) {
  if (identity.is_object()) {
    identity.erase("max_minutes");
    for (auto& [key, value] : identity.items()) value = resume_key(value);
  }
  return identity;
}

bool try_resume(const std::string& name, const fs::path& dir, const nlohmann::json& identity,
                const std::shared_ptr<torch::nn::Module>& model, torch::optim::Optimizer& opt,
                LoopState& state) {
  fs::path path = dir / "state.json";
  if (!fs::exists(path)) return false;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    spdlog::warn("{}: {} is unreadable ({}); starting over", name, path.string(), e.what());
    return false;
  }
  if (resume_key(j.value("identity", nlohmann::json())) != resume_key(identity)) {
    spdlog::warn("{}: checkpoint in {} is from another config or dataset; starting over", name,
                 dir.string());
    return false;
  }
  state = LoopState::from_json(j.at("state"));
  torch::load(model, (dir / checkpoint_name(state.epoch, "model")).string());
  torch::load(opt, (dir / checkpoint_name(state.epoch, "optim")).string());
  return true;
}

void set_learning_rate(torch::optim::AdamW& opt, double lr) {
  for (auto& group : opt.param_groups())
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

}  // namespace

LoopResult run_training_loop(const std::string& name, const fs::path& dir,
                             const std::shared_ptr<torch::nn::Module>& model,
                             torch::optim::AdamW& opt, const nlohmann::json& identity,
                             const TrainOptions& o, const LoopCallbacks& cb,
                             const TrainControl& control) {
  fs::create_directories(dir);
  LoopResult result;
  LoopState state;
  state.lr = o.lr;
  result.resumed = try_resume(name, dir, identity, model, opt, state);
  set_learning_rate(opt, state.lr);
  if (result.resumed) spdlog::info("{}: resuming after epoch {}", name, state.epoch);

  auto t0 = Clock::now();
  double base_elapsed = state.elapsed;
  int run_here = 0;
  bool interrupted = false;
  // A resumed run that had already stopped (budget or patience) goes straight to the end.
  bool budget_spent = o.max_minutes > 0 && state.elapsed > o.max_minutes * 60;
  while (!budget_spent && state.epoch < o.epochs && state.bad_evals < o.patience) {
    double loss = cb.train_epoch(state.epoch + 1);
    state.epoch += 1;
    state.losses.push_back(loss);
    if (state.epoch % o.eval_every == 0 || state.epoch == o.epochs) {
      double metric = cb.validate();
      state.curve.push_back(metric);
      spdlog::info("{} epoch {} loss {:.4f} valid {:.4f}", name, state.epoch, loss, metric);
      if (metric > state.best) {
        state.best = metric;
        state.best_epoch = state.epoch;
        state.bad_evals = 0;
        save_module(model, dir / "best.pt");
      } else {
        state.bad_evals += 1;
        if (state.bad_evals % o.lr_patience == 0 && o.lr_decay < 1) {
          state.lr *= o.lr_decay;
          set_learning_rate(opt, state.lr);
          spdlog::info("{}: learning rate lowered to {:.2e}", name, state.lr);
        }
      }
    }
    state.elapsed = base_elapsed + std::chrono::duration<double>(Clock::now() - t0).count();
    save_checkpoint(dir, model, opt, state, identity);
    ++run_here;
    if (o.max_minutes > 0 && state.elapsed > o.max_minutes * 60) {
      spdlog::info("{}: time budget of {} minutes reached", name, o.max_minutes);
      break;
    }
    if (control.stop_after_epochs > 0 && run_here >= control.stop_after_epochs &&
        state.epoch < o.epochs && state.bad_evals < o.patience) {
      interrupted = true;
      break;
    }
  }
  if (!fs::exists(dir / "best.pt")) save_module(model, dir / "best.pt");
  result.epochs_run = state.epoch;
  result.best_epoch = state.best_epoch;
  result.best = state.best;
  result.seconds = state.elapsed;
  result.curve = state.curve;
  result.losses = state.losses;
  result.finished = !interrupted;
  torch::load(model, (dir / "best.pt").string());
  return result;
}

void pack_last_items(const std::vector<Sequence>& histories, int64_t max_len, int64_t offset,
                     int64_t pad, torch::Tensor& items, torch::Tensor& lengths) {
  const int64_t B = static_cast<int64_t>(histories.size());
  int64_t T = 1;
  for (const auto& h : histories) T = std::max<int64_t>(T, std::min<int64_t>(max_len, h.size()));
  items = torch::full({B, T}, pad, torch::kLong);
  lengths = torch::ones({B}, torch::kLong);
  auto it = items.accessor<int64_t, 2>();
  auto len = lengths.accessor<int64_t, 1>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& h = histories[b];
    int64_t n = std::min<int64_t>(max_len, h.size());
    size_t first = h.size() - n;
    for (int64_t i = 0; i < n; ++i) it[b][i] = h[first + i] + offset;
    len[b] = std::max<int64_t>(1, n);
  }
}

double train_next_item_epoch(const std::string& name, torch::nn::Module& model,
                             torch::optim::Optimizer& opt, const std::vector<NextItemSequence>& seqs,
                             int64_t batch_size, int64_t offset, int64_t pad, const Context& ctx,
                             int epoch, bool progress, const NextItemLoss& loss_fn) {
  // Seeding per epoch makes "k epochs, resume, k more" equal "2k epochs".
  std::mt19937_64 rng(ctx.seed * 1000003ULL + epoch);
  torch::manual_seed(ctx.seed + 7919ULL * epoch);
  auto batches = length_bucketed_batches(seqs, static_cast<size_t>(batch_size), rng);
  model.train();
  auto device = torch_device(ctx);
  return step_batches(fmt::format("{} epoch {}", name, epoch), opt, batches, progress,
                      [&](const std::vector<size_t>& b) {
    int64_t T = 0;
    for (size_t i : b) T = std::max<int64_t>(T, seqs[i].inputs.size());
    auto inputs = torch::full({static_cast<int64_t>(b.size()), T}, pad, torch::kLong);
    auto targets = torch::full_like(inputs, pad);
    auto in = inputs.accessor<int64_t, 2>();
    auto tg = targets.accessor<int64_t, 2>();
    for (size_t r = 0; r < b.size(); ++r)
      for (size_t t = 0; t < seqs[b[r]].inputs.size(); ++t) {
        in[r][t] = seqs[b[r]].inputs[t] + offset;
        tg[r][t] = seqs[b[r]].targets[t] + offset;
      }
    return loss_fn(inputs.to(device), targets.to(device));
  });
}

double step_batches(const std::string& label, torch::optim::Optimizer& opt,
                    const std::vector<std::vector<size_t>>& batches, bool progress, const EpochBatchLoss& loss_fn) {
  Progress bar(label, batches.size(), progress);
  double total = 0;
  for (const auto& b : batches) {
    auto loss = loss_fn(b);
    opt.zero_grad();
    loss.backward();
    opt.step();
    total += loss.item<double>();
    bar.tick();
  }
  double mean = total / std::max<size_t>(1, batches.size());
  bar.set_note(fmt::format("loss {:.4f}", mean));
  return mean;
}

}  // namespace twistar
