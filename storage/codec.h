// On-disk encodings of storage/ (documented in storage/README.md): every
// value written to RocksDB or to a snapshot file is encoded and decoded
// here. Records that may change shape (loan states, journal records) start
// with a format byte so that a later version can read old data; fixed-size
// values (meta integers, institution ids, cells) are identified by their
// size and the store's format (kMetaFormat). Integers are little-endian.
// Internal to storage/ (tests may include it).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "schema/category.h"
#include "schema/event.h"
#include "schema/rules.h"

namespace loanledger::storage {

// Column family names (the default column family holds meta keys).
inline constexpr std::string_view kCfLoans = "loans";
inline constexpr std::string_view kCfJournal = "journal";
inline constexpr std::string_view kCfCells = "cells";

// Meta keys in the default column family.
inline constexpr std::string_view kMetaFormat = "format";         // u32 LE: kFormatVersion
inline constexpr std::string_view kMetaNextBatch = "next_batch";  // u64 LE: next journal number
inline constexpr std::string_view kMetaLoans = "loans";           // u64 LE: loans known
// u64 LE, cluster mode only: log position of the last replicated record applied.
inline constexpr std::string_view kMetaLogPosition = "log_position";
inline constexpr std::string_view kMetaInstitutionPrefix =
    "inst/";  // + institution_id -> u32 LE id
inline constexpr std::string_view kMetaLoanSnapshot =
    "loan_snapshot";  // u64 LE: replay_from of the newest snapshot
// 1: loan states in the "loans" column family, written with every group.
// 2: loan states in snapshot files (loan_snapshot.h) + the journal's tail.
inline constexpr uint32_t kFormatVersion = 2;

// Institutions get dense ids 1.. for cell keys; 0 means "all institutions"
// in the in-memory rollups. Bounded by the 24 bits a delta key gives them.
inline constexpr uint32_t kInstitutionsMax = (1u << 24) - 1;

// The five measures of a cell (docs/figures.md): for a day cell, the change on that
// day; for a cumulative figure, the sum over days.
struct Measures {
  int64_t balance_fen = 0;
  int64_t loan_count = 0;  // loans with balance > 0
  int64_t disbursed_fen = 0;
  int64_t repaid_fen = 0;
  int64_t written_off_fen = 0;

  // Inline: the apply path adds millions of these a second.
  Measures& operator+=(const Measures& o) {
    balance_fen += o.balance_fen;
    loan_count += o.loan_count;
    disbursed_fen += o.disbursed_fen;
    repaid_fen += o.repaid_fen;
    written_off_fen += o.written_off_fen;
    return *this;
  }
  Measures& operator-=(const Measures& o) {
    balance_fen -= o.balance_fen;
    loan_count -= o.loan_count;
    disbursed_fen -= o.disbursed_fen;
    repaid_fen -= o.repaid_fen;
    written_off_fen -= o.written_off_fen;
    return *this;
  }
  bool IsZero() const { return *this == Measures{}; }
  bool operator==(const Measures&) const = default;
};
inline Measures operator+(Measures a, const Measures& b) { return a += b; }
inline Measures operator-(Measures a, const Measures& b) { return a -= b; }

// A cell: category x province x institution x business date.
struct CellKey {
  Category category = Category::kTotal;
  uint8_t province = 0;      // 11..65; 0 = all (in-memory rollups only)
  uint32_t institution = 0;  // 1..kInstitutionsMax; 0 = all (in-memory rollups only)
  Day day = 0;
  bool operator==(const CellKey&) const = default;
};
// Cells whose province byte is >= this are a rules file's region groups
// (100 + the group's index, docs/categories.md), not provinces.
inline constexpr uint8_t kRegionGroupCellByteMin = 100;
// Packs a cell key into 64 bits (category 8 | province 8 | institution 24 | day 24).
uint64_t PackCell(const CellKey& k);
CellKey UnpackCell(uint64_t packed);

// Cell key on disk: 10 bytes, big-endian so that RocksDB orders cells by
// category, province, institution, then day.
std::string EncodeCellKey(const CellKey& k);
bool DecodeCellKey(std::string_view key, CellKey* out);
// Cell value on disk: five little-endian int64 (40 bytes), Measures order.
inline constexpr size_t kCellValueBytes = 40;
std::string EncodeMeasures(const Measures& m);
bool DecodeMeasures(std::string_view value, Measures* out);

// A loan's state: what the ledger needs to validate and classify its next
// event. Stored in loan snapshots (format 1: in the "loans" column family
// under LoanKey).
struct LoanState {
  uint64_t last_seq = 0;
  Day last_date = 0;
  int64_t balance_fen = 0;
  LoanAttributes attributes;
  bool operator==(const LoanState&) const = default;
};
// institution_id '\0' loan_id: neither part may contain NUL (validated).
std::string LoanKey(std::string_view institution_id, std::string_view loan_id);
bool SplitLoanKey(std::string_view key, std::string_view* institution_id,
                  std::string_view* loan_id);
void EncodeLoanState(const LoanState& s, std::string* out);
bool DecodeLoanState(std::string_view value, LoanState* out);

// Journal: one record per applied batch, key = batch number (u64 big-endian).
struct JournalRecord {
  uint64_t batch_no = 0;
  int64_t received_ms = 0;  // unix ms from the injected clock
  std::string submitter;
  std::vector<LoanEvent> events;  // the batch as submitted (duplicates included)
};
std::string EncodeJournalKey(uint64_t batch_no);
bool DecodeJournalKey(std::string_view key, uint64_t* batch_no);
void EncodeJournalRecord(int64_t received_ms, std::string_view submitter,
                         std::span<const LoanEvent> events, std::string* out);
bool DecodeJournalRecord(std::string_view value, JournalRecord* out);

// Little-endian fixed-width values (meta). Stores written before these
// existed held u32 meta values in host order (memcpy); every build target
// is little-endian (codec.cc asserts it), so they read identically.
std::string EncodeU32(uint32_t v);
bool DecodeU32(std::string_view value, uint32_t* out);  // false unless exactly 4 bytes
std::string EncodeU64(uint64_t v);
bool DecodeU64(std::string_view value, uint64_t* out);  // false unless exactly 8 bytes
// The same at a fixed position in a buffer (snapshot file and block headers).
void StoreU32(char* p, uint32_t v);
void StoreU64(char* p, uint64_t v);
uint32_t LoadU32(const char* p);
uint64_t LoadU64(const char* p);

// The institution dictionary in meta: kMetaInstitutionPrefix + name -> u32
// id (1..kInstitutionsMax). Decode is false unless the key has the prefix
// and the value is an id in range.
std::string InstitutionKey(std::string_view name);
bool DecodeInstitutionEntry(std::string_view key, std::string_view value, std::string* name,
                            uint32_t* id);

}  // namespace loanledger::storage
