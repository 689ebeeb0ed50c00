// Running the built `twistar` program from a test (TWISTAR_CLI_PATH is set by
// tests/CMakeLists.txt).
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <string>

#include "core/atomic_file.h"
#include "test_util.h"

namespace twistar::testing {

/// What the program did: exit code, stdout, stderr.
struct CliRun {
  int code;
  std::string out, err;
};

/// Runs `twistar args`; its output goes through files in `tmp`.
inline CliRun run_cli(const TempDir& tmp, const std::string& args) {
  std::string out = (tmp / "stdout").string(), err = (tmp / "stderr").string();
  std::string cmd = std::string(TWISTAR_CLI_PATH) + " " + args + " >" + out + " 2>" + err;
  int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(out), read_file(err)};
}

}  // namespace twistar::testing
