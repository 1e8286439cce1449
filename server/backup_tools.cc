// loanledgerd --restore and --verify-backup (server.h; deploy/README.md
// "Backups"): offline, no listener; the storage functions do the work.
#include <cstdio>
#include <filesystem>

#include "server/server.h"
#include "storage/ledger.h"

namespace loanledger::server {
namespace {

void PrintBackup(const char* what, const storage::BackupInfo& b) {
  std::printf("%s: backup=%u batches=%llu stream_seq=%llu loan_snapshot=%llu created_unix_s=%lld\n",
              what, b.id, static_cast<unsigned long long>(b.batches),
              static_cast<unsigned long long>(b.log_position),
              static_cast<unsigned long long>(b.loan_snapshot),
              static_cast<long long>(b.created_unix_s));
}

}  // namespace

int RunRestore(const ServerConfig& config) {
  Result<storage::BackupInfo> r =
      storage::RestoreBackup(config.restore_from, config.backup_id, config.data_dir);
  if (!r.ok()) {
    std::fprintf(stderr, "restore: %s\n", r.status().ToString().c_str());
    return 2;
  }
  PrintBackup("restore", *r);
  std::printf("restore: %s is ready; start loanledgerd with --data %s\n", config.data_dir.c_str(),
              config.data_dir.c_str());
  return 0;
}

int RunVerifyBackup(const ServerConfig& config) {
  Result<storage::BackupVerifyReport> r =
      storage::VerifyBackup(config.verify_backup, config.backup_id, config.data_dir);
  if (!r.ok()) {
    std::fprintf(stderr, "verify-backup: %s\n", r.status().ToString().c_str());
    // A damaged backup (a checksum, a file missing, a copy that does not
    // open) is a failed check, not a failure to run it.
    return r.status().code() == Status::Code::kCorruption ? 1 : 2;
  }
  for (const storage::VerifyDifference& d : r->verify.differences) {
    std::printf("difference: %s expected=%lld actual=%lld\n", d.what.c_str(),
                static_cast<long long>(d.expected), static_cast<long long>(d.actual));
  }
  PrintBackup("verify-backup", r->backup);
  std::printf(
      "verify-backup: checksums ok, batches_replayed=%llu events_replayed=%llu loans_checked=%llu "
      "cells_checked=%llu differences=%zu\n",
      static_cast<unsigned long long>(r->verify.batches_replayed),
      static_cast<unsigned long long>(r->verify.events_replayed),
      static_cast<unsigned long long>(r->verify.loans_checked),
      static_cast<unsigned long long>(r->verify.cells_checked), r->verify.differences.size());
  return r->verify.differences.empty() ? 0 : 1;
}

}  // namespace loanledger::server
