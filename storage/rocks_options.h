// The RocksDB options of a ledger store: the DB, and the column families
// (meta, loans, journal, cells) tuned for how each is written and read.
// Internal to storage/; Ledger::Open (ledger.cc) opens the store with them.
#pragma once

#include <rocksdb/db.h>

#include <vector>

#include "storage/ledger.h"

namespace loanledger::storage {

// What rocksdb::DB::Open takes: the DB's options and the four column
// families in the order LedgerImpl expects its handles (meta, loans,
// journal, cells). Auto compactions start off in every column family
// (LedgerImpl::EnableCompactions turns them on after the load).
struct RocksOptions {
  rocksdb::DBOptions db;
  std::vector<rocksdb::ColumnFamilyDescriptor> column_families;
};
RocksOptions MakeRocksOptions(const LedgerOptions& options);

}  // namespace loanledger::storage
