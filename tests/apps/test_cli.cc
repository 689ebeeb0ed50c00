// End-to-end tests of the `twistar` program: exit codes, one-line errors, config files, quickstart.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "cli_util.h"
#include "core/atomic_file.h"
#include "core/run_lock.h"
#include "test_util.h"

namespace twistar {
namespace {

using testing::run_cli;

TEST(Cli, HelpListsSubcommandsWithDefaults) {
  testing::TempDir tmp;
  auto r = run_cli(tmp, "--help");
  EXPECT_EQ(r.code, 0);
  for (const char* sub : {"synth", "info", "train", "eval", "quickstart"})
    EXPECT_NE(r.out.find(sub), std::string::npos) << sub;
  auto t = run_cli(tmp, "train --help");
  EXPECT_NE(t.out.find("--sasrec-lr FLOAT=0.003"), std::string::npos) << t.out;
}

TEST(Cli, MissingDataIsOneLineExitTwo) {
  testing::TempDir tmp;
  auto r = run_cli(tmp, "info --data /nonexistent/dir");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("/nonexistent/dir"), std::string::npos);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(Cli, EveryOptionAndConfigErrorIsOneLineExitTwo) {
  testing::TempDir tmp;
  testing::write_text(tmp / "d" / "sequences.txt", "1 1 2 3\n2 2 3 4\n");
  testing::write_text(tmp / "bad.toml", "[info]\nunknown_key = 3\n");
  testing::write_text(tmp / "typed.toml", "[info]\nkcore = \"many\"\n");
  const std::string data = " --data " + (tmp / "d").string();
  for (const std::string& args :
       {"info" + data + " --kcore 99999999999", "info" + data + " --format xml", "info" + data + " --no-such-flag",
        std::string("info"), std::string("nonesuch"), "--threads x info" + data, "train nonesuch" + data,
        "--config " + (tmp / "bad.toml").string() + " info" + data,
        "--config " + (tmp / "typed.toml").string() + " info" + data,
        "--config " + (tmp / "missing.toml").string() + " info" + data, "fit" + data + " --until nowhere"}) {
    auto r = run_cli(tmp, args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << args << "\n" << r.err;
  }
  EXPECT_EQ(run_cli(tmp, "--version").code, 0);
  EXPECT_EQ(run_cli(tmp, "info --help").code, 0);
}

TEST(Cli, ASecondWriterOnOneRunExitsTwoNamingTheHolder) {
  testing::TempDir tmp;
  testing::write_text(tmp / "d" / "sequences.txt", "1 1 2 3 4\n2 2 3 4 1\n3 4 3 2 1\n");
  RunLock holder(tmp / "run", "twistar fit (a test holding the run)");
  for (const std::string& cmd : {"train sasrec", "sid", "knowledge", "eval", "fit"}) {
    auto r = run_cli(tmp, cmd + " --data " + (tmp / "d").string() + " --run " + (tmp / "run").string());
    EXPECT_EQ(r.code, 2) << cmd << "\n" << r.err;
    EXPECT_NE(r.err.find("pid " + std::to_string(::getpid()) + ": twistar fit (a test holding the run)"),
              std::string::npos)
        << cmd << "\n" << r.err;
  }
}

TEST(Cli, KnowledgeWithoutSidsSaysWhatToRun) {
  testing::TempDir tmp;
  testing::write_text(tmp / "d" / "sequences.txt", "1 1 2 3 4\n2 2 3 4 1\n");
  auto r = run_cli(tmp, "--quiet knowledge --data " + (tmp / "d").string() + " --run " +
                            (tmp / "run").string());
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("run `twistar sid"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(Cli, MalformedSequencesNameFileAndLine) {
  testing::TempDir tmp;
  testing::write_text(tmp / "d" / "sequences.txt", "1 1 2 3\n2 4 x 5\n");
  auto r = run_cli(tmp, "info --data " + (tmp / "d").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("sequences.txt:2:"), std::string::npos) << r.err;
}

TEST(Cli, ConfigFileSetsOptions) {
  testing::TempDir tmp;
  testing::write_text(tmp / "d" / "sequences.txt", "1 1 2 3\n2 2 3 4\n");
  testing::write_text(tmp / "c.toml", "[info]\ndata = \"" + (tmp / "d").string() + "\"\n");
  auto r = run_cli(tmp, "--config " + (tmp / "c.toml").string() + " info");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("2 users, 4 items"), std::string::npos) << r.out;
  testing::write_text(tmp / "bad.toml", "[info]\nunknown_key = 3\n");
  auto bad = run_cli(tmp, "--config " + (tmp / "bad.toml").string() + " info");
  EXPECT_NE(bad.code, 0);
}

TEST(Cli, TuneTakesItsOptionsFromTheConfigAndExplainsMissingSids) {
  testing::TempDir tmp;
  auto help = run_cli(tmp, "tune --help");
  EXPECT_NE(help.out.find("--method TEXT:{tune,random,tpe}=tune"), std::string::npos) << help.out;
  auto synth = run_cli(tmp, "synth --out " + (tmp / "d").string() + " --users 150 --items 40");
  ASSERT_EQ(synth.code, 0) << synth.err;
  testing::write_text(tmp / "c.toml", "[tune]\ntrials = 1\ntrial-epochs = 1\nmethod = \"tpe\"\n");
  std::string common = " --data " + (tmp / "d").string() + " --memory " + (tmp / "mem").string() +
                       " --run " + (tmp / "run").string();
  auto r = run_cli(tmp, "--quiet --config " + (tmp / "c.toml").string() + " tune" + common);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("tpe method"), std::string::npos) << r.out;
  auto report = nlohmann::json::parse(read_file(tmp / "run" / "tune_report.json"));
  EXPECT_EQ(report["trials"].size(), 1u);
  EXPECT_TRUE(report["test"].contains("ndcg@10"));
  auto fast = run_cli(tmp, "tune --model fast_rec" + common);
  EXPECT_EQ(fast.code, 2);
  EXPECT_NE(fast.err.find("run `twistar sid"), std::string::npos) << fast.err;
  testing::write_text(tmp / "mem" / "heuristics.json", "{\"heuristics\": 3}");
  auto bad = run_cli(tmp, "tune --method tpe --trials 2" + common);
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("heuristics.json: missing field 'heuristics'"), std::string::npos) << bad.err;
}

TEST(Cli, QuickstartRunsEndToEndAndReusesStages) {
  testing::TempDir tmp;
  std::string args = "--quiet --threads 2 quickstart --run " + (tmp / "run").string() +
                     " --users 300 --items 120 --bsarec-epochs 3 --codebook-size 8 --rqvae-epochs 30"
                     " --sidgen-epochs 3 --vocab-size 600 --reasoner-epochs 1 --reasoner-layers 1"
                     " --planner-sft-epochs 2 --planner-grpo-epochs 1 --planner-betas 0,10 --latency-requests 20";
  auto r = run_cli(tmp, args);
  ASSERT_EQ(r.code, 0) << r.err;
  auto doc = nlohmann::json::parse(read_file(tmp / "run" / "eval" / "results.json"));
  for (const char* sys : {"mostpop", "swing", "bsarec", "fast_only", "fast_rank", "slow", "twistar", "router_random",
                          "router_threshold", "twistar_sft", "oracle"}) {
    ASSERT_TRUE(doc["systems"].contains(sys)) << sys;
    EXPECT_GE(doc["systems"][sys]["ndcg@10"].get<double>(), 0.0);
  }
  EXPECT_TRUE(std::filesystem::exists(tmp / "run" / "eval" / "results.md"));
  EXPECT_EQ(doc["systems"]["twistar"]["beta_sweep"].size(), 2u);
  // Every system's paired difference to twistar, with its interval (the table's last column).
  const auto& paired = doc["systems"]["router_threshold"]["paired"];
  EXPECT_EQ(paired["reference"], "twistar");
  EXPECT_LE(paired["ndcg@10"]["ci"][0].get<double>(), paired["ndcg@10"]["diff"].get<double>());
  EXPECT_NE(r.out.find("ΔNDCG@10 vs twistar"), std::string::npos) << r.out;
  EXPECT_TRUE(doc["systems"]["twistar"].contains("latency_ratio"));
  EXPECT_NE(r.out.find("twistar / slow mean latency, timed interleaved on the same 20 requests"), std::string::npos)
      << r.out;
  // A reference that is not evaluated is refused before anything runs.
  auto bad = run_cli(tmp, "eval --data " + (tmp / "run" / "data").string() + " --run " + (tmp / "run").string() +
                              " --systems mostpop --compare-to twistar");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("--compare-to: 'twistar' is not among --systems"), std::string::npos) << bad.err;
  // twistar and slow timed interleaved on the same requests: the ratio of their mean latencies.
  const std::string eval = "eval --data " + (tmp / "run" / "data").string() + " --run " + (tmp / "run").string() +
                           " --users 60 --latency-requests 12 --throughput-batch 0 --interleave-block 4";
  auto paired_timing =
      run_cli(tmp, eval + " --systems fast_only,twistar --planner-sweep 0,10 --latency-pair twistar,slow");
  ASSERT_EQ(paired_timing.code, 0) << paired_timing.err;
  auto timed = nlohmann::json::parse(read_file(tmp / "run" / "eval" / "results.json"))["systems"];
  const auto& ratio = timed["twistar"]["latency_ratio"];
  EXPECT_EQ(ratio["reference"], "slow");
  EXPECT_EQ(ratio["requests"], 12);
  EXPECT_NEAR(ratio["ratio"].get<double>(),
              ratio["mean_ms"].get<double>() / ratio["reference_mean_ms"].get<double>(), 1e-9);
  EXPECT_LE(ratio["ci"][0].get<double>(), ratio["ratio"].get<double>());
  EXPECT_GE(ratio["ci"][1].get<double>(), ratio["ratio"].get<double>());
  EXPECT_GE(ratio["slow_rate"].get<double>(), 0.0);
  EXPECT_EQ(ratio["block"], 4);
  EXPECT_EQ(ratio["turns"], 3);
  EXPECT_FALSE(timed.contains("slow"));  // the reference was loaded for the timing alone
  for (const std::string& pair : {std::string("twistar"), std::string("twistar,nonesuch"), std::string("twistar,twistar"),
                                  std::string("sasrec,slow"), std::string("twistar,oracle")}) {
    auto refused = run_cli(tmp, eval + " --systems twistar,slow --latency-pair " + pair);
    EXPECT_EQ(refused.code, 2) << pair;
    EXPECT_NE(refused.err.find("--latency-pair"), std::string::npos) << refused.err;
  }
  // The interval resamples turns: one turn of requests is refused before anything runs.
  auto one_turn = run_cli(tmp, "eval --data " + (tmp / "run" / "data").string() + " --run " + (tmp / "run").string() +
                                   " --users 60 --latency-requests 12 --systems twistar --latency-pair twistar,slow");
  EXPECT_EQ(one_turn.code, 2);
  EXPECT_NE(one_turn.err.find("at least two turns"), std::string::npos) << one_turn.err;
  for (const char* stage : {"bsarec", "sid", "sidgen", "ranker", "knowledge", "reasoner", "planner"})
    EXPECT_TRUE(std::filesystem::exists(tmp / "run" / stage / "manifest.json")) << stage;
  // A second run finds the finished stages and does not retrain them.
  auto again = run_cli(tmp, args.substr(std::string("--quiet ").size()));
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("bsarec: " + (tmp / "run" / "bsarec").string() + " is up to date"),
            std::string::npos)
      << again.err;
  EXPECT_NE(again.err.find("sidgen: " + (tmp / "run" / "sidgen").string() + " is up to date"),
            std::string::npos)
      << again.err;
  EXPECT_NE(again.out.find("fit [1/8] backbone: reused"), std::string::npos) << again.out;
}

