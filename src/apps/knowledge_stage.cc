#include "apps/knowledge_stage.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>

#include "agent/grounding.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/manifest.h"
#include "sid/sid_map.h"

namespace twistar {
namespace fs = std::filesystem;
namespace {

constexpr const char* kStage = "knowledge";
constexpr const char* kFiles[] = {"knowledge.tsv", "corpus.jsonl", "tokenizer.model"};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

fs::path sid_map_path(const fs::path& run_dir) { return run_dir / "sid" / "sid_map.json"; }

SidMap require_sid_map(const Dataset& data, const fs::path& run_dir) {
  const fs::path path = sid_map_path(run_dir);
  if (!fs::exists(path))
    throw_input_error("{}: missing; the tokenizer needs the SID levels: run `twistar sid --run {}` "
                      "first",
                      path.string(), run_dir.string());
  SidMap map = SidMap::load(path);
  if (map.num_items() != data.num_items())
    throw_input_error("{}: has {} items but the dataset has {}; rerun `twistar sid` on this data",
                      path.string(), map.num_items(), data.num_items());
  return map;
}

bool outputs_exist(const fs::path& dir) {
  for (const char* f : kFiles)
    if (!fs::exists(dir / f)) return false;
  return true;
}

// Options with the context's seed and threads filled in.
KnowledgeStageOptions effective(KnowledgeStageOptions o, const Context& ctx) {
  o.knowledge.swing.threads = ctx.resolved_threads();
  o.explain.seed = ctx.seed;
  o.tokenizer.seed = static_cast<uint32_t>(ctx.seed);
  return o;
}

std::vector<std::string> tokenizer_texts(const Dataset& data, const Corpus& corpus) {
  std::vector<std::string> texts;
  texts.reserve(data.items.size() + corpus.explanations.size());
  for (const ItemMeta& item : data.items)
    if (!item.empty()) texts.push_back(item.text());
  for (const Explanation& e : corpus.explanations) texts.push_back(e.text);
  return texts;
}

}  // namespace

void KnowledgeStageOptions::validate() const {
  knowledge.validate();
  explain.validate();
  chat.validate();
  tokenizer.validate();
}

nlohmann::json KnowledgeStageOptions::to_json() const {
  nlohmann::json explain_json = explain.to_json();
  explain_json.erase("seed");  // the stage records ctx.seed once
  nlohmann::json tokenizer_json = tokenizer.to_json();
  tokenizer_json.erase("seed");
  return {{"knowledge", knowledge.to_json()},
          {"explain", explain_json},
          {"chat", chat.to_json()},
          {"tokenizer", tokenizer_json}};
}

std::string item_meta_fingerprint(const Dataset& data) {
  uint64_t h = fnv1a64("");
  for (const ItemMeta& m : data.items) {
    for (const std::string* field : {&m.title, &m.brand, &m.description, &m.short_text})
      h = fnv1a64(*field + '\x1e', h);
    for (const std::string& c : m.categories) h = fnv1a64(c + '\x1f', h);
    h = fnv1a64("\x1d", h);
  }
  return fmt::format("{:016x}", h);
}

KnowledgeStageOutcome run_knowledge_stage(const Dataset& data, const KnowledgeStageOptions& options,
                                          const Context& ctx, const fs::path& run_dir, bool force) {
  options.validate();
  const SidMap map = require_sid_map(data, run_dir);
  const fs::path dir = run_dir / kStage;
  nlohmann::json config = options.to_json();
  config["seed"] = ctx.seed;
  const std::map<std::string, std::string> inputs = {{"data", data.fingerprint()},
                                                     {"item_meta", item_meta_fingerprint(data)},
                                                     {"sid_map", hash_file(sid_map_path(run_dir))}};
  KnowledgeStageOutcome out;
  if (!force && stage_is_current(dir, kStage, config, inputs) && outputs_exist(dir)) {
    spdlog::info("knowledge: {} is up to date; reusing it", dir.string());
    // Runs made before the stage wrote the item facts get them without redoing the rest.
    if (!fs::exists(dir / "item_facts.tsv")) ItemFacts::from_dataset(data).save(dir / "item_facts.tsv");
    const auto m = Manifest::load(dir);
    out.stats = m->metrics;
    out.skipped = true;
    out.seconds = m->wall_seconds;
    return out;
  }
  if (fs::exists(dir)) fs::remove_all(dir);
  fs::create_directories(dir);
  const KnowledgeStageOptions o = effective(options, ctx);
  const auto start = std::chrono::steady_clock::now();

  const ItemKnowledge knowledge = build_item_knowledge(data, o.knowledge);
  const double knowledge_seconds = seconds_since(start);
  spdlog::info("knowledge: {} strong pairs of {} Swing candidates in {:.1f} s",
               knowledge.pairs.size(), knowledge.candidates, knowledge_seconds);
  save_item_knowledge(dir / "knowledge.tsv", knowledge, data.item_ids);
  ItemFacts::from_dataset(data).save(dir / "item_facts.tsv");

  const auto corpus_start = std::chrono::steady_clock::now();
  std::unique_ptr<ChatExplainer> chat;
  if (o.chat.enabled()) chat = std::make_unique<ChatExplainer>(o.chat);
  const Corpus corpus = build_corpus(knowledge, data, o.explain, chat.get());
  write_corpus_jsonl(dir / "corpus.jsonl", corpus, data.item_ids);
  const double corpus_seconds = seconds_since(corpus_start);
  spdlog::info("knowledge: {} explanations ({} sentences, {} phrasings) in {:.1f} s",
               corpus.stats.explanations, corpus.stats.sentences, corpus.stats.distinct_phrasings,
               corpus_seconds);

  const auto tokenizer_start = std::chrono::steady_clock::now();
  const std::vector<std::string> texts = tokenizer_texts(data, corpus);
  const SpTokenizer tokenizer =
      SpTokenizer::train(texts, map.level_sizes(), o.tokenizer, dir / "tokenizer.model");
  const double tokenizer_seconds = seconds_since(tokenizer_start);
  // How long explanations are in tokens: what the reasoner LM's context has to hold.
  int64_t corpus_tokens = 0;
  size_t longest = 0;
  for (const Explanation& e : corpus.explanations) {
    const size_t n = tokenizer.encode(e.text).size();
    corpus_tokens += static_cast<int64_t>(n);
    longest = std::max(longest, n);
  }
  const double mean_tokens =
      corpus.explanations.empty() ? 0.0
                                  : static_cast<double>(corpus_tokens) / corpus.explanations.size();
  spdlog::info("knowledge: tokenizer of {} pieces from {} texts in {:.1f} s",
               tokenizer.vocab_size(), texts.size(), tokenizer_seconds);

  out.seconds = seconds_since(start);
  out.stats = corpus.stats.to_json();
  out.stats.update({{"candidate_pairs", knowledge.candidates},
                    {"strong_pairs", knowledge.pairs.size()},
                    {"tokenizer_vocab_size", tokenizer.vocab_size()},
                    {"tokenizer_texts", texts.size()},
                    {"corpus_tokens", corpus_tokens},
                    {"mean_tokens_per_explanation", mean_tokens},
                    {"max_tokens_per_explanation", longest},
                    {"sid_levels", map.levels()},
                    {"knowledge_seconds", knowledge_seconds},
                    {"corpus_seconds", corpus_seconds},
                    {"tokenizer_seconds", tokenizer_seconds},
                    {"seconds", out.seconds}});
  Manifest m;
  m.stage = kStage;
  m.config = config;
  m.inputs = inputs;
  m.metrics = out.stats;
  m.wall_seconds = out.seconds;
  m.save(dir);
  return out;
}

}  // namespace twistar
