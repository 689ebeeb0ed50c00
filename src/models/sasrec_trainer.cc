#include "models/sasrec_trainer.h"

#include <algorithm>
#include <random>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/manifest.h"
#include "data/ranks.h"
#include "data/split.h"
#include "nn/device.h"
#include "nn/loss.h"

namespace twistar {
namespace fs = std::filesystem;

namespace {

torch::Tensor batch_loss(Sasrec& model, const torch::Tensor& inputs, const torch::Tensor& targets) {
  auto h = model->encode(inputs);
  auto valid = targets.ne(0);
  return full_softmax_cross_entropy(h.index({valid}), model->item_weights(),
                                    targets.index({valid}) - 1);
}

/// bsarec trains one target per prefix (its frequency branch reads the whole window, so the outputs
/// at earlier positions would see later items): the prefix before every item of a training part
/// but the first (an empty history's state is zero: it has nothing to learn from).
struct Prefix {
  const Sequence* items;
  uint32_t end;  // the target is (*items)[end], the history items [max(0, end - max_len), end)
};

std::vector<Prefix> training_prefixes(const std::vector<Sequence>& parts) {
  std::vector<Prefix> out;
  for (const auto& p : parts)
    for (size_t e = 1; e < p.size(); ++e) out.push_back({&p, static_cast<uint32_t>(e)});
  return out;
}

double train_prefix_epoch(Sasrec& model, torch::optim::Optimizer& opt, const std::vector<Prefix>& prefixes,
                          const SasrecOptions& o, const Context& ctx, int epoch, bool progress) {
  // Seeding per epoch makes "k epochs, resume, k more" equal "2k epochs".
  std::mt19937_64 rng(ctx.seed * 1000003ULL + epoch);
  torch::manual_seed(ctx.seed + 7919ULL * epoch);
  // Prefixes of similar length share a batch: a batch computes only its longest history's positions.
  std::vector<size_t> lengths(prefixes.size());
  for (size_t i = 0; i < prefixes.size(); ++i)
    lengths[i] = std::min<size_t>(prefixes[i].end, static_cast<size_t>(o.max_len));
  auto batches = length_bucketed_batches(lengths, static_cast<size_t>(o.train.batch_size), rng);
  model->train();
  auto device = torch_device(ctx);
  std::vector<Sequence> hist;
  std::vector<int64_t> targets;
  const auto label = fmt::format("bsarec epoch {}", epoch);
  return step_batches(label, opt, batches, progress, [&](const std::vector<size_t>& batch) {
    hist.clear();
    targets.clear();
    for (size_t i : batch) {
      const Prefix& p = prefixes[i];
      size_t begin = p.end > o.max_len ? p.end - o.max_len : 0;
      hist.emplace_back(p.items->begin() + begin, p.items->begin() + p.end);
      targets.push_back((*p.items)[p.end]);
    }
    torch::Tensor tokens, sizes;
    pack_histories(hist, o.max_len, tokens, sizes);
    auto h = model->last_hidden(tokens.to(device), sizes.to(device));
    return full_softmax_cross_entropy(h, model->item_weights(), torch::tensor(targets).to(device));
  });
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
    for (int64_t i = 0; i < r.size(0); ++i) sum += ndcg_at(static_cast<int>(r[i]), 10);
  }
  return examples.empty() ? 0.0 : sum / examples.size();
}

SasrecTrainResult train_sasrec(const Dataset& data, const SasrecOptions& o, const Context& ctx,
                               const fs::path& dir, const TrainControl& control) {
  o.validate();
  ctx.apply();
  auto device = torch_device(ctx);
  nlohmann::json identity = {{"config", o.to_json()},
                             {"seed", ctx.seed},
                             {"num_items", data.num_items()},
                             {"interactions", data.num_interactions()}};
  auto seqs = next_item_sequences(data, static_cast<size_t>(o.max_len));
  if (seqs.empty()) throw_input_error("{}: no user has a training part of 2+ items", data.name);
  const auto parts = training_parts(data);
  const auto prefixes = o.is_bsarec() ? training_prefixes(parts) : std::vector<Prefix>{};
  Sasrec model(data.num_items(), o);
  model->to(device);
  auto opt = make_adamw(*model, o.train);
  LoopCallbacks cb;
  // Tokens are item + 1 with 0 as padding (the model's convention).
  cb.train_epoch = [&](int epoch) {
    if (o.is_bsarec()) return train_prefix_epoch(model, opt, prefixes, o, ctx, epoch, control.progress);
    return train_next_item_epoch(o.arch, *model, opt, seqs, o.train.batch_size, 1, 0, ctx, epoch,
                                 control.progress, [&](const torch::Tensor& in, const torch::Tensor& tg) {
                                   return batch_loss(model, in, tg);
                                 });
  };
  cb.validate = [&] { return sasrec_valid_ndcg10(model, data, ctx); };
  auto loop = run_training_loop(o.arch, dir, model.ptr(), opt, identity, o.train, cb, control);

  SasrecTrainResult result;
  result.model = model;
  result.epochs_run = loop.epochs_run;
  result.best_epoch = loop.best_epoch;
  result.best_valid_ndcg10 = loop.best;
  result.train_seconds = loop.seconds;
  result.curve = loop.curve;
  result.loop = loop;
  result.resumed = loop.resumed;
  result.finished = loop.finished;
  if (!result.finished) return result;
  nlohmann::json config = o.to_json();
  config["seed"] = ctx.seed;
  config["num_items"] = data.num_items();
  finish_training_stage(dir, o.arch, config, "valid_ndcg@10", loop);
  return result;
}

fs::path backbone_dir(const fs::path& run_dir) {
  const fs::path bsarec = run_dir / "bsarec";
  auto m = Manifest::load(bsarec);
  if (m && m->stage == "bsarec" && fs::exists(bsarec / "model.pt")) return bsarec;
  return run_dir / "sasrec";
}

Sasrec load_sasrec(const fs::path& dir, const Context& ctx) {
  auto m = Manifest::load(dir);
  if (!m || (m->stage != "sasrec" && m->stage != "bsarec"))
    throw_input_error("{}: no finished sasrec or bsarec stage (manifest.json missing)", dir.string());
  SasrecOptions o = SasrecOptions::from_json(m->config);
  Sasrec model(m->config.at("num_items").get<int64_t>(), o);
  torch::load(model, (dir / "model.pt").string());
  model->to(torch_device(ctx));
  model->eval();
  return model;
}

}  // namespace twistar
