// loanledgerd: the loan-ledger aggregation server (docs/operations.md).
// Start reading here: flags (config.h) -> RunServer (server.cc: listener,
// shutdown) -> Session (session.cc: one connection) -> BatchWriter
// (batch_writer.cc: group commit) -> storage::Ledger.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>

#include "server/config.h"
#include "server/server.h"
#include "server/service.h"

#ifndef LOANLEDGER_VERSION
#define LOANLEDGER_VERSION "0.0.0-dev"
#endif

int main(int argc, char** argv) {
  using namespace loanledger::server;
  try {
    ServerConfig config;
    if (std::optional<int> exit_code = ParseFlags(argc, argv, config)) return *exit_code;

    // Logs go to journald under systemd, else to stderr as text or JSON lines
    // (--log-format, server/service.h, docs/operations.md).
    if (loanledger::Status s = SetUpLogging(config.log_format, config.log_level); !s.ok()) {
      std::fprintf(stderr, "loanledgerd: %s\n", s.message().c_str());
      return 1;
    }

    if (!config.restore_from.empty()) return RunRestore(config);
    if (!config.verify_backup.empty()) return RunVerifyBackup(config);
    if (config.verify) return RunVerify(config);
    return RunServer(config, LOANLEDGER_VERSION);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loanledgerd: %s\n", e.what());
    return 1;
  }
}
