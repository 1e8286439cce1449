// loanledgerd's two modes (docs/operations.md). main.cc parses flags and calls one.
#pragma once

#include <string_view>

#include "server/config.h"

namespace loanledger::server {

// Opens the ledger, binds the listener and the metrics endpoint (logging
// `metrics on HOST:PORT` and `listening on HOST:PORT` with the ports bound,
// in that order; the second means ready; with --ready-file, that file is
// written just before: server/ready_file.h), and serves until SIGTERM/SIGINT:
// then it stops accepting, answers or refuses in-flight requests, drains
// the writer, closes the ledger. Returns the process exit code (0 after a
// clean stop, 1 when start-up fails).
int RunServer(const ServerConfig& config, std::string_view version);

// --verify: recomputes everything from the journal and prints the result.
// Returns 0 when consistent, 1 when any difference, 2 when it cannot run.
int RunVerify(const ServerConfig& config);

// --restore BACKUP_DIR (backup_tools.cc): restores a backup into --data
// (new or empty) and checks that it opens. 0 when done, 2 when it cannot
// (the reason on stderr; nothing opens a half-restored directory).
int RunRestore(const ServerConfig& config);
// --verify-backup BACKUP_DIR: checksums, then --verify of a copy restored
// into --data (a scratch directory). 0 sound, 1 damaged or differences, 2
// when it cannot run.
int RunVerifyBackup(const ServerConfig& config);

}  // namespace loanledger::server
