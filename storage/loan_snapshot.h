// Loan snapshots: every loan's state written to one file, so that the
// writer need not put a loan state into RocksDB for every event (internal
// to storage/; format in storage/README.md). Open loads the newest snapshot
// and replays the journal from the batch the snapshot names.
//
// A file is written to "<name>.tmp", synced, renamed and its directory
// synced; its header, written last, names how many blocks and loans it
// holds, so a torn or truncated file is refused, never half-read.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "schema/status.h"
#include "storage/loan_slot.h"

namespace loanledger::storage {

// Loans with their keys, as read from disk in one block.
struct LoanBlock {
  std::string keys;            // the loan keys, concatenated
  std::vector<uint32_t> ends;  // end of each key in keys
  std::vector<LoanSlot> slots;

  size_t size() const { return slots.size(); }
  std::string_view Key(size_t i) const {
    const uint32_t begin = i == 0 ? 0 : ends[i - 1];
    return std::string_view(keys).substr(begin, ends[i] - begin);
  }
  void Clear() {
    keys.clear();
    ends.clear();
    slots.clear();
  }
  void Add(std::string_view key, const LoanSlot& slot) {
    keys.append(key);
    ends.push_back(static_cast<uint32_t>(keys.size()));
    slots.push_back(slot);
  }
};

// Decodes a loan state value (codec.h) into a slot, checking what the
// writer relies on: the attributes obey the field rules, the balance is in
// range. False when the value is not a loan state.
bool DecodeLoanSlot(std::string_view value, LoanSlot* out);

// Every block but the last is this size (so that several readers can
// share a file by block number).
inline constexpr size_t kSnapshotBlockBytes = 1u << 20;

struct SnapshotInfo {
  uint64_t replay_from = 0;  // first journal batch the snapshot may not hold
  uint64_t loans = 0;
  uint64_t blocks = 0;
};

// Writes one snapshot. Add() only encodes into memory, so a caller holding
// a lock can add a range of loans and write them out after releasing it.
class SnapshotWriter {
 public:
  // Creates `path`.tmp; the snapshot holds loan states as of journal batch
  // replay_from - 1 or later.
  static Result<std::unique_ptr<SnapshotWriter>> Create(std::string path, uint64_t replay_from);
  ~SnapshotWriter();  // removes the .tmp file unless Commit() succeeded
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  void Add(std::string_view key, const LoanSlot& slot);
  Status WritePending();  // writes the blocks Add() filled
  // Writes the rest and the header, syncs, renames to `path`, syncs the directory.
  Status Commit();
  uint64_t loans() const { return loans_; }

 private:
  SnapshotWriter(std::string path, int fd, uint64_t replay_from);
  void SealBlock();
  Status WriteAll(const char* data, size_t n, uint64_t offset);

  std::string path_;
  int fd_ = -1;
  uint64_t replay_from_ = 0;
  uint64_t loans_ = 0;
  uint64_t blocks_ = 0;   // sealed blocks
  uint64_t written_ = 0;  // bytes written after the header
  std::string block_;     // the block being filled (header space first)
  uint32_t block_loans_ = 0;
  std::string pending_;  // sealed blocks not yet written
  std::string value_;    // Add()'s encoding buffer (no allocation per loan)
  bool committed_ = false;
};

// Reads the header of the snapshot at `path`, checking it.
Result<SnapshotInfo> ReadSnapshotInfo(const std::string& path);

// Reads blocks first, first + stride, ... of the snapshot at `path`,
// checking each block's checksum and every record, and passes each block's
// loans to `sink` (which returns false to stop early).
Status ReadSnapshotBlocks(const std::string& path, const SnapshotInfo& info, uint64_t first,
                          uint64_t stride, const std::function<bool(LoanBlock&&)>& sink);

}  // namespace loanledger::storage
