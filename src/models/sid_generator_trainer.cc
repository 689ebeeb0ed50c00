#include "models/sid_generator_trainer.h"

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/manifest.h"
#include "core/hash.h"
#include "nn/device.h"

namespace twistar {
namespace fs = std::filesystem;

namespace {

/// Hash of the SIDs' shape and codes: a checkpoint trained on other SIDs is not resumed.
std::string fingerprint_codes(const CodeMatrix& sids) {
  std::string bytes = fmt::format("{}x{}:", sids.rows(), sids.cols());
  bytes.append(reinterpret_cast<const char*>(sids.data()), sids.size() * sizeof(SidCode));
  return hash_string(bytes);
}

}  // namespace

SidGeneratorTrainResult train_sid_generator(const Dataset& data, const CodeMatrix& sids,
                                            const std::vector<int32_t>& level_sizes,
                                            const SidGeneratorOptions& o, const Context& ctx,
                                            const fs::path& dir, const SidGeneratorValidator& validate,
                                            const TrainControl& control) {
  o.validate();
  ctx.apply();
  if (sids.rows() != data.num_items())
    throw_input_error("sid generator: the SID map has {} items but {} has {}", sids.rows(), data.name,
                      data.num_items());
  auto seqs = next_item_sequences(data, static_cast<size_t>(o.max_len));
  if (seqs.empty()) throw_input_error("{}: no user has a training part of 2+ items", data.name);
  auto device = torch_device(ctx);
  nlohmann::json identity = {{"config", o.to_json()},
                             {"seed", ctx.seed},
                             {"num_items", data.num_items()},
                             {"interactions", data.num_interactions()},
                             {"level_sizes", level_sizes},
                             {"sids_fingerprint", fingerprint_codes(sids)}};
  SidGenerator model(sids, level_sizes, o);
  model->to(device);
  auto opt = make_adamw(*model, o.train);
  LoopCallbacks cb;
  cb.train_epoch = [&](int epoch) {
    return train_next_item_epoch("sidgen", *model, opt, seqs, o.train.batch_size, 0, -1, ctx, epoch,
                                 control.progress, [&](const torch::Tensor& in, const torch::Tensor& tg) {
                                   return model->loss(in, tg);
                                 });
  };
  cb.validate = [&] {
    torch::NoGradGuard no_grad;
    model->eval();
    return validate(model);
  };
  SidGeneratorTrainResult result;
  result.loop = run_training_loop("sidgen", dir, model.ptr(), opt, identity, o.train, cb, control);
  model->eval();
  result.model = model;
  if (!result.loop.finished) return result;
  nlohmann::json config = o.to_json();
  config["seed"] = ctx.seed;
  config["num_items"] = data.num_items();
  config["level_sizes"] = level_sizes;
  config["sids_fingerprint"] = identity["sids_fingerprint"];
  finish_training_stage(dir, "sidgen", config, "valid_ndcg@10", result.loop);
  return result;
}

SidGenerator load_sid_generator(const fs::path& dir, const CodeMatrix& sids,
                                const std::vector<int32_t>& level_sizes, const Context& ctx) {
  auto m = Manifest::load(dir);
  if (!m || m->stage != "sidgen")
    throw_input_error("{}: no finished sidgen stage (manifest.json missing)", dir.string());
  if (m->config.value("sids_fingerprint", std::string()) != fingerprint_codes(sids) ||
      m->config.value("level_sizes", std::vector<int32_t>()) != level_sizes)
    throw_input_error(
        "{}: the SID generator was trained on other semantic IDs than the SID map given (retrain "
        "it after rerunning the sid stage)",
        dir.string());
  auto o = SidGeneratorOptions::from_json(m->config);
  SidGenerator model(sids, level_sizes, o);
  torch::load(model, (dir / "model.pt").string());
  model->to(torch_device(ctx));
  model->eval();
  return model;
}

}  // namespace twistar
