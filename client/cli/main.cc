// loanledger: the client CLI (docs/cli.md). All logic is in app.cc; this file
// binds it to the process: real streams, environment, connection and tty.
#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <iostream>

#include "client/cli/app.h"
#include "client/client.h"
#include "client/gen/generator.h"

int main(int argc, char** argv) {
  using loanledger::client::cli::CliContext;
  std::ios::sync_with_stdio(false);
  CliContext context{std::cout, std::cerr};
  context.in = &std::cin;
  context.connect = [](const loanledger::client::ClientOptions& options) {
    return loanledger::client::Client::Connect(options);
  };
  context.getenv = [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
  context.gen = [](const loanledger::client::cli::GenArgs& args, CliContext&) {
    loanledger::gen::GenOptions options;
    options.scale = args.scale;
    options.seed = args.seed;
    return loanledger::gen::RunGenCommand(options, args.out == "-" ? std::string() : args.out);
  };
  context.err_is_terminal = isatty(STDERR_FILENO) == 1;
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    const int code = loanledger::client::cli::RunCli(args, context);
    std::cout.flush();
    return code;
  } catch (const std::exception& e) {
    // Exceptions only from start-up paths (STYLE.md): report, do not crash silently.
    std::cerr << "loanledger: " << e.what() << '\n';
    return 1;
  }
}
