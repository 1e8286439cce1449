// Open reads every meta value it relies on as present-and-valid, absent
// (only in a store that never applied a batch), or an error that stops the
// open (issue 17, item 1): a store whose meta was damaged with RocksDB's
// own `ldb` tool, and a read that fails (a file system that fails the Nth
// read of a table file), never open with next_batch back at 1, which
// would write journal batch 1 again over the audit trail.
#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "schema/limits.h"
#include "storage/codec.h"
#include "storage/ledger.h"
#include "tests/unit/ledger_test_support.h"

namespace loanledger::storage {
namespace {

using namespace loanledger::storage::test;  // NOLINT(google-build-using-namespace): test helpers

bool HaveLdb() { return std::system("command -v ldb >/dev/null 2>&1") == 0; }

std::string Hex(std::string_view bytes) {
  std::string out = "0x";
  char b[3];
  for (unsigned char c : bytes) {
    std::snprintf(b, sizeof b, "%02X", c);
    out += b;
  }
  return out;
}

std::string U64Le(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

class StorageLedgerOpenTest : public StorageLedgerTest {
 protected:
  // Three batches of one loan each: journal 1..3, next_batch 4, loans 3.
  void ApplyThree() {
    MustApply({Disburse("L1", 1, "2024-01-02", 1'000)});
    MustApply({Disburse("L2", 1, "2024-01-02", 2'000)});
    MustApply({Disburse("L3", 1, "2024-01-02", 3'000)});
    ASSERT_EQ(ledger_->Stats().batches_applied, 3u);
  }

  // Runs `ldb` on the closed store's meta (default column family).
  void Ldb(const std::string& args) {
    Close();
    const std::string cmd =
        "ldb --db=" + dir_ + " --column_family=default " + args + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  void LdbPut(std::string_view key, std::string_view value) {
    Ldb("--hex put " + Hex(key) + " " + Hex(value));
  }
  void LdbDelete(std::string_view key) { Ldb("--hex delete " + Hex(key)); }

  // Open must fail, naming what is wrong.
  void ExpectOpenFails(Status::Code code, std::string_view needle) {
    Close();
    Result<std::unique_ptr<Ledger>> opened = Ledger::Open(Options());
    ASSERT_FALSE(opened.ok()) << "opened a damaged store; batches_applied = "
                              << (*opened)->Stats().batches_applied;
    EXPECT_EQ(opened.status().code(), code) << opened.status().ToString();
    EXPECT_NE(opened.status().message().find(needle), std::string::npos)
        << opened.status().ToString();
  }
};

constexpr const char* kNoLdb =
    "ldb (Debian package rocksdb-tools) is not installed; scripts/install-deps.sh installs it";

TEST_F(StorageLedgerOpenTest, LdbItselfLeavesAGoodStoreOpenable) {
  if (!HaveLdb()) GTEST_SKIP() << kNoLdb;
  ASSERT_NO_FATAL_FAILURE(ApplyThree());
  ASSERT_NO_FATAL_FAILURE(LdbPut("next_batch", U64Le(4)));  // the value it already holds
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(ledger_->Stats().batches_applied, 3u);
  EXPECT_EQ(ledger_->Stats().loans, 3u);
}

TEST_F(StorageLedgerOpenTest, MissingNextBatchStopsTheOpen) {
  if (!HaveLdb()) GTEST_SKIP() << kNoLdb;
  ASSERT_NO_FATAL_FAILURE(ApplyThree());
  ASSERT_NO_FATAL_FAILURE(LdbDelete("next_batch"));
  ExpectOpenFails(Status::Code::kCorruption, "next_batch");
}

TEST_F(StorageLedgerOpenTest, MalformedNextBatchStopsTheOpen) {
  if (!HaveLdb()) GTEST_SKIP() << kNoLdb;
  ASSERT_NO_FATAL_FAILURE(ApplyThree());
  ASSERT_NO_FATAL_FAILURE(LdbPut("next_batch", std::string("\x04\x00\x00", 3)));
  ExpectOpenFails(Status::Code::kCorruption, "next_batch");
}

TEST_F(StorageLedgerOpenTest, NextBatchBehindTheJournalStopsTheOpen) {
  if (!HaveLdb()) GTEST_SKIP() << kNoLdb;
  ASSERT_NO_FATAL_FAILURE(ApplyThree());
  ASSERT_NO_FATAL_FAILURE(LdbPut("next_batch", U64Le(2)));
  ExpectOpenFails(Status::Code::kCorruption, "journal");
}

TEST_F(StorageLedgerOpenTest, NextBatchZeroStopsTheOpen) {
  if (!HaveLdb()) GTEST_SKIP() << kNoLdb;
  ASSERT_NO_FATAL_FAILURE(ApplyThree());
  ASSERT_NO_FATAL_FAILURE(LdbPut("next_batch", U64Le(0)));
  ExpectOpenFails(Status::Code::kCorruption, "next_batch");
}

TEST_F(StorageLedgerOpenTest, MissingOrMalformedLoanCountStopsTheOpen) {
  if (!HaveLdb()) GTEST_SKIP() << kNoLdb;
  ASSERT_NO_FATAL_FAILURE(ApplyThree());
  ASSERT_NO_FATAL_FAILURE(LdbPut("loans", "three"));
  ExpectOpenFails(Status::Code::kCorruption, "loans");
  ASSERT_NO_FATAL_FAILURE(LdbDelete("loans"));
  ExpectOpenFails(Status::Code::kCorruption, "loans");
}

TEST_F(StorageLedgerOpenTest, MissingFormatInAStoreWithBatchesStopsTheOpen) {
  if (!HaveLdb()) GTEST_SKIP() << kNoLdb;
  ASSERT_NO_FATAL_FAILURE(ApplyThree());
  ASSERT_NO_FATAL_FAILURE(LdbDelete("format"));
  ExpectOpenFails(Status::Code::kCorruption, "format");
}

TEST_F(StorageLedgerOpenTest, MalformedInstitutionEntryStopsTheOpen) {
  if (!HaveLdb()) GTEST_SKIP() << kNoLdb;
  ASSERT_NO_FATAL_FAILURE(ApplyThree());
  ASSERT_NO_FATAL_FAILURE(LdbPut("inst/B0001", std::string("\x01\x00", 2)));
  ExpectOpenFails(Status::Code::kCorruption, "B0001");
}

TEST_F(StorageLedgerOpenTest, MalformedSnapshotEntryStopsTheOpen) {
  if (!HaveLdb()) GTEST_SKIP() << kNoLdb;
  ASSERT_NO_FATAL_FAILURE(ApplyThree());
  ASSERT_NO_FATAL_FAILURE(LdbPut("loan_snapshot", U64Le(99)));  // past the journal's end
  ExpectOpenFails(Status::Code::kCorruption, "snapshot");
}

// Meta integers are little-endian, as the host-order memcpy that wrote
// them before the codec did on x86-64: old stores read the same.
TEST(StorageCodecTest, MetaIntegersAndInstitutionEntries) {
  EXPECT_EQ(EncodeU32(0x01020304u), std::string("\x04\x03\x02\x01", 4));
  EXPECT_EQ(EncodeU64(2), U64Le(2));
  uint32_t v = 0;
  EXPECT_TRUE(DecodeU32(std::string("\x02\x00\x00\x00", 4), &v));
  EXPECT_EQ(v, 2u);
  EXPECT_FALSE(DecodeU32(std::string("\x02\x00\x00", 3), &v));
  std::string name;
  uint32_t id = 0;
  EXPECT_TRUE(DecodeInstitutionEntry(InstitutionKey("B0001"), EncodeU32(7), &name, &id));
  EXPECT_EQ(name, "B0001");
  EXPECT_EQ(id, 7u);
  EXPECT_FALSE(DecodeInstitutionEntry(InstitutionKey("B0001"), EncodeU32(0), &name, &id));
  EXPECT_FALSE(
      DecodeInstitutionEntry(InstitutionKey("B0001"), EncodeU32(kInstitutionsMax + 1), &name, &id));
  EXPECT_FALSE(DecodeInstitutionEntry(InstitutionKey("B0001"), U64Le(7), &name, &id));
  EXPECT_FALSE(DecodeInstitutionEntry("next_batch", EncodeU32(7), &name, &id));
  char buf[12];
  StoreU32(buf, 0xa1b2c3d4u);
  StoreU64(buf + 4, 0x0102030405060708ull);
  EXPECT_EQ(std::string(buf, 4), "\xd4\xc3\xb2\xa1");
  EXPECT_EQ(LoadU32(buf), 0xa1b2c3d4u);
  EXPECT_EQ(LoadU64(buf + 4), 0x0102030405060708ull);
}

// A store that never applied a batch has no counters: absent is fine there.
TEST_F(StorageLedgerOpenTest, AStoreWithoutBatchesReopensAndAppliesFromOne) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(ledger_->Stats().batches_applied, 0u);
  const ApplyResult r = Apply({Disburse("L1", 1, "2024-01-02", 1'000)});
  EXPECT_EQ(r.batch_no, 1u);
}

// A file system that fails one read of a table (.sst) file: the Nth, counted
// from when it is armed. RocksDB's own read path sees an I/O error.
class FailNthSstRead final : public rocksdb::FileSystemWrapper {
 public:
  explicit FailNthSstRead(const std::shared_ptr<rocksdb::FileSystem>& base)
      : rocksdb::FileSystemWrapper(base) {}
  const char* Name() const override { return "FailNthSstRead"; }

  void Arm(int64_t n) {
    reads_ = 0;
    fail_at_ = n;
    fired_ = false;
  }
  bool fired() const { return fired_; }

  rocksdb::IOStatus NewRandomAccessFile(const std::string& name,
                                        const rocksdb::FileOptions& options,
                                        std::unique_ptr<rocksdb::FSRandomAccessFile>* result,
                                        rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewRandomAccessFile(name, options, result, dbg);
    if (s.ok() && name.ends_with(".sst")) {
      *result = std::make_unique<File>(std::move(*result), this);
    }
    return s;
  }

 private:
  class File final : public rocksdb::FSRandomAccessFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSRandomAccessFile> f, FailNthSstRead* fs)
        : rocksdb::FSRandomAccessFileOwnerWrapper(std::move(f)), fs_(fs) {}
    rocksdb::IOStatus Read(uint64_t offset, size_t n, const rocksdb::IOOptions& options,
                           rocksdb::Slice* result, char* scratch,
                           rocksdb::IODebugContext* dbg) const override {
      if (fs_->ShouldFail()) return rocksdb::IOStatus::IOError("injected read error");
      return target()->Read(offset, n, options, result, scratch, dbg);
    }
    rocksdb::IOStatus MultiRead(rocksdb::FSReadRequest* reqs, size_t num_reqs,
                                const rocksdb::IOOptions& options,
                                rocksdb::IODebugContext* dbg) override {
      if (fs_->ShouldFail()) return rocksdb::IOStatus::IOError("injected read error");
      return target()->MultiRead(reqs, num_reqs, options, dbg);
    }

   private:
    FailNthSstRead* fs_;
  };

  bool ShouldFail() {
    if (fail_at_ <= 0 || ++reads_ != fail_at_) return false;
    fired_ = true;
    return true;
  }

  std::atomic<int64_t> reads_{0};
  std::atomic<int64_t> fail_at_{0};
  std::atomic<bool> fired_{false};
};

// Every read of a table file during open, failed in turn: the open either
// fails with a message, or succeeds with the counters the store holds
// (RocksDB may retry or not need the failed read). Never batches_applied
// back at 0. The block cache holds nothing, so that every meta read at open
// reaches the file.
TEST_F(StorageLedgerOpenTest, AFailedReadAtOpenNeverLeavesNextBatchAtOne) {
  ASSERT_NO_FATAL_FAILURE(ApplyThree());
  Close();  // flushes: meta, journal and cells are now in table files
  auto fs = std::make_shared<FailNthSstRead>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  LedgerOptions o = Options();
  o.env = env.get();
  o.block_cache_bytes = 0;
  int failed_opens = 0;
  int64_t n = 1;
  for (; n <= 2000; ++n) {
    fs->Arm(n);
    Result<std::unique_ptr<Ledger>> opened = Ledger::Open(o);
    if (!fs->fired()) {
      ASSERT_TRUE(opened.ok()) << opened.status().ToString();
      break;  // every read of this open was failed once
    }
    if (!opened.ok()) {
      ++failed_opens;
      EXPECT_FALSE(opened.status().message().empty());
      continue;
    }
    fs->Arm(0);
    EXPECT_EQ((*opened)->Stats().batches_applied, 3u) << "read " << n << " failed";
    EXPECT_EQ((*opened)->Stats().loans, 3u) << "read " << n << " failed";
    opened->reset();  // closes (a snapshot, a flush) before the next round
  }
  ASSERT_LE(n, 2000) << "more table reads at open than expected";
  EXPECT_GT(failed_opens, 0) << "no injected failure stopped an open";
  // The store itself is unharmed.
  fs->Arm(0);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(ledger_->Stats().batches_applied, 3u);
}

// Issue 17, item 6: what an encoder asserts it never writes, the decoder
// refuses (damage is Corruption, never an assertion).
TEST(StorageCodecTest, DecodersRefuseWhatTheEncodersNeverWrite) {
  const CellKey good{Category::kTotal, 11, 1, 20000};
  CellKey key;
  ASSERT_TRUE(DecodeCellKey(EncodeCellKey(good), &key));
  EXPECT_EQ(PackCell(key), PackCell(good));
  std::string far = EncodeCellKey(good);
  far[6] = '\x01';  // day 2^24 + 20000: past what a packed cell holds
  EXPECT_FALSE(DecodeCellKey(far, &key));
  std::string negative = EncodeCellKey(good);
  negative[6] = '\x80';
  EXPECT_FALSE(DecodeCellKey(negative, &key));

  const std::string submitter = "bank";
  const std::vector<LoanEvent> events = {Disburse("L1", 1, "2024-01-02", 1'000)};
  std::string record;
  EncodeJournalRecord(1, submitter, events, &record);
  JournalRecord rec;
  ASSERT_TRUE(DecodeJournalRecord(record, &rec));
  EXPECT_EQ(rec.events.size(), 1u);
  const size_t count_at = 1 + 8 + 2 + submitter.size();  // format, received_ms, submitter
  auto with_count = [&](uint32_t n) {
    std::string r = record;
    StoreU32(r.data() + count_at, n);
    return r;
  };
  EXPECT_FALSE(DecodeJournalRecord(with_count(0), &rec));
  EXPECT_FALSE(DecodeJournalRecord(with_count(static_cast<uint32_t>(kBatchEventsMax) + 1), &rec));
  EXPECT_FALSE(DecodeJournalRecord(with_count(0xffffffffu), &rec));  // no 4G-event allocation
}

TEST_F(StorageLedgerOpenTest, ACellKeyOutOfRangeStopsTheOpenAsCorruption) {
  if (!HaveLdb()) GTEST_SKIP() << kNoLdb;
  ASSERT_NO_FATAL_FAILURE(ApplyThree());
  std::string key = EncodeCellKey(CellKey{Category::kTotal, 11, 1, 20000});
  key[6] = '\x01';  // a day no packed cell can hold
  Close();
  const std::string cmd = "ldb --db=" + dir_ + " --column_family=" + std::string(kCfCells) +
                          " --hex put " + Hex(key) + " " + Hex(EncodeMeasures(Measures{})) +
                          " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  ExpectOpenFails(Status::Code::kCorruption, "undecodable cell");
}

}  // namespace
}  // namespace loanledger::storage
