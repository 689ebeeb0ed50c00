// RQ-VAE semantic-ID tokenizer (residual-quantised autoencoder, Lee et al. 2022; the tokenizer of
// TIGER, Rajput et al. 2023). An MLP encoder maps an item embedding x to a latent z; L residual
// codebooks quantise z (level 1 quantises z, level l what levels < l left unexplained); an MLP
// decoder reconstructs x from the sum of the chosen codes. An item's codes are its argmin at every
// level, as in residual k-means, but the latent space is learned so that the codes reconstruct x.
//
// Training loss per batch: MSE(decoder(z_q), x) + mean over levels of
//   ||sg[r_l] - e_l||²  (codebook loss: moves the chosen code towards its residuals) +
//   beta ||r_l - sg[e_l]||²  (commitment loss: keeps the encoder near its codes),
// where sg stops gradients and z_q = z + sg[sum_l e_l - z] is the straight-through estimator: the
// decoder's gradient reaches the encoder as if quantisation were the identity.
//
// Codebooks start as residual k-means of the latents of all items after a few epochs of plain
// autoencoder training (random codebooks leave most codes unused from the first step; the latents
// of a random encoder separate the items poorly). After every epoch, codes that no item chose
// during it are re-seeded from random residuals of that epoch's last batch (dead-code reset), so
// codebooks stay fully used.
//
// Collision-aware last level (option unique_last_level): encode() gives the items that share their
// first L-1 codes distinct last codes where the group is no larger than K, by a greedy matching on
// distance (closest (item, code) pairs first). Every item still gets a nearby last code, but
// encode() of a set of items then depends on the set, not only on each row; the SID stage always
// encodes the whole catalogue at once.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "sid/tokenizer.h"

namespace twistar {

struct RqvaeOptions {
  /// Code levels L.
  int levels = 3;
  /// Codes per level K (capped at the number of items, as in residual k-means).
  int codebook_size = 256;
  /// Width of the latent that the codebooks quantise.
  int latent_dim = 32;
  /// Hidden layer widths of the encoder (the decoder mirrors them).
  std::vector<int> hidden = {256, 128};
  /// Maximum training epochs (passes over the items). 400 on Beauty's 12k hybrid embeddings take
  /// about 100 s on one core of the reference VM; collisions barely change beyond ~300.
  int epochs = 400;
  /// Items per Adam step.
  int batch_size = 1024;
  /// Adam learning rate.
  double lr = 1e-3;
  /// Weight of the commitment loss.
  double beta = 0.25;
  /// Epochs of plain autoencoder training (no quantisation) before the k-means initialisation.
  int warmup_epochs = 20;
  /// Lloyd iterations of the k-means codebook initialisation, per level.
  int kmeans_iterations = 20;
  /// Re-seed codes unused over an epoch (see the header comment).
  bool reset_dead_codes = true;
  /// Distinct last codes among items sharing their first L-1 codes (see the header comment).
  bool unique_last_level = false;
  /// Stop training once it has used this many minutes (0 = no limit).
  double max_minutes = 5.0;
  /// Seed of the initialisation, the k-means and the batch order.
  uint64_t seed = 42;
  /// Threads for the k-means initialisation (0 = all hardware threads); torch's own intra-op
  /// threads come from the Context the caller applied.
  int threads = 0;

  /// Throws InputError naming the bad field.
  void validate() const;
  nlohmann::json to_json() const;
  /// Missing fields keep their defaults.
  static RqvaeOptions from_json(const nlohmann::json& j);
};

/// What one fit() did.
struct RqvaeTrainStats {
  int epochs = 0;
  double seconds = 0.0;
  /// True when max_minutes ended training before `epochs`.
  bool time_limited = false;
  /// Reconstruction MSE of the last warm-up epoch (0 without warm-up).
  double warmup_recon_loss = 0.0;
  /// Mean reconstruction MSE per epoch (training mode, codes as chosen during the epoch).
  std::vector<double> recon_loss;
  /// Mean codebook + commitment loss per epoch.
  std::vector<double> vq_loss;
  /// Codes re-seeded by the dead-code reset, summed over epochs and levels.
  int64_t dead_codes_reset = 0;

  nlohmann::json to_json() const;
};

class Rqvae : public SidTokenizer {
 public:
  /// Files written by save() inside its directory.
  static constexpr const char* kWeightsFile = "rqvae.pt";
  static constexpr const char* kConfigFile = "rqvae.json";
  static constexpr int kFormatVersion = 1;

  /// `device`: "cpu" or "cuda[:N]" (see Context::device).
  explicit Rqvae(RqvaeOptions options = {}, std::string device = "cpu");
  ~Rqvae() override;
  Rqvae(Rqvae&&) noexcept;
  Rqvae& operator=(Rqvae&&) noexcept;

  std::string name() const override { return "rqvae"; }
  void fit(const EmbeddingMatrix& embeddings) override;
  CodeMatrix encode(const EmbeddingMatrix& embeddings) const override;
  /// Writes kWeightsFile (torch::save) and kConfigFile (options, dimensions), atomically.
  void save(const std::filesystem::path& dir) const override;
  int levels() const override { return options_.levels; }
  int codebook_size() const override;

  /// Codes by argmin at every level, without the unique_last_level matching (what encode() gives
  /// with that option off); rows are encoded independently.
  CodeMatrix encode_nearest(const EmbeddingMatrix& embeddings) const;
  /// Decoder output for the codes that encode() would give (codes chosen by argmin), [rows x d].
  EmbeddingMatrix reconstruct(const EmbeddingMatrix& embeddings) const;
  /// Codebook of one level, [K x latent_dim].
  EmbeddingMatrix codebook(int level) const;
  /// Dimension of the embeddings it was fitted on (0 before fit).
  int dim() const { return input_dim_; }
  bool fitted() const { return input_dim_ > 0; }
  const RqvaeOptions& options() const { return options_; }
  /// After load(), only epochs and seconds are restored.
  const RqvaeTrainStats& train_stats() const { return stats_; }
  /// Show a progress bar over epochs during fit() (default on; Progress::set_quiet silences all).
  void set_progress(bool enabled) { progress_ = enabled; }

  /// Reads a directory written by save(); throws InputError naming the file when it is missing,
  /// malformed or from a newer format version.
  static Rqvae load(const std::filesystem::path& dir, const std::string& device = "cpu");

 private:
  struct Net;
  // A fresh network for `input_dim` (weights from torch's global RNG, seeded by fit()).
  void build(int input_dim, int codebook_size);
  // Argmin codes; fills `last_residual` (the last level's input, [rows x latent]) when not null.
  CodeMatrix nearest_codes(const EmbeddingMatrix& embeddings, EmbeddingMatrix* last_residual) const;

  RqvaeOptions options_;
  std::string device_;
  int input_dim_ = 0;
  int codebook_size_ = 0;
  std::unique_ptr<Net> net_;
  RqvaeTrainStats stats_;
  bool progress_ = true;
};

}  // namespace twistar
