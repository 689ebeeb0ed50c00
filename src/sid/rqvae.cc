#include "sid/rqvae.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>
#include <random>
#include <tuple>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/progress.h"
#include "sid/residual_kmeans.h"
#include "nn/torch_io.h"

namespace twistar {
namespace fs = std::filesystem;
namespace {

constexpr const char* kFormatTag = "twistar-rqvae";
// Rows per encode() chunk: bounds the [rows x K] distance matrix.
constexpr int64_t kEncodeChunk = 8192;

torch::nn::Sequential mlp(int64_t in, const std::vector<int>& hidden, int64_t out) {
  torch::nn::Sequential seq;
  int64_t width = in;
  for (int h : hidden) {
    seq->push_back(torch::nn::Linear(width, h));
    seq->push_back(torch::nn::ReLU());
    width = h;
  }
  seq->push_back(torch::nn::Linear(width, out));
  return seq;
}

// One module owning encoder, decoder and codebooks, so that torch::save/load cover all of them.
class RqvaeNetImpl : public torch::nn::Module {
 public:
  RqvaeNetImpl(int64_t input_dim, const RqvaeOptions& o, int64_t k) {
    encoder = register_module("encoder", mlp(input_dim, o.hidden, o.latent_dim));
    const std::vector<int> mirrored(o.hidden.rbegin(), o.hidden.rend());
    decoder = register_module("decoder", mlp(o.latent_dim, mirrored, input_dim));
    for (int l = 0; l < o.levels; ++l)
      codebooks.push_back(
          register_parameter("codebook" + std::to_string(l), torch::zeros({k, o.latent_dim})));
  }

