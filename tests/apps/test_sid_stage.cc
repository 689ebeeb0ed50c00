#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <set>

#include "apps/pipeline.h"
#include "apps/sid_stage.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/manifest.h"
#include "core/progress.h"
#include "data/synth.h"
#include "sid/npy.h"
#include "sid/sid_map.h"
#include "fixtures.h"
#include "test_util.h"

namespace twistar {
namespace {

using testing::one_thread;
using testing::small_synth;

SidStageOptions small_options(const std::string& tokenizer) {
  SidStageOptions o;
  o.tokenizer = tokenizer;
  o.levels = 2;
  o.codebook_size = 16;
  o.dim = 16;
  o.rqvae.latent_dim = 8;
  o.rqvae.hidden = {32};
  o.rqvae.epochs = 15;
  o.rqvae.batch_size = 64;
  return o;
}

TEST(SidStage, CoherenceCountsPairsExactly) {
  // Items 0-3 have first code 0, items 4-5 code 1. Leaves: A A B A | B B, item 6 has no category.
  std::vector<ItemMeta> items(7);
  const char* leaves[] = {"A", "A", "B", "A", "B", "B"};
  for (int i = 0; i < 6; ++i) items[i].categories = {"Top", leaves[i]};
  CodeMatrix codes(7, 1);
  codes << 0, 0, 0, 0, 1, 1, 1;
  const Coherence c = semantic_coherence(codes, 1, items);
  EXPECT_EQ(c.items, 6);
  EXPECT_EQ(c.prefix_pairs, 6 + 1);                    // C(4,2) + C(2,2)
  EXPECT_DOUBLE_EQ(c.p_same_prefix, (3.0 + 1.0) / 7);  // AAA in group 0, BB in group 1
  EXPECT_DOUBLE_EQ(c.p_random, (3.0 + 3.0) / 15);      // C(3,2) + C(3,2) over C(6,2)
  EXPECT_DOUBLE_EQ(c.ratio, c.p_same_prefix / c.p_random);
}

TEST(SidStage, WritesArtifactsAndSkipsWhenUpToDate) {
  Progress::set_quiet(true);
  testing::TempDir run;
  const Dataset data = small_synth();
  const auto first = run_sid_stage(data, small_options("rkmeans"), one_thread(), run.path());
  EXPECT_FALSE(first.skipped);
  for (const char* f : {"sid_map.json", "residual_kmeans.bin", "embeddings.npy", "report.json",
                        "report.md", "manifest.json"})
    EXPECT_TRUE(std::filesystem::exists(run / "sid" / f)) << f;
  const SidMap map = SidMap::load(run / "sid" / "sid_map.json");
  EXPECT_EQ(map.num_items(), data.num_items());
  std::set<Sid> unique;
  for (ItemIndex i = 0; i < map.num_items(); ++i) unique.insert(map.sid(i));
  EXPECT_EQ(unique.size(), static_cast<size_t>(data.num_items()));
  const auto& r = first.report;
  EXPECT_EQ(r["levels"], 2);
  EXPECT_EQ(r["per_level"].size(), 2u);
  EXPECT_EQ(r["sid_levels"], map.levels());
  // Synthetic item text names the category, so first codes group categories well above chance.
  EXPECT_GT(r["coherence"]["ratio"].get<double>(), 2.0) << r.dump();
  EXPECT_EQ(load_npy(run / "sid" / "embeddings.npy").rows(), data.num_items());

  const auto again = run_sid_stage(data, small_options("rkmeans"), one_thread(), run.path());
  EXPECT_TRUE(again.skipped);
  EXPECT_EQ(again.report, first.report);
  SidStageOptions other = small_options("rkmeans");
  other.codebook_size = 8;
  EXPECT_FALSE(run_sid_stage(data, other, one_thread(), run.path()).skipped);
}

TEST(SidStage, RqvaeReplacesTheOtherTokenizersFiles) {
  Progress::set_quiet(true);
  testing::TempDir run;
  const Dataset data = small_synth();
  run_sid_stage(data, small_options("rkmeans"), one_thread(), run.path());
  const auto r = run_sid_stage(data, small_options("rqvae"), one_thread(), run.path());
  EXPECT_FALSE(r.skipped);
  EXPECT_TRUE(std::filesystem::exists(run / "sid" / "rqvae.pt"));
  EXPECT_TRUE(std::filesystem::exists(run / "sid" / "rqvae.json"));
  EXPECT_FALSE(std::filesystem::exists(run / "sid" / "residual_kmeans.bin"));
  EXPECT_EQ(r.report["rqvae_train"]["epochs"], 15);
  EXPECT_EQ(Manifest::load(run / "sid")->config["tokenizer"], "rqvae");
}

TEST(SidStage, CollaborativeWithoutSasrecSaysWhatToRun) {
  testing::TempDir run;
  SidStageOptions o = small_options("rkmeans");
  o.embedding = "hybrid";
  try {
    run_sid_stage(small_synth(), o, one_thread(), run.path());
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("twistar train bsarec"), std::string::npos) << e.what();
  }
}

TEST(SidStage, HybridUsesTheSasrecTable) {
  Progress::set_quiet(true);
  testing::TempDir run;
  const Dataset data = small_synth();
  SasrecOptions sasrec;
  sasrec.dim = 16;
  sasrec.train.epochs = 1;
  sasrec.max_len = 20;
  run_sasrec_stage(data, sasrec, one_thread(), run.path(), false);
  SidStageOptions o = small_options("rkmeans");
  o.embedding = "hybrid";
  o.hybrid_weight = 0.5f;
  const auto r = run_sid_stage(data, o, one_thread(), run.path());
  EXPECT_EQ(r.report["embedding_dim"], 16 + 16);
  EXPECT_EQ(Manifest::load(run / "sid")->inputs.count("sasrec"), 1u);
}

TEST(SidStage, ExternalEmbeddingsAndValidation) {
  Progress::set_quiet(true);
  testing::TempDir run;
  const Dataset data = small_synth();
  EmbeddingMatrix e = EmbeddingMatrix::Random(data.num_items(), 6);
  save_npy(run / "e.npy", e);
  SidStageOptions o = small_options("rkmeans");
  o.embedding = "external";
  EXPECT_THROW(o.validate(), InputError);  // No path.
  o.external_path = (run / "e.npy").string();
  const auto r = run_sid_stage(data, o, one_thread(), run.path());
  EXPECT_EQ(r.report["embedding_dim"], 6);
  o.tokenizer = "vq";
  EXPECT_THROW(o.validate(), InputError);
}

TEST(SidStage, CliPrintsTheReportAndExplainsMissingSasrec) {
  testing::TempDir tmp;
  write_sequences_dir(small_synth(), (tmp / "data").string());
  const std::string base = std::string(TWISTAR_CLI_PATH) + " --quiet --threads 1 sid --data " +
                           (tmp / "data").string() + " --run " + (tmp / "run").string() +
                           " --tokenizer rkmeans --levels 2 --codebook-size 16 --dim 16";
  const std::string out = (tmp / "out").string(), err = (tmp / "err").string();
  int status = std::system((base + " >" + out + " 2>" + err).c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << read_file(err);
  EXPECT_NE(read_file(out).find("| level | codes used |"), std::string::npos) << read_file(out);
  status = std::system((base + " --embedding hybrid >" + out + " 2>" + err).c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_NE(read_file(err).find("twistar train bsarec"), std::string::npos) << read_file(err);
}

}  // namespace
}  // namespace twistar
