// Loan snapshots: every loan's state written to one file, so that the
// writer need not put a loan state into RocksDB for every event (internal
// to storage/; format in storage/README.md). Open loads the newest snapshot
// and replays the journal from the batch the snapshot names.
//
// A file is written to "<name>.tmp", synced, renamed and its directory
// synced; its header, written last, names how many blocks and loans it
// holds, so a torn or truncated file is refused, never half-read.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "schema/rules.h"
#include "schema/status.h"
#include "storage/loan_slot.h"

namespace loanledger::storage {

// Loans with their keys, as read from disk in one block. Read from a
// format-2 file, a slot's mask is an index into `masks` (the categories it
// was classified into under the snapshot's rules) or kMaskUnresolved.
struct LoanBlock {
  std::string keys;            // the loan keys, concatenated
  std::vector<uint32_t> ends;  // end of each key in keys
  std::vector<LoanSlot> slots;
  std::vector<RuleMask> masks;  // the block's distinct masks (format 2)

  size_t size() const { return slots.size(); }
  std::string_view Key(size_t i) const {
    const uint32_t begin = i == 0 ? 0 : ends[i - 1];
    return std::string_view(keys).substr(begin, ends[i] - begin);
  }
  void Clear() {
    keys.clear();
    ends.clear();
    slots.clear();
    masks.clear();
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

// What identifies the classification a format-2 snapshot's masks were
// computed under: the first 12 bytes of a SHA-256 over kClassifyVersion
// and the rules file's text. Equal digests: a loan's stored mask is what
// Rules::Classify gives for its attributes now.
using RulesDigest = std::array<uint8_t, 12>;
RulesDigest DigestOfRules(const Rules& rules);
// Bump when Rules::Classify (schema/rules.cc) can give a different mask
// for the same rules text and attributes: snapshots written before are
// then classified again at open.
inline constexpr uint32_t kClassifyVersion = 1;

struct SnapshotInfo {
  uint64_t replay_from = 0;  // first journal batch the snapshot may not hold
  uint64_t loans = 0;
  uint64_t blocks = 0;
  uint32_t format = 0;  // 1: no masks; 2: per-loan masks under rules_digest
  RulesDigest rules_digest{};
};

// Writes one snapshot. Add() only encodes into memory, so a caller holding
// a lock can add a range of loans and write them out after releasing it.
class SnapshotWriter {
 public:
  // Creates `path`.tmp; the snapshot holds loan states as of journal batch
  // replay_from - 1 or later. With `rules`, a format-2 file: each loan's
  // mask given to Add() is kept, under that digest; without, the format-1
  // file of older versions (no masks).
  static Result<std::unique_ptr<SnapshotWriter>> Create(std::string path, uint64_t replay_from,
                                                        const RulesDigest* rules = nullptr);
  ~SnapshotWriter();  // removes the .tmp file unless Commit() succeeded
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  // `mask`: the loan's categories under the digest's rules, or nullptr
  // (unknown: open classifies it). Ignored in a format-1 file.
  void Add(std::string_view key, const LoanSlot& slot, const RuleMask* mask = nullptr);
  Status WritePending();  // writes the blocks Add() filled
  // Writes the rest and the header, syncs, renames to `path`, syncs the directory.
  Status Commit();
  uint64_t loans() const { return loans_; }

 private:
  SnapshotWriter(std::string path, int fd, uint64_t replay_from, const RulesDigest* rules);
  void SealBlock();
  Status WriteAll(const char* data, size_t n, uint64_t offset);

  std::string path_;
  int fd_ = -1;
  uint64_t replay_from_ = 0;
  bool with_masks_ = false;  // format 2
  RulesDigest rules_{};
  std::vector<RuleMask> block_masks_;  // format 2: the block's mask table
  std::unordered_map<RuleMask, uint16_t> block_mask_ids_;
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
// checking each block's checksum and every record (a mask index within the
// block's table), and passes each block's loans to `sink` (which returns
// false to stop early).
Status ReadSnapshotBlocks(const std::string& path, const SnapshotInfo& info, uint64_t first,
                          uint64_t stride, const std::function<bool(LoanBlock&&)>& sink);

}  // namespace loanledger::storage