  torch::nn::Sequential encoder{nullptr}, decoder{nullptr};
  std::vector<torch::Tensor> codebooks;
};
TORCH_MODULE(RqvaeNet);

torch::Tensor to_tensor(const EmbeddingMatrix& m, const torch::Device& device) {
  return torch::from_blob(const_cast<float*>(m.data()), {m.rows(), m.cols()}, torch::kFloat32)
      .clone()
      .to(device);
}

EmbeddingMatrix to_matrix(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  EmbeddingMatrix m(c.size(0), c.size(1));
  std::memcpy(m.data(), c.data_ptr<float>(), sizeof(float) * static_cast<size_t>(m.size()));
  return m;
}

// Index of the nearest code of every row. ||r||² is the same for all codes of a row, so it is left
// out of the argmin.
torch::Tensor nearest_code(const torch::Tensor& residual, const torch::Tensor& book) {
  return (book.pow(2).sum(1).unsqueeze(0) - 2 * residual.mm(book.t())).argmin(1);
}

struct Quantized {
  /// Straight-through quantised latent: the value of sum_l e_l, the gradient of z.
  torch::Tensor z_q;
  /// [rows x L], int64.
  torch::Tensor codes;
  /// Input of each level, detached (the dead-code reset draws new codes from them).
  std::vector<torch::Tensor> residuals;
  /// Mean over levels of codebook + beta * commitment loss (zero without `with_loss`).
  torch::Tensor vq_loss;
};

Quantized quantize(const torch::Tensor& z, const std::vector<torch::Tensor>& books, double beta,
                   bool with_loss) {
  Quantized out;
  torch::Tensor residual = z;
  torch::Tensor sum = torch::zeros_like(z);
  std::vector<torch::Tensor> codes;
  out.vq_loss = torch::zeros({}, z.options());
  for (const auto& book : books) {
    const torch::Tensor r = residual.detach();
    const torch::Tensor idx = nearest_code(r, book);
    const torch::Tensor e = book.index_select(0, idx);
    if (with_loss)
      out.vq_loss =
          out.vq_loss + torch::mse_loss(e, r) + beta * torch::mse_loss(residual, e.detach());
    out.residuals.push_back(r);
    codes.push_back(idx);
    sum = sum + e.detach();
    // The next level's commitment loss still reaches the encoder through `residual`.
    residual = residual - e.detach();
  }
  out.z_q = z + (sum - z).detach();
  out.codes = torch::stack(codes, 1);
  out.vq_loss = out.vq_loss / static_cast<double>(books.size());
  return out;
}

// Initial codebooks: residual k-means of the initial latents of all items.
void init_codebooks(RqvaeNetImpl& net, const torch::Tensor& x, const RqvaeOptions& o) {
  torch::NoGradGuard no_grad;
  EmbeddingMatrix residual = to_matrix(net.encoder->forward(x));
  std::vector<int32_t> assignment;
  const int k = static_cast<int>(net.codebooks[0].size(0));
  for (size_t l = 0; l < net.codebooks.size(); ++l) {
    // Same per-level seed stream as ResidualKMeans, so the two start from the same choices.
    const uint64_t seed = o.seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(l);
    const EmbeddingMatrix book =
        kmeans(residual, k, o.kmeans_iterations, seed, o.threads, &assignment);
    for (Eigen::Index i = 0; i < residual.rows(); ++i) residual.row(i) -= book.row(assignment[i]);
    net.codebooks[l].copy_(to_tensor(book, net.codebooks[l].device()));
  }
}

// `count` distinct indices in [0, n) when count <= n (partial Fisher-Yates), else with repeats.
std::vector<int64_t> sample_rows(int64_t n, int64_t count, std::mt19937_64& rng) {
  std::vector<int64_t> all(n);
  std::iota(all.begin(), all.end(), 0);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t left = n - (i % n);
    const int64_t j = (i % n) + static_cast<int64_t>(rng() % static_cast<uint64_t>(left));
    std::swap(all[i % n], all[j]);
    out.push_back(all[i % n]);
  }
  return out;
}

// Codes no item chose over the epoch move onto random residuals of the last batch, where data is.
int64_t reset_dead_codes(RqvaeNetImpl& net, const std::vector<torch::Tensor>& usage,
                         const std::vector<torch::Tensor>& residuals, std::mt19937_64& rng) {
  torch::NoGradGuard no_grad;
  int64_t reset = 0;
  for (size_t l = 0; l < net.codebooks.size(); ++l) {
    const torch::Tensor dead = (usage[l] == 0).nonzero().squeeze(1).to(net.codebooks[l].device());
    if (dead.numel() == 0) continue;
    const auto picks = sample_rows(residuals[l].size(0), dead.numel(), rng);
    const torch::Tensor rows = torch::tensor(picks, torch::kInt64).to(residuals[l].device());
    net.codebooks[l].index_copy_(0, dead, residuals[l].index_select(0, rows));
    reset += dead.numel();
  }
  return reset;
}

std::vector<int64_t> shuffled(int64_t n, std::mt19937_64& rng) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(order[i], order[static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1))]);
  return order;
}

// One pass over the items in a seeded random order; appends the epoch's mean losses to `stats`.
void train_epoch(RqvaeNetImpl& net, const torch::Tensor& x, torch::optim::Optimizer& optimizer,
                 const RqvaeOptions& o, int epoch, RqvaeTrainStats* stats) {
  // Seeded per epoch, so the batch order does not depend on what ran before.
  std::mt19937_64 rng(o.seed * 1000003ULL + static_cast<uint64_t>(epoch));
  const torch::Tensor order = torch::tensor(shuffled(x.size(0), rng), torch::kInt64).to(x.device());
  const int64_t k = net.codebooks[0].size(0);
  // One tensor per level (a vector filled with copies of one tensor would share its storage).
  std::vector<torch::Tensor> usage;
  for (size_t l = 0; l < net.codebooks.size(); ++l)
    usage.push_back(torch::zeros({k}, torch::TensorOptions(torch::kInt64).device(x.device())));
  double recon_sum = 0.0, vq_sum = 0.0;
  int batches = 0;
  Quantized q;
  for (int64_t lo = 0; lo < x.size(0); lo += o.batch_size) {
    const torch::Tensor xb =
        x.index_select(0, order.slice(0, lo, std::min(x.size(0), lo + o.batch_size)));
    q = quantize(net.encoder->forward(xb), net.codebooks, o.beta, true);
    const torch::Tensor recon = torch::mse_loss(net.decoder->forward(q.z_q), xb);
    optimizer.zero_grad();
    (recon + q.vq_loss).backward();
    optimizer.step();
    for (size_t l = 0; l < usage.size(); ++l)
      usage[l] += torch::bincount(q.codes.select(1, static_cast<int64_t>(l)), {}, k);
    recon_sum += recon.item<double>();
    vq_sum += q.vq_loss.item<double>();
    ++batches;
  }
  if (o.reset_dead_codes) stats->dead_codes_reset += reset_dead_codes(net, usage, q.residuals, rng);
  stats->recon_loss.push_back(recon_sum / batches);
  stats->vq_loss.push_back(vq_sum / batches);
}

