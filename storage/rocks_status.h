// The one conversion of a RocksDB status into ours (internal to storage/):
// NotFound stays NotFound (a caller that reads a key decides whether absent
// is allowed), Corruption stays Corruption (a checksum mismatch is damaged
// data, not a passing I/O error), everything else is an I/O error.
#pragma once

#include <rocksdb/status.h>

#include <string>
#include <string_view>

#include "schema/status.h"

namespace loanledger::storage {

inline Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string m = std::string(what) + ": " + s.ToString();
  if (s.IsCorruption()) return Status::Corruption(std::move(m));
  if (s.IsNotFound()) return Status::NotFound(std::move(m));
  return Status::IoError(std::move(m));
}

}  // namespace loanledger::storage
