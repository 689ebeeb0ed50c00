// The `knowledge` stage: item-to-item knowledge from training parts -> collaborative-commonsense
// corpus -> SentencePiece tokenizer with SID tokens, the data side of the slow reasoning model.
//
// run/knowledge/ holds knowledge.tsv (the strong pairs, graph/item_knowledge.h), corpus.jsonl (one
// explanation per line, text/explanations.h), tokenizer.model (text/sp_tokenizer.h; SID tokens sized
// by run/sid/sid_map.json), item_facts.tsv (each item's category tail and brand, what think_and_rec's
// grounding checks rationales against: agent/grounding.h) and manifest.json (written last: its
// presence marks a finished stage).
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>

#include "core/context.h"
#include "data/dataset.h"
#include "graph/item_knowledge.h"
#include "text/chat_explainer.h"
#include "text/explanations.h"
#include "text/sp_tokenizer.h"

namespace twistar {

struct KnowledgeStageOptions {
  KnowledgeOptions knowledge;
  ExplanationOptions explain;
  /// Optional chat endpoint that writes the explanations instead of the templates.
  ChatOptions chat;
  SpTokenizerOptions tokenizer;

  void validate() const;
  nlohmann::json to_json() const;
};

struct KnowledgeStageOutcome {
  /// Counts and timings (also the manifest's metrics).
  nlohmann::json stats;
  bool skipped = false;
  double seconds = 0.0;
};

/// Runs the stage into run_dir/knowledge unless a finished stage with the same config and inputs
/// (data, item metadata, SID map) is there; `force` reruns regardless. The seed of the phrasings and
/// the tokenizer comes from ctx.seed, Swing's threads from ctx. Throws InputError when run_dir has no
/// SID map ("run `twistar sid` first") or it was built for another number of items.
KnowledgeStageOutcome run_knowledge_stage(const Dataset& data, const KnowledgeStageOptions& options,
                                          const Context& ctx, const std::filesystem::path& run_dir,
                                          bool force = false);

/// A digest of every item's text fields (the stage's explanations depend on them).
std::string item_meta_fingerprint(const Dataset& data);

}  // namespace twistar
