#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <filesystem>

#include <unistd.h>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/json_depth.h"
#include "core/manifest.h"
#include "core/run_lock.h"
#include "test_util.h"

namespace twistar {
namespace {

using testing::TempDir;
using testing::write_text;

TEST(AtomicFile, WritesAndReplacesWithoutLeavingTemporaries) {
  TempDir tmp;
  auto path = tmp / "sub" / "a.txt";
  write_file_atomic(path, "first");
  EXPECT_EQ(read_file(path), "first");
  write_file_atomic(path, "second");
  EXPECT_EQ(read_file(path), "second");
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(path.parent_path())) (void)e, ++files;
  EXPECT_EQ(files, 1);
}

TEST(AtomicFile, FailedWriterLeavesOldContent) {
  TempDir tmp;
  auto path = tmp / "a.txt";
  write_file_atomic(path, "keep me");
  EXPECT_THROW(write_file_atomic(path,
                                 [](std::ostream& out) {
                                   out << "half";
                                   throw Error("boom");
                                 }),
               Error);
  EXPECT_EQ(read_file(path), "keep me");
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(tmp.path())) (void)e, ++files;
  EXPECT_EQ(files, 1);
}

TEST(AtomicFile, MissingFileNamesPath) {
  try {
    read_file("/nonexistent/twistar/x.txt");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/twistar/x.txt"), std::string::npos);
  }
}

TEST(RunLock, SecondWriterIsRefusedWithTheHoldersPidAndStaleTemporariesGo) {
  testing::TempDir tmp;
  const auto run = tmp / "run";
  testing::write_text(run / "sasrec" / ".model.pt.tmp.4242.1f3a", "half a model");
  testing::write_text(run / "sasrec" / "model.pt", "a model");
  {
    RunLock first(run, "twistar train sasrec");
    EXPECT_EQ(first.stale_removed(), 1u);
    EXPECT_FALSE(std::filesystem::exists(run / "sasrec" / ".model.pt.tmp.4242.1f3a"));
    EXPECT_TRUE(std::filesystem::exists(run / "sasrec" / "model.pt"));
    try {
      RunLock second(run, "twistar eval");
      ADD_FAILURE() << "a second lock on the same run was granted";
    } catch (const InputError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("pid " + std::to_string(::getpid()) + ": twistar train sasrec"), std::string::npos) << msg;
      EXPECT_NE(msg.find(run.string()), std::string::npos) << msg;
    }
  }
  RunLock again(run, "twistar eval");  // released with its holder
  EXPECT_EQ(again.stale_removed(), 0u);
}

TEST(JsonDepth, CountsBracketsOutsideStringsOnly) {
  EXPECT_FALSE(json_too_deep("{\"a\": [[1]]}", 3));
  EXPECT_EQ(json_too_deep("{\"a\": [[[1]]]}", 3), 8u);
  EXPECT_FALSE(json_too_deep("{\"a\": \"[[[[\\\"[[\"}", 1));
  EXPECT_FALSE(json_too_deep("[][][][][]", 1));
  EXPECT_FALSE(json_too_deep("{'a': '[[[['}", 1, /*python=*/true));
  EXPECT_EQ(json_too_deep("((((", 2, /*python=*/true), 2u);
  EXPECT_EQ(json_too_deep(std::string(100000, '[')), kMaxJsonDepth);
}

TEST(Hash, StableAndContentSensitive) {
  EXPECT_EQ(hash_string("abc"), hash_string("abc"));
  EXPECT_NE(hash_string("abc"), hash_string("abd"));
  // FNV-1a 64 of "a" is a published test vector.
  EXPECT_EQ(hash_string("a"), "af63dc4c8601ec8c");
  TempDir tmp;
  write_file_atomic(tmp / "f", "abc");
  EXPECT_EQ(hash_file(tmp / "f"), hash_string("abc"));
}

TEST(Manifest, RoundTripAndCurrency) {
  TempDir tmp;
  Manifest m;
  m.stage = "sasrec";
  m.config = {{"dim", 64}};
  m.inputs = {{"data", "abcd"}};
  m.metrics = {{"ndcg@10", 0.5}};
  m.wall_seconds = 1.5;
  m.save(tmp.path());
  auto back = Manifest::load(tmp.path());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->to_json(), m.to_json());
  EXPECT_TRUE(stage_is_current(tmp.path(), "sasrec", {{"dim", 64}}, {{"data", "abcd"}}));
  EXPECT_FALSE(stage_is_current(tmp.path(), "sasrec", {{"dim", 32}}, {{"data", "abcd"}}));
  EXPECT_FALSE(stage_is_current(tmp.path(), "sasrec", {{"dim", 64}}, {{"data", "other"}}));
  EXPECT_FALSE(Manifest::load(tmp / "missing").has_value());
}

TEST(Manifest, RefusesNewerFormat) {
  TempDir tmp;
  write_file_atomic(tmp / "manifest.json", R"({"format_version": 999, "stage": "x"})");
  EXPECT_THROW(Manifest::load(tmp.path()), InputError);
}

TEST(Config, TomlValuesFeedOptionsAndCommandLineWins) {
  TempDir tmp;
  write_text(tmp / "c.toml", "threads = 3\n[train]\nlr = 0.5\nname = \"x\"\n");
  CLI::App app;
  app.config_formatter(std::make_shared<TomlConfig>());
  app.set_config("--config");
  app.allow_config_extras(CLI::config_extras_mode::error);
  int threads = 0;
  double lr = 0;
  std::string name;
  app.add_option("--threads", threads);
  auto* train = app.add_subcommand("train");
  train->add_option("--lr", lr);
  train->add_option("--name", name);
  std::string cfg = (tmp / "c.toml").string();
  app.parse(std::vector<std::string>{"0.25", "--lr", "train", cfg, "--config"});
  EXPECT_EQ(threads, 3);
  EXPECT_DOUBLE_EQ(lr, 0.25);  // command line overrides the file
  EXPECT_EQ(name, "x");
}

TEST(Config, SyntaxErrorNamesLine) {
  TempDir tmp;
  write_text(tmp / "bad.toml", "threads = 3\nlr = = 2\n");
  CLI::App app;
  app.config_formatter(std::make_shared<TomlConfig>());
  app.set_config("--config");
  std::string cfg = (tmp / "bad.toml").string();
  try {
    app.parse(std::vector<std::string>{cfg, "--config"});
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace twistar
