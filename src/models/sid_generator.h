// The SID generator behind fast_rec: reads a user's history as semantic-ID tokens and writes the next
// item's SID one code at a time.
//
// Shape (decoder-only, two parts):
//   history encoder  a causal pre-LN transformer over the history. With `history_tokens = item` each
//                    history item is ONE token, the sum of its code embeddings (L levels); with `code`
//                    each item contributes L tokens (code embedding + level embedding), as in TIGER.
//                    Either way it yields h_t, a summary after every history item t.
//   code decoder     a small causal transformer over [h_t, e(c_1), ..., e(c_{L-1})]; the output at
//                    token l scores level l's codebook with the (tied) level-l code embeddings.
// Training scores every target of every training sequence in one pass (teacher forcing): the
// encoder runs once per sequence and the decoder over L tokens per position. At inference the
// encoder runs once per request and beam search drives the decoder through `LevelDecoder::step`
// with a KV cache of at most L tokens.
//
// Vocabulary: B batch, T history length (items), L SID levels, K_l codes at level l, D width,
// P training positions.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "data/dataset.h"
#include "models/training_loop.h"
#include "nn/level_decoder.h"
#include "nn/transformer.h"
#include "sid/sid_types.h"

namespace twistar {

struct SidGeneratorOptions {
  /// Model width (128 beat 64 on Beauty validation: 0.0543 against 0.0493 NDCG@10).
  int64_t dim = 128;
  /// History-encoder blocks.
  int64_t layers = 2;
  /// Attention heads (encoder and decoder).
  int64_t heads = 2;
  /// Code-decoder blocks.
  int64_t decoder_layers = 1;
  /// Dropout on embeddings and residual branches.
  double dropout = 0.4;
  /// Dropout on attention weights.
  double attn_dropout = 0.2;
  /// History length the model reads, in items (longer histories keep their last items).
  int64_t max_len = 50;
  /// History tokens: item (one token per item, the sum of its code embeddings) | code (one per code).
  std::string history_tokens = "item";
  /// Add a learned per-item embedding to each history item's token (memorises item identity
  /// beyond its codes; costs num_items x dim parameters).
  bool item_id_input = true;
  /// Normalise each level's softmax over the codes that continue a real SID (the prefix trie's
  /// children) in training and search, so P(SID) is a distribution over items only; off = over the
  /// whole codebook, as TIGER does.
  bool constrained_softmax = true;

  /// Optimiser, batches and stopping rules.
  TrainOptions train;
  /// Validation users for early stopping (evenly spaced; 0 = all).
  int64_t valid_users = 4096;
  /// Beam width of the validation beam search.
  int64_t valid_beam = 20;

  /// Throws InputError naming the bad field.
  void validate() const;
  nlohmann::json to_json() const;
  static SidGeneratorOptions from_json(const nlohmann::json& j);
};

class SidGeneratorImpl : public torch::nn::Module, public LevelDecoder {
 public:
  /// `sids` [num_items x L]: row i is item i's SID; `level_sizes` has L entries (K_l).
  SidGeneratorImpl(const CodeMatrix& sids, const std::vector<int32_t>& level_sizes,
                   const SidGeneratorOptions& options);

  /// items [B, T] item indices, right-padded with -1 -> summaries h [B, T, D] after each item.
  /// `extra` [B, T, D] (optional, item tokens only) is added to each history token's embedding:
  /// how the reasoning LM feeds in the items' text.
  torch::Tensor encode(const torch::Tensor& items, const torch::Tensor& extra = {});
  /// Summary after each history's last item: [B, D]. `lengths` [B] (>= 1).
  torch::Tensor encode_last(const torch::Tensor& items, const torch::Tensor& lengths);
  /// Teacher-forced log-probabilities of each target item's codes: h [P, D], items [P] -> [P, L].
  torch::Tensor code_log_probs(const torch::Tensor& h, const torch::Tensor& items);
  /// The SID log-probability (summed over levels) of items[p] after the summary h[rows[p]] ([B, D]),
  /// one float per pair on the CPU: how a beam scores an item, for items it did not find.
  std::vector<float> item_log_probs(const torch::Tensor& h, const std::vector<int64_t>& rows,
                                    const std::vector<int64_t>& items);
  /// Mean over positions of -log P(target SID) (summed over levels): the training loss.
  /// items, targets [B, T] item indices, -1 = padding.
  torch::Tensor loss(const torch::Tensor& items, const torch::Tensor& targets);

  /// The decoding state of B requests: context = {h [B, D]}, empty cache.
  DecoderState start(const torch::Tensor& h_last) const;

  // LevelDecoder
  int64_t num_levels() const override { return static_cast<int64_t>(level_sizes_.size()); }
  int64_t level_size(int64_t level) const override { return level_sizes_[level]; }
  torch::Tensor step(int64_t level, const torch::Tensor& previous, DecoderState& state) override;
  bool renormalize_over_valid() const override { return options_.constrained_softmax; }

  /// The level-l code embedding table [K_l, D] (its rows are also level l's output weights).
  const torch::Tensor& code_weight(int64_t level) const { return code_emb_[level]->weight; }
  /// [P, K_l] bool: which level-l codes continue the SID prefix of each item in `items` [P] to a real
  /// SID (the constrained softmax's support when teacher-forcing those items).
  torch::Tensor valid_codes(int64_t level, const torch::Tensor& items) const;
  /// Item SIDs as the model knows them [num_items, L] (a saved buffer).
  const torch::Tensor& sids() const { return sids_; }
  int64_t num_items() const { return sids_.size(0); }
  int64_t max_len() const { return options_.max_len; }
  const SidGeneratorOptions& options() const { return options_; }

 private:
  torch::Tensor code_embedding(int64_t level, const torch::Tensor& codes);
  torch::Tensor decode(const torch::Tensor& x, KVCache* cache);

  SidGeneratorOptions options_;
  std::vector<int64_t> level_sizes_;
  double scale_;
  torch::Tensor sids_;
  // prefix_id_[i][l]: which distinct prefix (c_0..c_{l-1}) item i has at level l (row of
  // child_mask_[l]); child_mask_[l][p][c]: code c continues prefix p to a real SID.
  torch::Tensor prefix_id_;
  std::vector<torch::Tensor> child_mask_;
  std::vector<torch::nn::Embedding> code_emb_;
  torch::nn::Embedding level_emb_{nullptr}, pos_emb_{nullptr}, dec_pos_emb_{nullptr};
  torch::nn::Embedding item_emb_{nullptr};
  torch::nn::Dropout emb_drop_{nullptr};
  TransformerStack encoder_{nullptr}, decoder_{nullptr};
};
TORCH_MODULE(SidGenerator);

/// Right-padded item tensors (-1 = pad) and lengths from histories, each truncated to its last
/// max_len items; an empty history gets length 1 and one padding token.
void pack_item_histories(const std::vector<Sequence>& histories, int64_t max_len,
                         torch::Tensor& items, torch::Tensor& lengths);

}  // namespace twistar
