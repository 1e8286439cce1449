// The `loanledger` command line (docs/cli.md): argument parsing with CLI11,
// dispatch to the commands, and the mapping of outcomes to exit codes.
// Everything the commands touch outside the process (output streams, the
// environment, the connection, the clock) comes in through CliContext, so
// the whole CLI runs in tests against a fake Client.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "client/client.h"
#include "schema/status.h"

namespace loanledger::client::cli {

// Exit codes (docs/cli.md).
enum ExitCode : int {
  kExitOk = 0,
  kExitUsage = 1,        // bad flags, bad date, unknown category, unreadable input file
  kExitRejected = 2,     // rejected data, or a request refused for the caller's role
  kExitUnavailable = 3,  // cannot connect, auth failed, or the server could not answer
  kExitNotFound = 4,     // no such loan
};
// The exit code for a failed request's status. REQUIRES: !status.ok().
int ExitCodeFor(const Status& status);

// `gen` options, handed to the generator (client/gen) when it is linked in.
struct GenArgs {
  double scale = 1e-4;    // share of the national portfolio (default 1/10,000); > 0
  uint64_t seed = 1;      // same seed, same file
  std::string out = "-";  // CSV output path; "-" = stdout
  uint32_t banks = 0;     // 0 = the model's own banks; else that many, of skewed sizes
  std::string out_dir;    // non-empty: one CSV per institution in this directory
  // Only the events of this business day (days since 1970-01-01); unset = all.
  std::optional<int32_t> day;
  // Only the events dated before this day; unset = all.
  std::optional<int32_t> before;
};

// Most banks `gen --banks` takes (= gen::kBanksMax, client/gen/banks.h; ids B0001..B9999).
inline constexpr uint32_t kGenBanksMax = 9999;

// The server's default --listen address (docs/operations.md).
inline constexpr std::string_view kDefaultServer = "127.0.0.1:7700";

struct CliContext {
  std::ostream& out;           // stdout: results and the submit summary
  std::ostream& err;           // stderr: diagnostics and progress
  std::istream* in = nullptr;  // stdin for `submit -`; nullptr = not available
  // Opens an authenticated connection (Client::Connect in the real binary).
  std::function<Result<std::unique_ptr<Client>>(const ClientOptions&)> connect;
  // Environment lookup (LOANLEDGER_SERVER, LOANLEDGER_TOKEN); nullopt = unset.
  std::function<std::optional<std::string>(const std::string&)> getenv;
  // Runs `gen`; empty = the generator is not built into this binary.
  std::function<int(const GenArgs&, CliContext&)> gen;
  bool err_is_terminal = false;  // draw a live progress bar on err
  std::function<std::chrono::steady_clock::time_point()> now = [] {
    return std::chrono::steady_clock::now();
  };
};

// Runs one command line; args exclude the program name. Returns the exit code.
int RunCli(const std::vector<std::string>& args, CliContext& context);

// "HOST:PORT" or "[V6]:PORT" into options.host/port; false when malformed.
bool ParseServerAddress(std::string_view text, ClientOptions& options);
// --server / LOANLEDGER_SERVER: one address, or a cluster's comma-separated
// list "a:1,b:2,c:3" (spaces around entries ignored). The first goes to
// options.host/port; with more than one, every one to options.servers.
// False when the list is empty or any entry is malformed.
bool ParseServerList(std::string_view text, ClientOptions& options);

}  // namespace loanledger::client::cli
