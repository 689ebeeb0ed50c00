// The slow path's reasoning LM: reads a history, writes a rationale `<think> ... </think>` in text,
// then the next item's SID.
//
// Shape (one causal stack, text then SID):
//   history   the SID generator's history encoder (models/sid_generator.h; warm-started from the
//             run's fast_rec model and fine-tuned), one token per item, to which the item's short text
//             is added (the mean of its first name pieces' embeddings, through a projection that
//             starts at zero so the warm start is exact). Its outputs at the last K items are the
//             first K tokens of the LM's sequence (the *context*; oldest first, missing ones masked).
//   LM        a causal pre-LN transformer over  [ctx_1 .. ctx_K] <think> r_1 .. r_n </think>
//             (r: SentencePiece text pieces, text/sp_tokenizer.h; input and output embeddings tied).
//   SID       the SID generator's code decoder writes c_0 .. c_{L-1} after </think>: its prefix token
//             is h_t + W o, h_t the encoder's summary after the last history item and o the LM's
//             output at </think> (W starts at zero). So the SID is conditioned on the history and,
//             through o, on the rationale the LM wrote; before training it is exactly fast_rec, and
//             the SID softmax is fast_rec's trie-constrained one (a distribution over items).
// Every training stage uses this one format: item alignment (no history, the item's text as the
// "rationale", its SID as the target: text -> SID), commonsense (item a as the history, an
// explanation of the pair as the rationale, b as the target) and reasoning SFT (a history, the
// rationale built from the target's categories and the knowledge linking the history to it, the
// target). Rationales of the reasoning format are written over their own vocabulary (the pieces
// its training rationales use); alignment and commonsense text over all text pieces.
//
// Vocabulary: B batch, K context slots, S LM sequence length, n rationale pieces, L SID levels,
// V vocabulary, D width.
#pragma once
#include <nlohmann/json.hpp>
#include <torch/torch.h>
#include <string>
#include <vector>
#include "models/sid_generator.h"
#include "models/token_grammar.h"
#include "nn/level_decoder.h"

namespace twistar {

/// The token ids the LM needs from its tokenizer (saved with the model).
struct ReasonerVocab {
  int64_t size = 0;
  int64_t think = -1;
  int64_t think_end = -1;
  int64_t pad = 0;
  /// Ids text may contain: plain text pieces (no SID or special token); </think> ends it.
  std::vector<int64_t> text_ids;
  /// The reasoning format's rationale pieces (a subset of text_ids; empty = all of them).
  std::vector<int64_t> rationale_ids;
  nlohmann::json to_json() const;
  static ReasonerVocab from_json(const nlohmann::json& j);
};

struct ReasonerOptions {
  /// LM blocks (the width and heads are the SID generator's).
  int64_t layers = 2;
  double dropout = 0.2;
  double attn_dropout = 0.1;
  /// History items the LM sees as context tokens (the newest K).
  int64_t context_items = 8;
  /// Text pieces of each history item's name added to its history token.
  int64_t item_text_pieces = 8;
  /// Longest rationale the LM writes or trains on, in pieces (training text is cut to this).
  int64_t max_rationale = 32;
  /// Weight of the rationale tokens' loss beside the SID's.
  double rationale_weight = 0.5;
  /// Throws InputError naming the bad field.
  void validate() const;
  nlohmann::json to_json() const;
  static ReasonerOptions from_json(const nlohmann::json& j);
};

/// One training example: a history (oldest first), the rationale's text pieces, the target item.
struct ReasonerExample {
  Sequence history;
  std::vector<int> rationale;
  ItemIndex target = 0;
};

/// Generated rationales: token ids per row (</think> excluded) and their log-probabilities.
struct Rationales {
  std::vector<std::vector<int>> tokens;
  std::vector<double> log_probs;
};

class ReasonerImpl : public torch::nn::Module {
 public:
  /// `base` is the history encoder (and the source of the SID token embeddings' warm start);
  /// `item_text` [num_items, item_text_pieces] long holds each item's name pieces, -1 = padding.
  ReasonerImpl(SidGenerator base, const ReasonerVocab& vocab, const torch::Tensor& item_text,
               const ReasonerOptions& options);
  /// Mean loss of a batch: SID negative log-likelihood (summed over levels) plus
  /// rationale_weight x the rationale tokens' mean negative log-likelihood. `reasoning` scores the
  /// rationale over the reasoning format's vocabulary (else over all text pieces). Also returns the
  /// two parts.
  torch::Tensor loss(const std::vector<ReasonerExample>& batch, bool reasoning, double* sid_nll = nullptr,
                     double* text_nll = nullptr);
  /// The two parts of loss(): SID negative log-likelihood (summed over levels, mean over rows) and the
  /// rationale tokens' mean negative log-likelihood.
  std::pair<torch::Tensor, torch::Tensor> losses(const std::vector<ReasonerExample>& batch, bool reasoning);
  /// Starts decoding B histories: encodes them and runs [ctx] <think> through the LM.
  /// State context: key validity [B, T], next position [B], last output [B, D], h_t [B, D].
  DecoderState start(const std::vector<Sequence>& histories);
  /// Writes each row's rationale (reasoning vocabulary): greedy when temperature <= 0, else sampled,
  /// row i from its own generator seeded by seeds[i] (so a row's rationale does not depend on the
  /// rows beside it). `grammar` (may be null) restricts every step to the pieces it allows (its
  /// end-of-text id is </think>). Leaves the state just before </think>.
  Rationales write_rationale(DecoderState& state, double temperature, const std::vector<uint64_t>& seeds = {},
                             const TokenGrammar* grammar = nullptr);
  /// Feeds </think> and returns the SID search's start state (the code decoder's prefix h_t + W o).
  DecoderState finish_thought(DecoderState& state);

  SidGenerator& base() { return base_; }
  const ReasonerVocab& vocab() const { return vocab_; }
  const ReasonerOptions& options() const { return options_; }

 private:
  /// Context tokens [B, K, D] and their validity [B, K] for histories.
  /// and h_t [B, D], the encoder's summary after each history's last item.
  void context(const std::vector<Sequence>& histories, torch::Tensor& ctx, torch::Tensor& valid,
               torch::Tensor& h_last);
  /// Runs tokens [N] (one per row) through the LM with the cache; returns outputs [N, D].
  /// `live` [N] bool marks rows whose token is real (others are masked out for all later steps).
  torch::Tensor feed(const torch::Tensor& tokens, DecoderState& state, const torch::Tensor& live);
  torch::Tensor embed_tokens(const torch::Tensor& ids);
  /// Log-probabilities over `ids` (a subset of the vocabulary) of LM outputs [N, D].
  torch::Tensor text_log_probs(const torch::Tensor& out, const torch::Tensor& ids);

  SidGenerator base_{nullptr};
  ReasonerVocab vocab_;
  ReasonerOptions options_;
  double scale_;
  /// Ids (+ </think>) of all text and of the reasoning format's rationales.
  torch::Tensor item_text_, text_ids_, rationale_ids_;
  torch::nn::Embedding tok_emb_{nullptr}, pos_emb_{nullptr}, recency_emb_{nullptr};
  torch::nn::Linear text_proj_{nullptr}, thought_proj_{nullptr};
  torch::nn::Dropout drop_{nullptr};
  TransformerStack lm_{nullptr};
};
TORCH_MODULE(Reasoner);

}  // namespace twistar