// Plain autoencoder epoch (no quantisation), before the codebooks exist: it gives k-means latents
// that already separate the items. A random encoder squeezes inputs of small norm (unit-length
// embeddings) into a narrow region that k-means splits poorly, and training rarely repairs a
// level-1 codebook that started by merging clusters, since the next level absorbs the error.
double warmup_epoch(RqvaeNetImpl& net, const torch::Tensor& x, torch::optim::Optimizer& optimizer,
                    const RqvaeOptions& o, int epoch) {
  std::mt19937_64 rng(o.seed * 1000003ULL + 0x5bd1e995ULL + static_cast<uint64_t>(epoch));
  const torch::Tensor order = torch::tensor(shuffled(x.size(0), rng), torch::kInt64).to(x.device());
  double recon_sum = 0.0;
  int batches = 0;
  for (int64_t lo = 0; lo < x.size(0); lo += o.batch_size) {
    const torch::Tensor xb =
        x.index_select(0, order.slice(0, lo, std::min(x.size(0), lo + o.batch_size)));
    const torch::Tensor recon = torch::mse_loss(net.decoder->forward(net.encoder->forward(xb)), xb);
    optimizer.zero_grad();
    recon.backward();
    optimizer.step();
    recon_sum += recon.item<double>();
    ++batches;
  }
  return recon_sum / batches;
}

// Greedy matching inside one group: the closest (row, code) pairs first, each code and row at
// most once. Rows left over when the group is larger than the codebook keep their argmin code.
void match_group(const std::vector<int32_t>& group, const EmbeddingMatrix& residual,
                 const EmbeddingMatrix& book, Eigen::Index last, CodeMatrix* codes) {
  std::vector<std::tuple<float, int32_t, int32_t>> pairs;  // (distance, index in group, code)
  pairs.reserve(group.size() * static_cast<size_t>(book.rows()));
  for (size_t g = 0; g < group.size(); ++g)
    for (Eigen::Index c = 0; c < book.rows(); ++c)
      pairs.emplace_back((residual.row(group[g]) - book.row(c)).squaredNorm(),
                         static_cast<int32_t>(g), static_cast<int32_t>(c));
  std::sort(pairs.begin(), pairs.end());
  std::vector<bool> code_used(book.rows(), false), row_done(group.size(), false);
  size_t left = std::min<size_t>(group.size(), book.rows());
  for (const auto& [d, g, c] : pairs) {
    if (code_used[c] || row_done[g]) continue;
    code_used[c] = row_done[g] = true;
    (*codes)(group[g], last) = c;
    if (--left == 0) break;
  }
}

// Collision-aware last level (see the header): rows sharing their first L-1 codes form a group;
// groups whose argmin last codes collide are re-matched. Without a collision the matching would
// reproduce the argmin codes, so other groups are left alone.
void assign_unique_last_codes(const EmbeddingMatrix& residual, const EmbeddingMatrix& book,
                              CodeMatrix* codes) {
  const Eigen::Index last = codes->cols() - 1;
  std::vector<int32_t> order(codes->rows());
  std::iota(order.begin(), order.end(), 0);
  auto prefix_less = [&](int32_t a, int32_t b) {
    for (Eigen::Index l = 0; l < last; ++l)
      if ((*codes)(a, l) != (*codes)(b, l)) return (*codes)(a, l) < (*codes)(b, l);
    return a < b;
  };
  auto same_prefix = [&](int32_t a, int32_t b) {
    return (codes->row(a).head(last).array() == codes->row(b).head(last).array()).all();
  };
  std::sort(order.begin(), order.end(), prefix_less);
  for (size_t lo = 0; lo < order.size();) {
    size_t hi = lo + 1;
    while (hi < order.size() && same_prefix(order[lo], order[hi])) ++hi;
    const std::vector<int32_t> group(order.begin() + lo, order.begin() + hi);
    std::vector<int32_t> argmin_codes;
    for (int32_t row : group) argmin_codes.push_back((*codes)(row, last));
    std::sort(argmin_codes.begin(), argmin_codes.end());
    if (std::adjacent_find(argmin_codes.begin(), argmin_codes.end()) != argmin_codes.end())
      match_group(group, residual, book, last, codes);
    lo = hi;
  }
}

}  // namespace

