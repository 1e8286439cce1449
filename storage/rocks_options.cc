// The RocksDB options of a ledger store (rocks_options.h).
#include "storage/rocks_options.h"

#include <rocksdb/cache.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/table.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>

#include "storage/codec.h"

namespace loanledger::storage {
namespace {

// RocksDB's informational log, written to stderr (warnings and errors only,
// in loanledgerd's line format) instead of a LOG file in the data
// directory. Why: a log that needs disk space must not take the server down
// with the disk. With a LOG file on a full disk, Debian's librocksdb 7.8
// (built with assertions) aborts the process on the first LOG write after a
// failed one (WritableFileWriter::AssertFalseAndGetStatusForPrevError),
// when it logs the very write error that filled the disk
// (tests/integration/server_storage_fault_test.cc).
class StderrLogger final : public rocksdb::Logger {
 public:
  StderrLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    // HEADER_LEVEL is the options dump at open: informational.
    if (level == rocksdb::InfoLogLevel::HEADER_LEVEL || level < GetInfoLogLevel()) return;
    char message[2048];
    const int n = std::vsnprintf(message, sizeof message, format, ap);
    size_t len = n < 0 ? 0 : std::min(static_cast<size_t>(n), sizeof message - 1);
    while (len > 0 && message[len - 1] == '\n') --len;
    const auto now = std::chrono::system_clock::now();
    const std::time_t secs = std::chrono::system_clock::to_time_t(now);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
    std::tm local{};
    localtime_r(&secs, &local);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &local);
    const char* label = level >= rocksdb::InfoLogLevel::ERROR_LEVEL  ? "error"
                        : level == rocksdb::InfoLogLevel::WARN_LEVEL ? "warning"
                                                                     : "info";
    // One fprintf per line: lines from several threads do not interleave.
    std::fprintf(stderr, "%s.%03d %s rocksdb: %.*s\n", stamp, static_cast<int>(ms.count()), label,
                 static_cast<int>(len), message);
  }
};

// point_lookups: the CF is read by key (meta). Otherwise it is written on
// the hot path and read only by iteration (at open and by verify): loan
// states are served from the in-memory table, cells from the aggregator,
// so a vector memtable (O(1) append, sorted at flush) replaces the skiplist.
rocksdb::ColumnFamilyOptions CfOptions(const std::shared_ptr<rocksdb::Cache>& cache,
                                       bool point_lookups) {
  rocksdb::ColumnFamilyOptions cf;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  if (point_lookups) {
    // Loan states are read by key (MultiGet); a bloom filter skips SSTs.
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10, false));
    table.whole_key_filtering = true;
  }
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  if (!point_lookups) cf.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
  cf.write_buffer_size = 64u << 20;          // 64 MiB memtables: fewer, larger flushes
  cf.compression = rocksdb::kNoCompression;  // values are small binary records
  // Off while Open loads the loan table and the cells (Ledger::Open turns
  // them on): compactions left pending at the last close would otherwise
  // take a core from the loading threads (a fresh 10M-loan store, 5
  // restarts each: median 5.5 s -> 4.3 s).
  cf.disable_auto_compactions = true;
  return cf;
}

}  // namespace

RocksOptions MakeRocksOptions(const LedgerOptions& options) {
  auto cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  RocksOptions out;
  out.db.create_if_missing = true;
  out.db.create_missing_column_families = true;
  out.db.max_background_jobs = 2;  // the machine has 2 cores
  out.db.bytes_per_sync = 1u << 20;
  // The meta column family takes a few bytes per group and would never fill
  // a memtable, so without a bound every WAL file stays (1.3 GB after 10M
  // loans, all replayed at open). Past this size RocksDB flushes the column
  // families that hold the oldest WAL.
  out.db.max_total_wal_size = 256u << 20;
  // Vector memtables; there is one writer anyway.
  out.db.allow_concurrent_memtable_write = false;
  // No LOG file on the data disk (StderrLogger above says why).
  out.db.info_log = std::make_shared<StderrLogger>();
  out.db.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  if (options.env != nullptr) out.db.env = options.env;
  out.column_families = {
      {rocksdb::kDefaultColumnFamilyName, CfOptions(cache, true)},
      {std::string(kCfLoans), CfOptions(cache, false)},
      {std::string(kCfJournal), CfOptions(cache, false)},
      {std::string(kCfCells), CfOptions(cache, false)},
  };
  return out;
}

}  // namespace loanledger::storage
