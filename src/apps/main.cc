// twistar: generative recommendation with adaptive reasoning. Errors become one line and an exit code
// here and nowhere else: 2 for bad input (data, config, options), 1 for anything else.
#include <cstdio>
#include <string>

#include "apps/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"twistar: generative recommendation with adaptive reasoning"};
  try {
    std::string command_line = "twistar";
    for (int i = 1; i < argc; ++i) command_line += std::string(" ") + argv[i];
    twistar::register_commands(app, command_line);
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with exit code 0; every other option or config problem is
    // bad input like any other: one line, exit 2 (CLI11's own codes, 101-115, are not ours).
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "error: %s (see --help)\n", e.what());
    return 2;
  } catch (const twistar::InputError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