struct Rqvae::Net {
  RqvaeNet model{nullptr};
  torch::Device device{torch::kCPU};
};

void RqvaeOptions::validate() const {
  if (levels < 1 || levels > 16)
    throw_input_error("rqvae.levels: must be in [1, 16], got {}", levels);
  if (codebook_size < 1 || codebook_size > (1 << 20))
    throw_input_error("rqvae.codebook_size: must be in [1, 1048576], got {}", codebook_size);
  if (latent_dim < 1) throw_input_error("rqvae.latent_dim: must be >= 1, got {}", latent_dim);
  for (int h : hidden)
    if (h < 1) throw_input_error("rqvae.hidden: every width must be >= 1, got {}", h);
  if (epochs < 1) throw_input_error("rqvae.epochs: must be >= 1, got {}", epochs);
  if (batch_size < 1) throw_input_error("rqvae.batch_size: must be >= 1, got {}", batch_size);
  if (!(lr > 0)) throw_input_error("rqvae.lr: must be > 0, got {}", lr);
  if (!(beta >= 0)) throw_input_error("rqvae.beta: must be >= 0, got {}", beta);
  if (warmup_epochs < 0)
    throw_input_error("rqvae.warmup_epochs: must be >= 0, got {}", warmup_epochs);
  if (kmeans_iterations < 1)
    throw_input_error("rqvae.kmeans_iterations: must be >= 1, got {}", kmeans_iterations);
  if (!(max_minutes >= 0))
    throw_input_error("rqvae.max_minutes: must be >= 0 (0 = no limit), got {}", max_minutes);
  if (threads < 0)
    throw_input_error("rqvae.threads: must be >= 0 (0 = all cores), got {}", threads);
}

nlohmann::json RqvaeOptions::to_json() const {
  return {{"levels", levels},
          {"codebook_size", codebook_size},
          {"latent_dim", latent_dim},
          {"hidden", hidden},
          {"epochs", epochs},
          {"batch_size", batch_size},
          {"lr", lr},
          {"beta", beta},
          {"warmup_epochs", warmup_epochs},
          {"kmeans_iterations", kmeans_iterations},
          {"reset_dead_codes", reset_dead_codes},
          {"unique_last_level", unique_last_level},
          {"max_minutes", max_minutes},
          {"seed", seed}};
}

RqvaeOptions RqvaeOptions::from_json(const nlohmann::json& j) {
  RqvaeOptions o;
  o.levels = j.value("levels", o.levels);
  o.codebook_size = j.value("codebook_size", o.codebook_size);
  o.latent_dim = j.value("latent_dim", o.latent_dim);
  o.hidden = j.value("hidden", o.hidden);
  o.epochs = j.value("epochs", o.epochs);
  o.batch_size = j.value("batch_size", o.batch_size);
  o.lr = j.value("lr", o.lr);
  o.beta = j.value("beta", o.beta);
  o.warmup_epochs = j.value("warmup_epochs", o.warmup_epochs);
  o.kmeans_iterations = j.value("kmeans_iterations", o.kmeans_iterations);
  o.reset_dead_codes = j.value("reset_dead_codes", o.reset_dead_codes);
  o.unique_last_level = j.value("unique_last_level", o.unique_last_level);
  o.max_minutes = j.value("max_minutes", o.max_minutes);
  o.seed = j.value("seed", o.seed);
  o.validate();
  return o;
}