TEST(Cli, FitRunsPartOfTheChainAndReusesWhatIsDone) {
  testing::TempDir tmp;
  ASSERT_EQ(run_cli(tmp, "synth --out " + (tmp / "d").string() + " --users 200 --items 60").code, 0);
  const std::string fit = "--quiet --threads 2 fit --data " + (tmp / "d").string() + " --run " +
                          (tmp / "run").string() + " --bsarec-epochs 2 --codebook-size 8 --rqvae-epochs 20 --sidgen-epochs 2";
  // --from needs the earlier stages finished, and names the first missing one.
  auto early = run_cli(tmp, fit + " --from sidgen");
  EXPECT_EQ(early.code, 2);
  EXPECT_NE(early.err.find("stage backbone is not finished"), std::string::npos) << early.err;
  auto backwards = run_cli(tmp, fit + " --from ranker --until sid");
  EXPECT_EQ(backwards.code, 2);
  EXPECT_NE(backwards.err.find("--from ranker comes after --until sid"), std::string::npos) << backwards.err;

  auto first = run_cli(tmp, fit + " --until sidgen");
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_NE(first.out.find("fit [1/3] backbone: started"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("fit [3/3] sidgen: done"), std::string::npos) << first.out;
  EXPECT_FALSE(std::filesystem::exists(tmp / "run" / "ranker"));
  const std::string sidgen_manifest = read_file(tmp / "run" / "sidgen" / "manifest.json");
  // The next part finds the first three finished and trains the ranker only.
  auto second = run_cli(tmp, fit + " --until ranker");
  ASSERT_EQ(second.code, 0) << second.err;
  for (const char* line : {"fit [1/4] backbone: reused", "fit [2/4] sid: reused", "fit [3/4] sidgen: reused",
                           "fit [4/4] ranker: done"})
    EXPECT_NE(second.out.find(line), std::string::npos) << line << "\n" << second.out;
  EXPECT_EQ(read_file(tmp / "run" / "sidgen" / "manifest.json"), sidgen_manifest);
  // --from a finished stage runs only what follows it.
  auto tail = run_cli(tmp, fit + " --from ranker --until ranker");
  ASSERT_EQ(tail.code, 0) << tail.err;
  EXPECT_NE(tail.out.find("fit [1/1] ranker: reused"), std::string::npos) << tail.out;
}

}  // namespace
}  // namespace twistar
