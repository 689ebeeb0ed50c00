#include "models/sasrec_trainer.h"

#include <algorithm>

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
  Sasrec model(data.num_items(), o);
  model->to(device);
  auto opt = make_adamw(*model, o.train);
  LoopCallbacks cb;
  // Tokens are item + 1 with 0 as padding (the model's convention).
  cb.train_epoch = [&](int epoch) {
    return train_next_item_epoch("sasrec", *model, opt, seqs, o.train.batch_size, 1, 0, ctx, epoch,
                                 control.progress, [&](const torch::Tensor& in, const torch::Tensor& tg) {
                                   return batch_loss(model, in, tg);
                                 });
  };
  cb.validate = [&] { return sasrec_valid_ndcg10(model, data, ctx); };
  auto loop = run_training_loop("sasrec", dir, model.ptr(), opt, identity, o.train, cb, control);

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
  finish_training_stage(dir, "sasrec", config, "valid_ndcg@10", loop);
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