nlohmann::json RqvaeTrainStats::to_json() const {
  return {{"epochs", epochs},
          {"seconds", seconds},
          {"time_limited", time_limited},
          {"warmup_recon_loss", warmup_recon_loss},
          {"final_recon_loss", recon_loss.empty() ? 0.0 : recon_loss.back()},
          {"final_vq_loss", vq_loss.empty() ? 0.0 : vq_loss.back()},
          {"dead_codes_reset", dead_codes_reset}};
}

Rqvae::Rqvae(RqvaeOptions options, std::string device)
    : options_(std::move(options)), device_(std::move(device)) {
  options_.validate();
}

Rqvae::~Rqvae() = default;
Rqvae::Rqvae(Rqvae&&) noexcept = default;
Rqvae& Rqvae::operator=(Rqvae&&) noexcept = default;

int Rqvae::codebook_size() const { return fitted() ? codebook_size_ : options_.codebook_size; }

void Rqvae::build(int input_dim, int codebook_size) {
  net_ = std::make_unique<Net>();
  net_->device = torch::Device(device_);
  net_->model = RqvaeNet(input_dim, options_, codebook_size);
  net_->model->to(net_->device);
  input_dim_ = input_dim;
  codebook_size_ = codebook_size;
}

void Rqvae::fit(const EmbeddingMatrix& embeddings) {
  if (embeddings.rows() == 0 || embeddings.cols() == 0)
    throw_input_error("rqvae: empty embedding matrix ({} x {})", embeddings.rows(),
                      embeddings.cols());
  if (!embeddings.allFinite())
    throw_input_error("rqvae: embeddings contain NaN or infinite values");
  int k = options_.codebook_size;
  if (k > embeddings.rows()) {
    spdlog::warn("rqvae: codebook_size {} > {} items; using {} codes per level", k,
                 embeddings.rows(), embeddings.rows());
    k = static_cast<int>(embeddings.rows());
  }
  const auto start = std::chrono::steady_clock::now();
  torch::manual_seed(options_.seed);
  build(static_cast<int>(embeddings.cols()), k);
  const torch::Tensor x = to_tensor(embeddings, net_->device);
  torch::optim::Adam optimizer(net_->model->parameters(), torch::optim::AdamOptions(options_.lr));
  stats_ = {};
  for (int epoch = 0; epoch < options_.warmup_epochs; ++epoch)
    stats_.warmup_recon_loss = warmup_epoch(*net_->model, x, optimizer, options_, epoch);
  init_codebooks(*net_->model, x, options_);
  Progress bar("rqvae epochs", static_cast<size_t>(options_.epochs), progress_);
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  for (int epoch = 0; epoch < options_.epochs; ++epoch) {
    train_epoch(*net_->model, x, optimizer, options_, epoch, &stats_);
    stats_.epochs = epoch + 1;
    bar.set_note(
        fmt::format("recon {:.5f} vq {:.5f}", stats_.recon_loss.back(), stats_.vq_loss.back()));
    bar.tick();
    if (options_.max_minutes > 0 && elapsed() > options_.max_minutes * 60.0) {
      stats_.time_limited = epoch + 1 < options_.epochs;
      break;
    }
  }
  bar.finish();
  stats_.seconds = elapsed();
  spdlog::info("rqvae: {} epochs in {:.1f} s{}, recon MSE {:.6f}, {} dead codes re-seeded",
               stats_.epochs, stats_.seconds, stats_.time_limited ? " (time limit)" : "",
               stats_.recon_loss.back(), stats_.dead_codes_reset);
}

CodeMatrix Rqvae::encode(const EmbeddingMatrix& embeddings) const {
  EmbeddingMatrix last_residual;
  CodeMatrix codes = nearest_codes(embeddings, &last_residual);
  if (options_.unique_last_level)
    assign_unique_last_codes(last_residual, codebook(levels() - 1), &codes);
  return codes;
}

CodeMatrix Rqvae::encode_nearest(const EmbeddingMatrix& embeddings) const {
  return nearest_codes(embeddings, nullptr);
}

