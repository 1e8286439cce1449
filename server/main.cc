// loanledgerd: the loan-ledger aggregation server (docs/operations.md).
// Start reading here: flags (config.h) -> RunServer (server.cc: listener,
// shutdown) -> Session (session.cc: one connection) -> BatchWriter
// (batch_writer.cc: group commit) -> storage::Ledger.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>

#include "server/config.h"
#include "server/server.h"

#ifndef LOANLEDGER_VERSION
#define LOANLEDGER_VERSION "0.0.0-dev"
#endif

int main(int argc, char** argv) {
  using namespace loanledger::server;
  try {
    ServerConfig config;
    if (std::optional<int> exit_code = ParseFlags(argc, argv, config)) return *exit_code;

    // Logs go to stderr (docs/operations.md), one line each, flushed at once so that a
    // supervisor (or a test) reading the pipe sees them immediately.
    auto logger = spdlog::stderr_logger_mt("loanledgerd");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    logger->flush_on(spdlog::level::trace);
    const auto level = spdlog::level::from_str(config.log_level);
    logger->set_level(level == spdlog::level::off && config.log_level != "off" ? spdlog::level::info
                                                                               : level);
    spdlog::set_default_logger(logger);

    if (!config.restore_from.empty()) return RunRestore(config);
    if (!config.verify_backup.empty()) return RunVerifyBackup(config);
    if (config.verify) return RunVerify(config);
    return RunServer(config, LOANLEDGER_VERSION);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loanledgerd: %s\n", e.what());
    return 1;
  }
}
