// loanledger: the client CLI (docs/cli.md). All logic is in app.cc; this file
// binds it to the process: real streams, environment, connection and tty.
#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <iostream>

#include "client/cli/app.h"
#include "client/client.h"
#include "client/gen/banks.h"
#include "client/gen/generator.h"

static_assert(loanledger::client::cli::kGenBanksMax == loanledger::gen::kBanksMax);

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
    options.banks = args.banks;
    loanledger::gen::GenOutput output;
    output.out_path = args.out == "-" ? std::string() : args.out;
    output.out_dir = args.out_dir;
    if (args.day) output.first_day = output.last_day = *args.day;
    if (args.before) output.last_day = *args.before - 1;
    output.summary_extra = args.banks > 0 || !args.out_dir.empty() || args.day || args.before;
    return loanledger::gen::RunGenCommand(options, output);
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