CodeMatrix Rqvae::nearest_codes(const EmbeddingMatrix& embeddings,
                                EmbeddingMatrix* last_residual) const {
  if (!fitted()) throw_error("rqvae: encode() before fit() or load()");
  if (embeddings.cols() != input_dim_)
    throw_input_error("rqvae: embeddings have {} dims, the model {}", embeddings.cols(),
                      input_dim_);
  torch::NoGradGuard no_grad;
  auto& net = *net_->model;
  CodeMatrix codes(embeddings.rows(), levels());
  if (last_residual) last_residual->resize(embeddings.rows(), options_.latent_dim);
  for (Eigen::Index lo = 0; lo < embeddings.rows(); lo += kEncodeChunk) {
    const Eigen::Index rows = std::min<Eigen::Index>(kEncodeChunk, embeddings.rows() - lo);
    const EmbeddingMatrix chunk = embeddings.middleRows(lo, rows);
    const Quantized q =
        quantize(net.encoder->forward(to_tensor(chunk, net_->device)), net.codebooks, 0.0, false);
    const torch::Tensor c = q.codes.to(torch::kCPU, torch::kInt32).contiguous();
    std::memcpy(codes.row(lo).data(), c.data_ptr<int32_t>(),
                sizeof(int32_t) * static_cast<size_t>(rows * levels()));
    if (last_residual) last_residual->middleRows(lo, rows) = to_matrix(q.residuals.back());
  }
  return codes;
}

EmbeddingMatrix Rqvae::reconstruct(const EmbeddingMatrix& embeddings) const {
  if (!fitted()) throw_error("rqvae: reconstruct() before fit() or load()");
  if (embeddings.cols() != input_dim_)
    throw_input_error("rqvae: embeddings have {} dims, the model {}", embeddings.cols(),
                      input_dim_);
  torch::NoGradGuard no_grad;
  auto& net = *net_->model;
  const Quantized q = quantize(net.encoder->forward(to_tensor(embeddings, net_->device)),
                               net.codebooks, 0.0, false);
  return to_matrix(net.decoder->forward(q.z_q));
}

EmbeddingMatrix Rqvae::codebook(int level) const {
  if (!fitted()) throw_error("rqvae: codebook() before fit() or load()");
  return to_matrix(net_->model->codebooks.at(static_cast<size_t>(level)));
}

void Rqvae::save(const fs::path& dir) const {
  if (!fitted()) throw_error("rqvae: save() before fit()");
  fs::create_directories(dir);
  save_torch_atomic(dir / kWeightsFile, net_->model);
  const nlohmann::json config = {
      {"format", kFormatTag},          {"format_version", kFormatVersion},
      {"input_dim", input_dim_},       {"codebook_size", codebook_size_},
      {"options", options_.to_json()}, {"train", stats_.to_json()}};
  write_file_atomic(dir / kConfigFile, config.dump(2) + "\n");
}

Rqvae Rqvae::load(const fs::path& dir, const std::string& device) {
  const fs::path config_path = dir / kConfigFile;
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(read_file(config_path));
    if (config.value("format", "") != kFormatTag)
      throw_input_error("{}: not an RQ-VAE config (format tag)", config_path.string());
    if (config.at("format_version").get<int>() > kFormatVersion)
      throw_input_error("{}: format version {} is newer than this build supports ({})",
                        config_path.string(), config.at("format_version").get<int>(),
                        kFormatVersion);
    Rqvae model(RqvaeOptions::from_json(config.at("options")), device);
    model.build(config.at("input_dim").get<int>(), config.at("codebook_size").get<int>());
    torch::load(model.net_->model, (dir / kWeightsFile).string(), model.net_->device);
    model.stats_.epochs = config.at("train").value("epochs", 0);
    model.stats_.seconds = config.at("train").value("seconds", 0.0);
    return model;
  } catch (const nlohmann::json::exception& e) {
    throw_input_error("{}: malformed RQ-VAE config: {}", config_path.string(), e.what());
  } catch (const c10::Error& e) {
    throw_input_error("{}: cannot read RQ-VAE weights: {}", (dir / kWeightsFile).string(),
                      e.what_without_backtrace());
  }
}

}  // namespace twistar
