// Training the reasoning LM behind think_and_rec (agent/think_and_rec.h).
//
// Training (train_reasoner), stage by stage, each resumable, each starting from the one before:
//   align        item alignment: no history, an item's text ("item: <name>. category: ... brand:
//                ...") as the rationale, its SID as the target (text -> SID, and text modelling);
//   commonsense  the collaborative-commonsense corpus (run/knowledge/corpus.jsonl): item a as
//                context, an explanation of the pair as the rationale, b as the target;
//   reasoning    SFT on training prefixes: the history, the rationale built by RationaleBuilder from
//                the target's categories and brand and the knowledge linking the history to it, the
//                target. Early-stopped on think_and_rec's validation NDCG@10. The SID is trained
//                after the model's own greedy rationale (self_condition), as at inference.
// Every stage is scored on the same validation users; the final model is the best stage's (a stage
// that lowers validation NDCG@10 is reported and not kept).
// The LM starts from the run's fast_rec model (run/sidgen): its history encoder and its SID code
// embeddings. Everything it reads is computed from training parts (run/knowledge); validation
// targets only score the early stopping.
//
// Run directory: run/<name>/{align,commonsense,reasoning}/ (each a training-loop stage directory),
// run/<name>/model.pt (the kept weights) and run/<name>/manifest.json (written last) with the
// options, the vocabulary, the stages' metrics and the kept stage. The tokenizer is
// run/knowledge/tokenizer.model (its hash is in the manifest).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "agent/think_and_rec.h"
#include "core/context.h"
#include "data/dataset.h"
#include "graph/item_knowledge.h"
#include "models/reasoner.h"
#include "models/sid_generator.h"
#include "models/training_loop.h"
#include "sid/sid_map.h"
#include "text/sp_tokenizer.h"

namespace twistar {

/// The training rationale of a history and its target, from the data only: the target's category
/// (its last two levels) and brand, and the strongest knowledge link from one of the history's last
/// items to the target (its Swing strength tier, how many items back, and whether the two share a
/// brand, a leaf category or only a top category). Example:
///   "next: Nails > Nail Polish. brand: OPI. link: strong, 1 back, same brand."
class RationaleBuilder {
 public:
  /// `recent`: how many of the history's last items may be the linked one.
  RationaleBuilder(const Dataset& data, const ItemKnowledge& knowledge, int64_t recent);
  std::string build(const Sequence& history, ItemIndex target) const;
  /// "item: <name>. category: <path>. brand: <brand>." (the alignment stage's text).
  std::string describe(ItemIndex item) const;

 private:
  struct Link {
    std::string strength;
    bool same_brand = false;
    int32_t shared_categories = 0;
  };
  const Dataset& data_;
  int64_t recent_;
  std::map<std::pair<ItemIndex, ItemIndex>, Link> links_;
};

struct ReasonerTrainOptions {
  ReasonerOptions model;
  /// The reasoning stage's optimiser and stopping rules (the align and commonsense stages use the
  /// same learning rate and batch size with their own epoch counts).
  TrainOptions train = default_train();
  int align_epochs = 1;
  int commonsense_epochs = 1;
  /// Run the commonsense stage (off: the ablation without collaborative commonsense).
  bool commonsense = true;
  /// Train with rationales (off: the ablation that writes the SID right after the history).
  bool rationale = true;
  /// Train the SID after the model's own greedy rationale (the rationale itself on the gold one).
  /// Without it the SID learns to trust the gold rationale, which carries the target's category:
  /// on Beauty validation NDCG@10 fell from 0.0466 to 0.0310 in the first epoch.
  bool self_condition = true;
  /// Training prefixes per user and epoch: the last training target and randomly drawn earlier ones.
  int64_t prefixes_per_user = 1;
  /// Explanations per pair and epoch in the commonsense stage (cycling through the corpus's).
  int64_t explanations_per_pair = 1;
  /// Validation users for early stopping (evenly spaced; 0 = all) and the search's beam.
  int64_t valid_users = 1024;
  int64_t valid_beam = 20;
  void validate() const;
  nlohmann::json to_json() const;

 private:
  static TrainOptions default_train() {
    TrainOptions t;
    t.lr = 1e-3;
    t.batch_size = 128;
    t.epochs = 4;
    t.patience = 1;
    t.lr_patience = 1;
    return t;
  }
};

struct ReasonerTrainResult {
  /// Validation NDCG@10 after each stage that ran ("align", "commonsense", "reasoning").
  std::map<std::string, double> valid_ndcg10;
  /// fast_rec's validation NDCG@10 on the same users (the warm start).
  double fast_valid_ndcg10 = 0;
  std::map<std::string, double> seconds;
  int best_epoch = 0;
  std::vector<double> curve;
  /// The stage whose weights were kept (the best on validation; "fast_rec" when none beat it).
  std::string kept_stage;
  bool finished = false;
};

/// Trains the reasoning LM into `dir` from the run's fast_rec model `base` (copied, not changed),
/// the SIDs, the tokenizer and the knowledge directory (knowledge.tsv, corpus.jsonl).
ReasonerTrainResult train_reasoner(const Dataset& data, const SidGenerator& base, const SidMap& sids,
                                   const SpTokenizer& tokenizer, const std::filesystem::path& knowledge_dir,
                                   const ReasonerTrainOptions& options, const Context& ctx,
                                   const std::filesystem::path& dir, const TrainControl& control = {});

}  // namespace twistar
