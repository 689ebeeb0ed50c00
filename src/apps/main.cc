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
    return app.exit(e);
  } catch (const twistar::InputError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
