#include <gtest/gtest.h>

#include <sstream>

#include "apps/knowledge_stage.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/manifest.h"
#include "data/synth.h"
#include "sid/sid_map.h"
#include "fixtures.h"
#include "test_util.h"

namespace twistar {
namespace {

using testing::one_thread;
using testing::small_synth;

// A collision-free SID map (item i -> (i / 16, i % 16)) in run/sid, without running the sid stage.
void write_sid_map(const testing::TempDir& run, int items, int levels = 2) {
  CodeMatrix codes(items, levels);
  for (int i = 0; i < items; ++i) {
    codes(i, 0) = i / 16;
    codes(i, 1) = i % 16;
    if (levels > 2) codes(i, 2) = 0;
  }
  std::filesystem::create_directories(run / "sid");
  SidMap::build(codes, std::vector<int32_t>(levels, 16)).save(run / "sid" / "sid_map.json");
}

KnowledgeStageOptions small_options() {
  KnowledgeStageOptions o;
  o.tokenizer.vocab_size = 1000;
  return o;
}

size_t count_lines(const std::filesystem::path& path) {
  const std::string text = read_file(path);
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

TEST(KnowledgeStage, MissingSidMapSaysWhatToRun) {
  testing::TempDir run;
  try {
    run_knowledge_stage(small_synth(), small_options(), one_thread(), run.path());
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("sid_map.json"), std::string::npos) << what;
    EXPECT_NE(what.find("twistar sid"), std::string::npos) << what;
  }
  write_sid_map(run, 150);  // built for other data
  EXPECT_THROW(run_knowledge_stage(small_synth(), small_options(), one_thread(), run.path()),
               InputError);
}

TEST(KnowledgeStage, WritesArtifactsWithCountsAndSkipsWhenUpToDate) {
  testing::TempDir run;
  const Dataset data = small_synth();
  write_sid_map(run, data.num_items());
  const auto first = run_knowledge_stage(data, small_options(), one_thread(), run.path());
  EXPECT_FALSE(first.skipped);
  const auto dir = run / "knowledge";
  for (const char* f : {"knowledge.tsv", "corpus.jsonl", "tokenizer.model", "item_facts.tsv", "manifest.json"})
    EXPECT_TRUE(std::filesystem::exists(dir / f)) << f;
  EXPECT_EQ(count_lines(dir / "item_facts.tsv"), static_cast<size_t>(data.num_items()) + 1);
  const auto& s = first.stats;
  EXPECT_GT(s["strong_pairs"].get<int64_t>(), 0);
  EXPECT_EQ(count_lines(dir / "knowledge.tsv"), s["strong_pairs"].get<size_t>() + 1);
  EXPECT_EQ(count_lines(dir / "corpus.jsonl"), s["explanations"].get<size_t>());
  EXPECT_EQ(s["explanations"].get<int64_t>(), 2 * s["strong_pairs"].get<int64_t>());
  EXPECT_GT(s["distinct_phrasings"].get<int64_t>(), 5);
  EXPECT_EQ(load_item_knowledge(dir / "knowledge.tsv").pairs.size(), s["strong_pairs"].get<size_t>());
  const SpTokenizer tok = SpTokenizer::load(dir / "tokenizer.model");
  EXPECT_EQ(tok.sid_level_sizes(), (std::vector<int32_t>{16, 16}));
  EXPECT_EQ(tok.vocab_size(), s["tokenizer_vocab_size"].get<int>());
  EXPECT_GE(s["max_tokens_per_explanation"].get<double>(), s["mean_tokens_per_explanation"].get<double>());
  EXPECT_GT(s["mean_tokens_per_explanation"].get<double>(), 10.0);
  std::istringstream corpus(read_file(dir / "corpus.jsonl"));
  std::string line;
  std::getline(corpus, line);
  const auto j = nlohmann::json::parse(line);
  for (const char* key : {"a", "b", "facts", "text"}) EXPECT_TRUE(j.contains(key)) << key;
  const std::string text = j["text"];
  EXPECT_EQ(tok.decode(tok.encode(text)), text);

  // A run made before the stage wrote the item facts gets them when the stage is reused.
  std::filesystem::remove(dir / "item_facts.tsv");
  const auto second = run_knowledge_stage(data, small_options(), one_thread(), run.path());
  EXPECT_TRUE(second.skipped);
  EXPECT_TRUE(std::filesystem::exists(dir / "item_facts.tsv"));
  EXPECT_EQ(second.stats, first.stats);
  // Other options or another SID map rerun the stage.
  KnowledgeStageOptions other = small_options();
  other.explain.per_pair = 1;
  EXPECT_FALSE(run_knowledge_stage(data, other, one_thread(), run.path()).skipped);
  EXPECT_EQ(count_lines(dir / "corpus.jsonl"), first.stats["strong_pairs"].get<size_t>());
  write_sid_map(run, data.num_items(), 3);
  const auto third = run_knowledge_stage(data, other, one_thread(), run.path());
  EXPECT_FALSE(third.skipped);
  EXPECT_EQ(SpTokenizer::load(dir / "tokenizer.model").sid_level_sizes().size(), 3u);
}

TEST(KnowledgeStage, SameInputsGiveTheSameArtifacts) {
  testing::TempDir a, b;
  const Dataset data = small_synth();
  write_sid_map(a, data.num_items());
  write_sid_map(b, data.num_items());
  Context two = one_thread();
  two.threads = 2;
  run_knowledge_stage(data, small_options(), one_thread(), a.path());
  run_knowledge_stage(data, small_options(), two, b.path());
  for (const char* f : {"knowledge.tsv", "corpus.jsonl", "tokenizer.model"})
    EXPECT_EQ(read_file(a / "knowledge" / f), read_file(b / "knowledge" / f)) << f;
}

}  // namespace
}  // namespace twistar
