// The ledger's loan snapshots (storage/snapshot.cc, ledger.cc): loan
// states written by the background thread and at a clean close, loaded at
// open with the journal's tail replayed after them. Checked against a
// plain model of every loan's state:
// - snapshots written while batches go on, then a reopen: every loan,
//   report and series as before, Verify clean;
// - the tail replayed over a snapshot as the background thread can leave
//   it (each loan as of the snapshot's start or later, loans created
//   meanwhile present or not), and over a snapshot missing a loan (refused);
// - kill -9 of a writer with snapshots running (and of one that never wrote
//   one): every acknowledged batch is back;
// - a damaged, mislabelled or missing snapshot file: Open fails with a
//   status, and succeeds again once the file is put back;
// - two snapshot readers at open; stray files removed at open;
// - a format-1 store (loan states in the "loans" column family) migrated;
// - a snapshot file of format 1 (no per-loan masks) opened and classified.
// The store is opened with the RocksDB API directly to rewind or rewrite
// meta keys and to build the format-1 store.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "schema/category.h"
#include "schema/date.h"
#include "schema/event.h"
#include "schema/query.h"
#include "storage/codec.h"
#include "storage/ledger.h"
#include "storage/loan_slot.h"
#include "storage/loan_snapshot.h"
#include "tests/unit/ledger_model.h"
#include "tests/unit/ledger_test_support.h"

namespace loanledger::storage {
namespace {

using namespace loanledger::storage::test;  // NOLINT(google-build-using-namespace): test helpers

// Generous bound for the background thread to finish a snapshot (a
// liveness bound on a loaded sanitizer build, not a timing assertion).
constexpr auto kSnapshotWaitMax = std::chrono::seconds(240);

// ---------------------------------------------------------------------------
// The model: every loan's state, changed by the events it generates.

struct ModelLoan {
  std::string inst;
  std::string loan;
  LoanState state;
};

class LoanModel {
 public:
  explicit LoanModel(uint64_t seed) : rng_(seed) {}

  // n new loans, each disbursed.
  std::vector<LoanEvent> DisburseNew(size_t n) {
    std::vector<LoanEvent> out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) out.push_back(NewLoan());
    return out;
  }

  // n events: mostly repays, write-offs, reclassifications and further
  // disbursements of existing loans (a loan may appear more than once),
  // some new loans.
  std::vector<LoanEvent> Mixed(size_t n) {
    std::vector<LoanEvent> out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      if (loans_.empty() || rng_.Chance(0.08)) {
        out.push_back(NewLoan());
      } else {
        const auto at = static_cast<size_t>(rng_.Int(0, static_cast<int64_t>(loans_.size()) - 1));
        out.push_back(Next(loans_[at]));
      }
    }
    return out;
  }

  const std::vector<ModelLoan>& loans() const { return loans_; }
  std::vector<std::pair<std::string, std::string>> Keys() const {
    std::vector<std::pair<std::string, std::string>> keys;
    for (const ModelLoan& l : loans_) keys.emplace_back(l.inst, l.loan);
    return keys;
  }

 private:
  static void Apply(const LoanEvent& e, LoanState* s) {
    s->last_seq = e.seq;
    s->last_date = e.business_date;
    s->attributes = e.attributes;
    switch (e.kind) {
      case EventKind::kDisburse:
        s->balance_fen += e.amount_fen;
        break;
      case EventKind::kRepay:
      case EventKind::kWriteOff:
        s->balance_fen -= e.amount_fen;
        break;
      case EventKind::kReclassify:
        break;
    }
  }

  LoanEvent NewLoan() {
    static const char* const kInstitutions[] = {"B0001", "B0002", "RCB-17"};
    const size_t i = loans_.size();
    loans_.push_back(ModelLoan{kInstitutions[i % 3], "N" + std::to_string(i), LoanState{}});
    const Day first = D("2022-01-01");
    const Day last = D("2024-06-30");
    // One draw per statement: the child and the parent of the crash tests
    // must draw in the same order.
    const int64_t amount_fen = model::RandomAmount(rng_);
    const LoanAttributes attributes = model::RandomAttributes(rng_);
    LoanEvent e = Ev(loans_.back().inst, loans_.back().loan, 1, "2022-01-01", EventKind::kDisburse,
                     amount_fen, attributes);
    e.business_date = static_cast<Day>(rng_.Int(first, last));
    Apply(e, &loans_.back().state);
    return e;
  }

  LoanEvent Next(ModelLoan& l) {
    LoanEvent e;
    e.institution_id = l.inst;
    e.loan_id = l.loan;
    e.seq = l.state.last_seq + 1;
    e.business_date = static_cast<Day>(l.state.last_date + rng_.Int(0, 20));
    e.attributes = rng_.Chance(0.2) ? model::RandomAttributes(rng_) : l.state.attributes;
    int kind = static_cast<int>(rng_.Int(0, 9));
    const int64_t balance = l.state.balance_fen;
    if (balance == 0 && kind >= 2 && kind <= 6) kind = rng_.Chance(0.5) ? 0 : 9;
    if (kind <= 1) {
      e.kind = EventKind::kDisburse;
      e.amount_fen = model::RandomAmount(rng_);
    } else if (kind <= 5) {
      e.kind = EventKind::kRepay;
      e.amount_fen = rng_.Chance(0.2) ? balance : rng_.Int(1, balance);
    } else if (kind == 6) {
      e.kind = EventKind::kWriteOff;
      e.amount_fen = rng_.Int(1, balance);
    } else {
      e.kind = EventKind::kReclassify;
      e.amount_fen = 0;
      e.attributes = model::RandomAttributes(rng_);
    }
    Apply(e, &l.state);
    return e;
  }

  model::Rng rng_;
  std::vector<ModelLoan> loans_;
};

// Every loan of the model answers QueryLoan with the model's state, and
// the ledger knows no other loan.
void ExpectLedgerHoldsModel(const Ledger& ledger, const LoanModel& m) {
  EXPECT_EQ(ledger.Stats().loans, m.loans().size());
  int reported = 0;
  for (const ModelLoan& l : m.loans()) {
    Result<LoanView> v = ledger.QueryLoan(l.inst, l.loan);
    std::string wrong;
    if (!v.ok()) {
      wrong = v.status().ToString();
    } else {
      if (v->last_seq != l.state.last_seq) {
        wrong += " last_seq " + std::to_string(v->last_seq) + " want " +
                 std::to_string(l.state.last_seq);
      }
      if (v->last_business_date != l.state.last_date) {
        wrong +=
            " date " + FormatDate(v->last_business_date) + " want " + FormatDate(l.state.last_date);
      }
      if (v->balance_fen != l.state.balance_fen) {
        wrong += " balance " + std::to_string(v->balance_fen) + " want " +
                 std::to_string(l.state.balance_fen);
      }
      if (!(v->attributes == l.state.attributes)) wrong += " attributes differ";
      if (v->categories != Classify(l.state.attributes)) wrong += " categories differ";
    }
    if (!wrong.empty()) {
      ADD_FAILURE() << "loan " << l.inst << "/" << l.loan << ":" << wrong;
      if (++reported == 10) {
        ADD_FAILURE() << "(more loans not checked)";
        return;
      }
    }
  }
}

// Verify finds nothing and checked exactly `loans` loans.
void ExpectVerifyClean(Ledger& ledger, size_t loans) {
  Result<VerifyReport> v = ledger.Verify();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  for (size_t i = 0; i < v->differences.size() && i < 10; ++i) {
    ADD_FAILURE() << v->differences[i].what << ": expected " << v->differences[i].expected
                  << ", actual " << v->differences[i].actual;
  }
  EXPECT_TRUE(v->differences.empty());
  EXPECT_EQ(v->loans_checked, loans);
}

// Polls Stats() until the ledger has written at least n snapshots since
// it was opened; false after kSnapshotWaitMax.
bool WaitForSnapshots(const Ledger& ledger, uint64_t n) {
  const auto deadline = std::chrono::steady_clock::now() + kSnapshotWaitMax;
  while (ledger.Stats().snapshots_written < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// ---------------------------------------------------------------------------
// Files and the raw store

std::string SnapshotDir(const std::string& dir) { return dir + "/loan-snapshots"; }

std::string SnapshotFile(const std::string& dir, uint64_t replay_from) {
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.loans", static_cast<unsigned long long>(replay_from));
  return SnapshotDir(dir) + "/" + name;
}

// The names in the snapshot directory, sorted.
std::vector<std::string> SnapshotDirEntries(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(SnapshotDir(dir), ec)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The one snapshot file of a closed store: its replay_from, from its name.
uint64_t OnlySnapshot(const std::string& dir) {
  const std::vector<std::string> names = SnapshotDirEntries(dir);
  EXPECT_EQ(names.size(), 1u) << "snapshot files: " << testing::PrintToString(names);
  if (names.size() != 1 || names[0].size() != 26) return 0;
  EXPECT_EQ(names[0].substr(20), ".loans");
  return std::stoull(names[0].substr(0, 20));
}

// Every loan of a snapshot file, in file order (one reader).
std::vector<std::pair<std::string, LoanSlot>> ReadSnapshotLoans(const std::string& path) {
  std::vector<std::pair<std::string, LoanSlot>> loans;
  Result<SnapshotInfo> info = ReadSnapshotInfo(path);
  EXPECT_TRUE(info.ok()) << info.status().ToString();
  if (!info.ok()) return loans;
  const Status s = ReadSnapshotBlocks(path, *info, 0, 1, [&](LoanBlock&& block) {
    for (size_t i = 0; i < block.size(); ++i) loans.emplace_back(block.Key(i), block.slots[i]);
    return true;
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(loans.size(), info->loans);
  return loans;
}

// The column families of a closed store opened with RocksDB directly.
using RawFn = std::function<void(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta,
                                 rocksdb::ColumnFamilyHandle* loans)>;
void WithRawStore(const std::string& dir, const RawFn& fn) {
  rocksdb::DBOptions db_options;
  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(db_options, dir, &names);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const std::string& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  s = rocksdb::DB::Open(db_options, dir, cfs, &handles, &raw);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::ColumnFamilyHandle* meta = nullptr;
  rocksdb::ColumnFamilyHandle* loans = nullptr;
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    if (h->GetName() == rocksdb::kDefaultColumnFamilyName) meta = h;
    if (h->GetName() == kCfLoans) loans = h;
  }
  if (meta != nullptr && loans != nullptr) fn(db.get(), meta, loans);
  for (rocksdb::ColumnFamilyHandle* h : handles) db->DestroyColumnFamilyHandle(h);
  EXPECT_TRUE(db->Close().ok());
  ASSERT_NE(meta, nullptr);
  ASSERT_NE(loans, nullptr) << "no column family named loans";
}

// The meta key naming the newest snapshot: its replay_from, 0 if absent.
uint64_t MetaSnapshot(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta) {
  std::string value;
  const rocksdb::Status s = db->Get(rocksdb::ReadOptions(), meta, kMetaLoanSnapshot, &value);
  if (s.IsNotFound()) return 0;
  EXPECT_TRUE(s.ok()) << s.ToString();
  uint64_t from = 0;
  EXPECT_TRUE(DecodeU64(value, &from));
  return from;
}

void PutMetaSnapshot(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta, uint64_t from) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  ASSERT_TRUE(db->Put(wo, meta, kMetaLoanSnapshot, EncodeU64(from)).ok());
}

bool IsCorruption(const Status& s) { return s.code() == Status::Code::kCorruption; }

// ---------------------------------------------------------------------------

class StorageLedgerSnapshotTest : public StorageLedgerTest {
 protected:
  Result<std::unique_ptr<Ledger>> TryOpen() { return Ledger::Open(Options()); }

  void ApplyMixed(LoanModel& m, int batches, size_t events = 64) {
    for (int i = 0; i < batches; ++i) ASSERT_NO_FATAL_FAILURE(MustApply(m.Mixed(events)));
  }

  void ExpectSameAnswers(const Snapshot& before, const Snapshot& after) {
    ASSERT_EQ(before.reports.size(), after.reports.size());
    for (size_t i = 0; i < before.reports.size(); ++i) {
      ExpectSameReport(before.reports[i], after.reports[i]);
    }
    ASSERT_EQ(before.series.size(), after.series.size());
    for (size_t i = 0; i < before.series.size(); ++i) {
      EXPECT_EQ(before.series[i].points, after.series[i].points) << "series " << i;
    }
    ASSERT_EQ(before.loans.size(), after.loans.size());
    for (size_t i = 0; i < before.loans.size(); ++i)
      ExpectSameLoan(before.loans[i], after.loans[i]);
  }
};

// Snapshots written by the background thread while batches go on (the
// table copied in pieces of up to 3 ms between groups), more batches after
// the first one, then a clean close and a reopen.
TEST_F(StorageLedgerSnapshotTest, BackgroundSnapshotsThenReopenGiveIdenticalAnswers) {
  snapshot_events_ = 20;
  ASSERT_NO_FATAL_FAILURE(Reopen());
  LoanModel m(1);
  ASSERT_NO_FATAL_FAILURE(MustApply(m.DisburseNew(20'000)));  // five copy steps of 4,096 loans
  ASSERT_NO_FATAL_FAILURE(ApplyMixed(m, 150));
  ASSERT_TRUE(WaitForSnapshots(*ledger_, 1)) << "no snapshot written";
  EXPECT_GE(SnapshotDirEntries(dir_).size(), 1u);
  ASSERT_NO_FATAL_FAILURE(ApplyMixed(m, 60));
  ExpectLedgerHoldsModel(*ledger_, m);
  ASSERT_NO_FATAL_FAILURE(ExpectVerifyClean(*ledger_, m.loans().size()));
  const Snapshot before = Take(m.Keys());
  const uint64_t batches = ledger_->Stats().batches_applied;

  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(ledger_->Stats().batches_applied, batches);
  ExpectLedgerHoldsModel(*ledger_, m);
  ExpectSameAnswers(before, Take(m.Keys()));
  ASSERT_NO_FATAL_FAILURE(ExpectVerifyClean(*ledger_, m.loans().size()));
  // The writer sees the loans as the model does (a missing or stale loan
  // would make the next event a seq gap or a duplicate).
  ASSERT_NO_FATAL_FAILURE(ApplyMixed(m, 20));
  ExpectLedgerHoldsModel(*ledger_, m);

  // Once more with the table changed after the reopen.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ExpectLedgerHoldsModel(*ledger_, m);
  ASSERT_NO_FATAL_FAILURE(ExpectVerifyClean(*ledger_, m.loans().size()));
}

// LedgerOptions::snapshot_events: applied events (not duplicates, not
// rejected ones) count towards it; below it no snapshot starts, at it one
// does.
TEST_F(StorageLedgerSnapshotTest, SnapshotStartsOnceThresholdEventsWereApplied) {
  snapshot_events_ = 1'000;
  ASSERT_NO_FATAL_FAILURE(Reopen());
  LoanModel m(13);
  std::vector<LoanEvent> first = m.DisburseNew(900);
  ASSERT_NO_FATAL_FAILURE(MustApply(first));
  const ApplyResult dup = Apply(first);  // all duplicates
  EXPECT_EQ(dup.events_duplicate, 900u);
  const ApplyResult rejected = Apply({Repay("N0", 99, "2025-01-01", 1)});  // a seq gap
  EXPECT_FALSE(rejected.applied);
  ASSERT_NO_FATAL_FAILURE(MustApply(m.Mixed(99)));
  EXPECT_EQ(ledger_->Stats().events_since_snapshot, 999u);
  EXPECT_EQ(ledger_->Stats().snapshots_written, 0u);
  EXPECT_TRUE(SnapshotDirEntries(dir_).empty()) << "a snapshot below the threshold";
  ASSERT_NO_FATAL_FAILURE(MustApply(m.Mixed(1)));
  ASSERT_TRUE(WaitForSnapshots(*ledger_, 1)) << "no snapshot at the threshold";
  EXPECT_EQ(ledger_->Stats().events_since_snapshot, 0u) << "reset when the snapshot began";
  EXPECT_EQ(SnapshotDirEntries(dir_).size(), 1u);
  EXPECT_EQ(ledger_->Stats().snapshots_written, 1u);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(ledger_->Stats().snapshots_written, 0u) << "counted since open";
  ExpectLedgerHoldsModel(*ledger_, m);
}

// A snapshot that cannot be written (its directory replaced by a file) is
// counted as failed; events_since_snapshot keeps growing from the newest
// snapshot written; the next attempt waits for another interval and, with
// the directory back, succeeds.
TEST_F(StorageLedgerSnapshotTest, FailedSnapshotKeepsCountingAndTheNextAttemptSucceeds) {
  snapshot_events_ = 1'000;
  ASSERT_NO_FATAL_FAILURE(Reopen());
  LoanModel m(21);
  fs::remove_all(SnapshotDir(dir_));
  ASSERT_NO_FATAL_FAILURE(WriteFile(SnapshotDir(dir_), "not a directory"));
  ASSERT_NO_FATAL_FAILURE(MustApply(m.DisburseNew(1'000)));
  const auto deadline = std::chrono::steady_clock::now() + kSnapshotWaitMax;
  while (ledger_->Stats().snapshots_failed < 1) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no snapshot attempt at the threshold";
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(ledger_->Stats().snapshots_written, 0u);
  EXPECT_EQ(ledger_->Stats().events_since_snapshot, 1'000u);
  const std::string error = ledger_->Stats().last_snapshot_error;
  EXPECT_NE(error.find("loan-snapshots"), std::string::npos) << "names the path: " << error;
  ASSERT_NO_FATAL_FAILURE(MustApply(m.Mixed(500)));  // less than an interval since the attempt
  EXPECT_EQ(ledger_->Stats().snapshots_failed, 1u) << "retried before another interval";
  EXPECT_EQ(ledger_->Stats().events_since_snapshot, 1'500u);

  fs::remove(SnapshotDir(dir_));
  fs::create_directories(SnapshotDir(dir_));
  ASSERT_NO_FATAL_FAILURE(MustApply(m.Mixed(500)));  // an interval since the failed attempt
  ASSERT_TRUE(WaitForSnapshots(*ledger_, 1)) << "no snapshot once the directory is back";
  EXPECT_EQ(ledger_->Stats().snapshots_failed, 1u);
  EXPECT_EQ(ledger_->Stats().events_since_snapshot, 0u);
  EXPECT_EQ(ledger_->Stats().last_snapshot_error, error) << "kept beside snapshots_failed";
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ExpectLedgerHoldsModel(*ledger_, m);
  ASSERT_NO_FATAL_FAILURE(ExpectVerifyClean(*ledger_, m.loans().size()));
}

// After a crash the journal tail replayed at open counts as events since
// the newest snapshot (it is what the next crash would replay too).
TEST_F(StorageLedgerSnapshotTest, ReplayedTailCountsAsEventsSinceTheSnapshot) {
  LoanModel m(22);
  ASSERT_NO_FATAL_FAILURE(MustApply(m.DisburseNew(300)));
  Close();  // a clean close: a snapshot, nothing to replay
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(ledger_->Stats().events_since_snapshot, 0u);
  // Meta points back at no snapshot: open replays the whole journal.
  Close();
  WithRawStore(
      dir_, [](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta, rocksdb::ColumnFamilyHandle*) {
        ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), meta, std::string(kMetaLoanSnapshot)).ok());
      });
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(ledger_->Stats().events_since_snapshot, 300u);
  ExpectLedgerHoldsModel(*ledger_, m);
}

TEST_F(StorageLedgerSnapshotTest, CleanCloseLeavesOneSnapshotNamedInMeta) {
  LoanModel m(2);
  ASSERT_NO_FATAL_FAILURE(MustApply(m.DisburseNew(100)));
  ASSERT_NO_FATAL_FAILURE(ApplyMixed(m, 5));
  const uint64_t next_batch = ledger_->Stats().batches_applied + 1;
  Close();
  EXPECT_EQ(OnlySnapshot(dir_), next_batch) << "the final snapshot holds every batch";
  WithRawStore(
      dir_, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta, rocksdb::ColumnFamilyHandle*) {
        EXPECT_EQ(MetaSnapshot(db, meta), next_batch);
      });
  const auto loans = ReadSnapshotLoans(SnapshotFile(dir_, next_batch));
  EXPECT_EQ(loans.size(), m.loans().size());
  // Reopened and closed without a batch: nothing new, the same file stays.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  Close();
  EXPECT_EQ(OnlySnapshot(dir_), next_batch);
}

TEST_F(StorageLedgerSnapshotTest, EmptyStoreReopensWithoutASnapshot) {
  Close();
  EXPECT_TRUE(SnapshotDirEntries(dir_).empty());
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(ledger_->Stats().loans, 0u);
  MustApply({Disburse("L1", 1, "2024-01-10", 1000)});
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(Loan("B0001", "L1").balance_fen, 1000);
}

// The journal's tail replayed over a snapshot as the background thread can
// leave it. The thread reads the table in pieces while the writer goes on,
// so a snapshot that names batch a holds each loan as of batch a - 1 or
// later, and a loan created since may or may not be in it. Built here from
// two exact snapshots (at a and at b > a), loan by loan.
TEST_F(StorageLedgerSnapshotTest, TailIsReplayedOverASnapshotWithNewerLoanStates) {
  LoanModel m(3);
  ASSERT_NO_FATAL_FAILURE(MustApply(m.DisburseNew(12'000)));
  ASSERT_NO_FATAL_FAILURE(ApplyMixed(m, 40));
  const size_t loans_at_a = m.loans().size();
  Close();
  const uint64_t a = OnlySnapshot(dir_);
  ASSERT_GT(a, 1u);
  const auto at_a = ReadSnapshotLoans(SnapshotFile(dir_, a));
  ASSERT_EQ(at_a.size(), loans_at_a);

  ASSERT_NO_FATAL_FAILURE(Reopen());
  ASSERT_NO_FATAL_FAILURE(ApplyMixed(m, 60));
  ASSERT_NO_FATAL_FAILURE(MustApply(m.DisburseNew(300)));  // new loans in the tail
  ASSERT_NO_FATAL_FAILURE(ApplyMixed(m, 20));
  const Snapshot expected = Take(m.Keys());
  Close();
  const uint64_t b = OnlySnapshot(dir_);  // the snapshot at a is gone
  ASSERT_GT(b, a);
  const auto at_b = ReadSnapshotLoans(SnapshotFile(dir_, b));
  ASSERT_EQ(at_b.size(), m.loans().size());
  std::map<std::string, LoanSlot> a_by_key(at_a.begin(), at_a.end());

  // Some loans must have changed in the tail, some not, for the mixes to mean anything.
  size_t changed = 0;
  for (const auto& [key, slot] : at_b) {
    auto it = a_by_key.find(key);
    changed += it != a_by_key.end() && it->second.last_seq != slot.last_seq ? 1 : 0;
  }
  ASSERT_GT(changed, 100u);
  ASSERT_LT(changed, loans_at_a - 100);

  enum class Mix { kExactlyAtA, kAllNewer, kAlternate };
  for (Mix mix : {Mix::kExactlyAtA, Mix::kAllNewer, Mix::kAlternate}) {
    SCOPED_TRACE(mix == Mix::kExactlyAtA ? "exactly at a"
                 : mix == Mix::kAllNewer ? "all newer"
                                         : "alternate");
    {
      Result<std::unique_ptr<SnapshotWriter>> w = SnapshotWriter::Create(SnapshotFile(dir_, a), a);
      ASSERT_TRUE(w.ok()) << w.status().ToString();
      for (size_t i = 0; i < at_b.size(); ++i) {
        const auto& [key, newer] = at_b[i];
        auto old = a_by_key.find(key);
        const bool take_old = mix == Mix::kExactlyAtA || (mix == Mix::kAlternate && i % 2 == 0);
        if (old == a_by_key.end()) {
          if (!take_old) (*w)->Add(key, newer);  // created in the tail: present or not
        } else {
          (*w)->Add(key, take_old ? old->second : newer);
        }
      }
      ASSERT_TRUE((*w)->Commit().ok());
    }
    fs::remove(SnapshotFile(dir_, b));
    WithRawStore(dir_, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta,
                           rocksdb::ColumnFamilyHandle*) { PutMetaSnapshot(db, meta, a); });
    ASSERT_NO_FATAL_FAILURE(Reopen());
    ExpectLedgerHoldsModel(*ledger_, m);
    ExpectSameAnswers(expected, Take(m.Keys()));
    ASSERT_NO_FATAL_FAILURE(ExpectVerifyClean(*ledger_, m.loans().size()));
    Close();  // writes the snapshot at b again, removes the one at a
    EXPECT_EQ(OnlySnapshot(dir_), b);
  }
}

// A snapshot that lacks a loan which existed when it began is refused: a
// loan without events in the tail would be lost silently, one with events
// there would not replay.
TEST_F(StorageLedgerSnapshotTest, SnapshotMissingALoanIsRefusedAtOpen) {
  LoanModel m(4);
  ASSERT_NO_FATAL_FAILURE(MustApply(m.DisburseNew(2'000)));
  Close();
  const uint64_t a = OnlySnapshot(dir_);
  const auto at_a = ReadSnapshotLoans(SnapshotFile(dir_, a));
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ASSERT_NO_FATAL_FAILURE(ApplyMixed(m, 10));
  std::map<std::string, uint64_t> seq_now;
  for (const ModelLoan& l : m.loans()) seq_now[LoanKey(l.inst, l.loan)] = l.state.last_seq;
  Close();
  const uint64_t b = OnlySnapshot(dir_);
  const std::string good_b = ReadFile(SnapshotFile(dir_, b));

  std::string quiet, busy;  // a loan without tail events, one with
  for (const auto& [key, slot] : at_a) {
    if (quiet.empty() && seq_now[key] == slot.last_seq) quiet = key;
    if (busy.empty() && seq_now[key] > slot.last_seq) busy = key;
  }
  ASSERT_FALSE(quiet.empty());
  ASSERT_FALSE(busy.empty());
  for (const std::string& missing : {quiet, busy}) {
    SCOPED_TRACE(missing == quiet ? "no events in the tail" : "events in the tail");
    {
      Result<std::unique_ptr<SnapshotWriter>> w = SnapshotWriter::Create(SnapshotFile(dir_, a), a);
      ASSERT_TRUE(w.ok());
      for (const auto& [key, slot] : at_a) {
        if (key != missing) (*w)->Add(key, slot);
      }
      ASSERT_TRUE((*w)->Commit().ok());
    }
    fs::remove(SnapshotFile(dir_, b));
    WithRawStore(dir_, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta,
                           rocksdb::ColumnFamilyHandle*) { PutMetaSnapshot(db, meta, a); });
    Result<std::unique_ptr<Ledger>> opened = TryOpen();
    ASSERT_FALSE(opened.ok()) << "a loan of the snapshot is missing";
    EXPECT_TRUE(IsCorruption(opened.status())) << opened.status().ToString();
    // Put the good snapshot back: everything is there.
    ASSERT_NO_FATAL_FAILURE(WriteFile(SnapshotFile(dir_, b), good_b));
    fs::remove(SnapshotFile(dir_, a));
    WithRawStore(dir_, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta,
                           rocksdb::ColumnFamilyHandle*) { PutMetaSnapshot(db, meta, b); });
    ASSERT_NO_FATAL_FAILURE(Reopen());
    ExpectLedgerHoldsModel(*ledger_, m);
    Close();
  }
}

// A snapshot holding a loan twice, or a loan the store never had (valid
// records under a valid CRC, as a buggy writer would leave them), is
// refused too.
TEST_F(StorageLedgerSnapshotTest, SnapshotWithADuplicateOrUnknownLoanIsRefusedAtOpen) {
  LoanModel m(12);
  ASSERT_NO_FATAL_FAILURE(MustApply(m.DisburseNew(1'000)));
  Close();
  const uint64_t from = OnlySnapshot(dir_);
  const std::string path = SnapshotFile(dir_, from);
  const std::string good = ReadFile(path);
  const auto loans = ReadSnapshotLoans(path);
  ASSERT_EQ(loans.size(), 1'000u);
  for (const char* what : {"a loan twice", "an unknown loan"}) {
    SCOPED_TRACE(what);
    {
      Result<std::unique_ptr<SnapshotWriter>> w = SnapshotWriter::Create(path, from);
      ASSERT_TRUE(w.ok());
      for (const auto& [key, slot] : loans) (*w)->Add(key, slot);
      if (std::string_view(what) == "a loan twice") {
        (*w)->Add(loans[500].first, loans[500].second);
      } else {
        (*w)->Add(LoanKey("B0001", "NEVER-DISBURSED"), loans[500].second);
      }
      ASSERT_TRUE((*w)->Commit().ok());
    }
    Result<std::unique_ptr<Ledger>> opened = TryOpen();
    ASSERT_FALSE(opened.ok());
    EXPECT_TRUE(IsCorruption(opened.status())) << opened.status().ToString();
  }
  ASSERT_NO_FATAL_FAILURE(WriteFile(path, good));
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ExpectLedgerHoldsModel(*ledger_, m);
}

// Damage to the newest snapshot: Open returns Corruption (no crash, no
// silent loss), leaves the file where it is, and opens again once the
// file is repaired.
TEST_F(StorageLedgerSnapshotTest, DamagedSnapshotMakesOpenFailWithCorruption) {
  LoanModel m(5);
  ASSERT_NO_FATAL_FAILURE(MustApply(m.DisburseNew(40'000)));  // two blocks or more
  ASSERT_NO_FATAL_FAILURE(ApplyMixed(m, 20));
  Close();
  const uint64_t from = OnlySnapshot(dir_);
  const std::string path = SnapshotFile(dir_, from);
  const std::string good = ReadFile(path);
  ASSERT_GT(good.size(), 64 + kSnapshotBlockBytes) << "the test wants two blocks";

  auto with_crc = [](std::string bytes) {
    const uint32_t crc =
        static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), 60));
    std::memcpy(bytes.data() + 60, &crc, 4);
    return bytes;
  };
  auto loans_field = [&](int64_t delta) {
    std::string bytes = good;
    uint64_t loans = 0;
    std::memcpy(&loans, bytes.data() + 24, 8);
    loans += static_cast<uint64_t>(delta);
    std::memcpy(bytes.data() + 24, &loans, 8);
    return with_crc(bytes);
  };
  auto flipped = [&](size_t at) {
    std::string bytes = good;
    bytes[at] = static_cast<char>(bytes[at] ^ 0x10);
    return bytes;
  };
  const std::vector<std::pair<std::string, std::string>> damages = {
      {"header byte", flipped(20)},
      {"first block's payload", flipped(64 + 16 + 77)},
      {"second block's payload", flipped(64 + kSnapshotBlockBytes + 16 + 4321)},
      {"last byte", flipped(good.size() - 1)},
      {"truncated by one byte", good.substr(0, good.size() - 1)},
      {"truncated to one block", good.substr(0, 64 + kSnapshotBlockBytes)},
      {"header only", good.substr(0, 64)},
      {"empty file", std::string()},
      {"header counts one loan more", loans_field(+1)},
      {"header counts one loan fewer", loans_field(-1)},
  };
  for (const auto& [what, bytes] : damages) {
    SCOPED_TRACE(what);
    ASSERT_NO_FATAL_FAILURE(WriteFile(path, bytes));
    Result<std::unique_ptr<Ledger>> opened = TryOpen();
    ASSERT_FALSE(opened.ok());
    EXPECT_TRUE(IsCorruption(opened.status())) << opened.status().ToString();
    EXPECT_TRUE(fs::exists(path)) << "a failed open must not remove the snapshot";
  }
  // A well-formed snapshot under the wrong name (it says it starts elsewhere).
  ASSERT_NO_FATAL_FAILURE(WriteFile(path, good));
  {
    const auto loans = ReadSnapshotLoans(path);
    Result<std::unique_ptr<SnapshotWriter>> w = SnapshotWriter::Create(path, from - 1);
    ASSERT_TRUE(w.ok());
    for (const auto& [key, slot] : loans) (*w)->Add(key, slot);
    ASSERT_TRUE((*w)->Commit().ok());
    Result<std::unique_ptr<Ledger>> opened = TryOpen();
    ASSERT_FALSE(opened.ok());
    EXPECT_TRUE(IsCorruption(opened.status())) << opened.status().ToString();
  }
  ASSERT_NO_FATAL_FAILURE(WriteFile(path, good));
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ExpectLedgerHoldsModel(*ledger_, m);
  ASSERT_NO_FATAL_FAILURE(ExpectVerifyClean(*ledger_, m.loans().size()));
}

// Meta names a snapshot whose file is gone: Open fails and names the file,
// rather than starting with no loans; with the file back it opens.
TEST_F(StorageLedgerSnapshotTest, MissingSnapshotFileMakesOpenFail) {
  LoanModel m(6);
  ASSERT_NO_FATAL_FAILURE(MustApply(m.DisburseNew(500)));
  ASSERT_NO_FATAL_FAILURE(ApplyMixed(m, 5));
  Close();
  const uint64_t from = OnlySnapshot(dir_);
  const std::string path = SnapshotFile(dir_, from);
  const std::string good = ReadFile(path);

  fs::remove(path);
  Result<std::unique_ptr<Ledger>> opened = TryOpen();
  ASSERT_FALSE(opened.ok()) << "opened without its loan snapshot";
  EXPECT_NE(opened.status().message().find(path), std::string::npos) << opened.status().ToString();

  fs::remove_all(SnapshotDir(dir_));  // the whole directory
  opened = TryOpen();
  ASSERT_FALSE(opened.ok()) << "opened without its loan snapshot directory";

  fs::create_directories(SnapshotDir(dir_));
  ASSERT_NO_FATAL_FAILURE(WriteFile(path, good));
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ExpectLedgerHoldsModel(*ledger_, m);
  ASSERT_NO_FATAL_FAILURE(ExpectVerifyClean(*ledger_, m.loans().size()));
}

// Open reads a large snapshot with two threads taking alternate blocks;
// parallel_load_loans = 1 covers that path on a small store.
TEST_F(StorageLedgerSnapshotTest, TwoSnapshotReadersRestoreEveryLoan) {
  LoanModel m(7);
  ASSERT_NO_FATAL_FAILURE(MustApply(m.DisburseNew(60'000)));
  ASSERT_NO_FATAL_FAILURE(ApplyMixed(m, 30));
  const Snapshot before = Take(m.Keys());
  Close();
  Result<SnapshotInfo> info = ReadSnapshotInfo(SnapshotFile(dir_, OnlySnapshot(dir_)));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  ASSERT_GE(info->blocks, 3u) << "the test wants several blocks for two readers";
  parallel_load_loans_ = 1;
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ExpectLedgerHoldsModel(*ledger_, m);
  ExpectSameAnswers(before, Take(m.Keys()));
  ASSERT_NO_FATAL_FAILURE(ExpectVerifyClean(*ledger_, m.loans().size()));
  ASSERT_NO_FATAL_FAILURE(ApplyMixed(m, 10));
  ExpectLedgerHoldsModel(*ledger_, m);
}

// Files left by a snapshot that a crash interrupted (a .tmp) or that was
// superseded are removed at open; the one named in meta stays.
TEST_F(StorageLedgerSnapshotTest, OpenRemovesStraySnapshotFiles) {
  LoanModel m(8);
  ASSERT_NO_FATAL_FAILURE(MustApply(m.DisburseNew(50)));
  Close();
  const uint64_t from = OnlySnapshot(dir_);
  const std::string good = ReadFile(SnapshotFile(dir_, from));
  ASSERT_NO_FATAL_FAILURE(WriteFile(SnapshotFile(dir_, from + 7) + ".tmp", "half a snapshot"));
  ASSERT_NO_FATAL_FAILURE(WriteFile(SnapshotFile(dir_, from - 1), good));
  ASSERT_NO_FATAL_FAILURE(WriteFile(SnapshotFile(dir_, from + 3), good));
  ASSERT_EQ(SnapshotDirEntries(dir_).size(), 4u);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(SnapshotDirEntries(dir_),
            std::vector<std::string>{fs::path(SnapshotFile(dir_, from)).filename().string()});
  ExpectLedgerHoldsModel(*ledger_, m);
}

// ---------------------------------------------------------------------------
// kill -9

constexpr uint64_t kCrashSeed = 9;
constexpr size_t kCrashLoans = 20'000;
constexpr size_t kCrashEvents = 64;

// The child of the crash tests: applies the model's batches with sync
// (batch 1 disburses kCrashLoans loans, the others are Mixed(kCrashEvents)),
// counting every acknowledged batch in `progress`, and dies by SIGKILL
// without closing. With snapshots: a small threshold, so that snapshots
// run while it writes, and it goes on until two are written, then applies
// 40 more batches (the tail). Without: the automatic threshold, never
// reached here, so that open replays the whole journal.
[[noreturn]] void ApplyThenKill9(const std::string& dir, const std::string& progress,
                                 bool snapshots) {
  LedgerOptions o;
  o.path = dir;
  o.sync = true;
  o.snapshot_events = snapshots ? 20 : 0;
  Result<std::unique_ptr<Ledger>> opened = Ledger::Open(o);
  if (!opened.ok()) std::_Exit(3);
  Ledger& ledger = **opened;
  const int fd = ::open(progress.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) std::_Exit(6);
  uint64_t acknowledged = 0;
  auto apply = [&](std::vector<LoanEvent> events) {
    Result<ApplyResult> r = ledger.Apply(MakeBatch(std::move(events)));
    if (!r.ok() || !r->applied) std::_Exit(4);
    ++acknowledged;
    if (::pwrite(fd, &acknowledged, sizeof acknowledged, 0) != sizeof acknowledged) std::_Exit(6);
  };
  LoanModel m(kCrashSeed);
  apply(m.DisburseNew(kCrashLoans));
  for (int i = 0; i < 100; ++i) apply(m.Mixed(kCrashEvents));
  if (snapshots) {
    const auto deadline = std::chrono::steady_clock::now() + kSnapshotWaitMax;
    while (ledger.Stats().snapshots_written < 2) {
      if (std::chrono::steady_clock::now() > deadline) std::_Exit(5);
      apply(m.Mixed(kCrashEvents));
    }
    for (int i = 0; i < 40; ++i) apply(m.Mixed(kCrashEvents));
  }
  std::raise(SIGKILL);
  std::abort();
}

void CrashAndRecover(bool snapshots) {
  // "threadsafe" re-executes this binary for the child, so the directory
  // travels in the environment (as in AcknowledgedBatchSurvivesKill9).
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  constexpr const char* kDirEnv = "LOANLEDGER_UNIT_SNAPSHOT_CRASH_DIR";
  std::string dir;
  if (const char* env = std::getenv(kDirEnv)) {
    dir = env;  // the child
  } else {
    dir = MakeTempDir();
    setenv(kDirEnv, dir.c_str(), 1);
  }
  const std::string progress = dir + ".progress";
  EXPECT_EXIT(ApplyThenKill9(dir, progress, snapshots), testing::KilledBySignal(SIGKILL), "");
  unsetenv(kDirEnv);

  uint64_t acknowledged = 0;
  {
    const std::string bytes = ReadFile(progress);
    ASSERT_EQ(bytes.size(), sizeof acknowledged) << "the child reported no progress";
    std::memcpy(&acknowledged, bytes.data(), sizeof acknowledged);
  }
  ASSERT_GE(acknowledged, snapshots ? 141u : 101u);
  // The same batches, regenerated: the state every acknowledged batch left.
  LoanModel m(kCrashSeed);
  (void)m.DisburseNew(kCrashLoans);
  for (uint64_t i = 1; i < acknowledged; ++i) (void)m.Mixed(kCrashEvents);

  const std::vector<std::string> before_open = SnapshotDirEntries(dir);
  SCOPED_TRACE("acknowledged batches " + std::to_string(acknowledged) +
               ", snapshot files at the kill " + testing::PrintToString(before_open));
  {
    LedgerOptions o;
    o.path = dir;
    Result<std::unique_ptr<Ledger>> opened = Ledger::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    EXPECT_EQ((*opened)->Stats().batches_applied, acknowledged);
    ExpectLedgerHoldsModel(**opened, m);
    ASSERT_NO_FATAL_FAILURE(ExpectVerifyClean(**opened, m.loans().size()));
    // Open left the one snapshot meta names (none without snapshots), no .tmp.
    const std::vector<std::string> after_open = SnapshotDirEntries(dir);
    if (snapshots) {
      EXPECT_EQ(after_open.size(), 1u) << "before open: " << testing::PrintToString(before_open)
                                       << ", after: " << testing::PrintToString(after_open);
    } else {
      EXPECT_TRUE(after_open.empty()) << testing::PrintToString(after_open);
    }
    // The writer goes on from there: the next batch applies.
    Result<ApplyResult> r = (*opened)->Apply(MakeBatch(m.Mixed(kCrashEvents)));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->applied);
  }
  {
    LedgerOptions o;
    o.path = dir;
    Result<std::unique_ptr<Ledger>> opened = Ledger::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    ExpectLedgerHoldsModel(**opened, m);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::remove(progress, ec);
}

TEST(StorageLedgerSnapshotDurability, AcknowledgedBatchesSurviveKill9WithSnapshotsRunning) {
  CrashAndRecover(true);
}

TEST(StorageLedgerSnapshotDurability, AcknowledgedBatchesSurviveKill9BeforeAnySnapshot) {
  CrashAndRecover(false);
}

// ---------------------------------------------------------------------------
// Format 1

// A format-1 store, built by hand from a format-2 one: every loan's state
// in the "loans" column family (as the previous version wrote it), format
// 1 in meta, no snapshot. Open migrates it: the same answers, a snapshot
// named in meta, format 2, the column family emptied.
// A snapshot file of the format before masks (format 1) still opens: every
// loan is classified at open and the answers are those before; a close
// with no batch since writes it again as format 2, and the open after it
// classifies nothing; later batches apply as the model says.
TEST_F(StorageLedgerSnapshotTest, FormatOneSnapshotFileStillOpens) {
  LoanModel m(77);
  ASSERT_NO_FATAL_FAILURE(MustApply(m.DisburseNew(3000)));
  ASSERT_NO_FATAL_FAILURE(ApplyMixed(m, 20));
  const Snapshot before = Take(m.Keys());
  Close();
  const uint64_t from = OnlySnapshot(dir_);
  const std::string path = SnapshotFile(dir_, from);
  Result<SnapshotInfo> info = ReadSnapshotInfo(path);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->format, 2u);
  const std::vector<std::pair<std::string, LoanSlot>> loans = ReadSnapshotLoans(path);
  ASSERT_EQ(loans.size(), m.loans().size());
  {
    Result<std::unique_ptr<SnapshotWriter>> w = SnapshotWriter::Create(path, from);  // format 1
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (const auto& [key, slot] : loans) (*w)->Add(key, slot);
    ASSERT_TRUE((*w)->Commit().ok());
  }
  info = ReadSnapshotInfo(path);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  ASSERT_EQ(info->format, 1u);

  ASSERT_NO_FATAL_FAILURE(Reopen());
  LedgerStats st = ledger_->Stats();
  EXPECT_EQ(st.open_masks_from_snapshot, 0u);
  EXPECT_EQ(st.open_loans_classified, m.loans().size());
  ExpectSameAnswers(before, Take(m.Keys()));
  ExpectVerifyClean(*ledger_, m.loans().size());

  Close();
  EXPECT_EQ(OnlySnapshot(dir_), from) << "no batch since: the same replay_from";
  info = ReadSnapshotInfo(path);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->format, 2u) << "not written again with masks";
  ASSERT_NO_FATAL_FAILURE(Reopen());
  st = ledger_->Stats();
  EXPECT_EQ(st.open_masks_from_snapshot, m.loans().size());
  EXPECT_EQ(st.open_loans_classified, 0u);
  ExpectSameAnswers(before, Take(m.Keys()));
  ASSERT_NO_FATAL_FAILURE(ApplyMixed(m, 20));
  ExpectLedgerHoldsModel(*ledger_, m);
  ExpectVerifyClean(*ledger_, m.loans().size());
}

TEST_F(StorageLedgerSnapshotTest, FormatOneStoreIsMigratedAtOpen) {
  LoanModel m(10);
  ASSERT_NO_FATAL_FAILURE(MustApply(m.DisburseNew(3'000)));
  ASSERT_NO_FATAL_FAILURE(ApplyMixed(m, 30));
  const Snapshot before = Take(m.Keys());
  const uint64_t next_batch = ledger_->Stats().batches_applied + 1;
  Close();

  WithRawStore(dir_, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta,
                         rocksdb::ColumnFamilyHandle* loans) {
    rocksdb::WriteBatch wb;
    std::string value;
    for (const LoanView& v : before.loans) {
      EncodeLoanState(LoanState{v.last_seq, v.last_business_date, v.balance_fen, v.attributes},
                      &value);
      ASSERT_TRUE(wb.Put(loans, LoanKey(v.institution_id, v.loan_id), value).ok());
    }
    const uint32_t format = 1;
    ASSERT_TRUE(
        wb.Put(meta, kMetaFormat, rocksdb::Slice(reinterpret_cast<const char*>(&format), 4)).ok());
    ASSERT_TRUE(wb.Delete(meta, kMetaLoanSnapshot).ok());
    rocksdb::WriteOptions wo;
    wo.sync = true;
    ASSERT_TRUE(db->Write(wo, &wb).ok());
  });
  fs::remove_all(SnapshotDir(dir_));

  ASSERT_NO_FATAL_FAILURE(Reopen());
  ExpectLedgerHoldsModel(*ledger_, m);
  ExpectSameAnswers(before, Take(m.Keys()));
  ASSERT_NO_FATAL_FAILURE(ExpectVerifyClean(*ledger_, m.loans().size()));
  Close();

  EXPECT_EQ(OnlySnapshot(dir_), next_batch);
  WithRawStore(dir_, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta,
                         rocksdb::ColumnFamilyHandle* loans) {
    std::string value;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), meta, kMetaFormat, &value).ok());
    ASSERT_EQ(value.size(), 4u);
    uint32_t format = 0;
    std::memcpy(&format, value.data(), 4);
    EXPECT_EQ(format, 2u);
    EXPECT_EQ(MetaSnapshot(db, meta), next_batch);
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), loans));
    it->SeekToFirst();
    EXPECT_FALSE(it->Valid()) << "the loans column family still holds " << it->key().ToString(true);
    EXPECT_TRUE(it->status().ok());
  });
  // The snapshot itself holds every loan with its state.
  const auto loans = ReadSnapshotLoans(SnapshotFile(dir_, next_batch));
  std::map<std::string, LoanState> by_key;
  for (const auto& [key, slot] : loans) by_key.emplace(key, slot.ToState());
  ASSERT_EQ(by_key.size(), m.loans().size());
  for (const ModelLoan& l : m.loans()) {
    auto it = by_key.find(LoanKey(l.inst, l.loan));
    ASSERT_NE(it, by_key.end()) << l.inst << "/" << l.loan;
    EXPECT_EQ(it->second, l.state) << l.inst << "/" << l.loan;
  }
  // And the migrated store goes on as a format-2 one.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ASSERT_NO_FATAL_FAILURE(ApplyMixed(m, 10));
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ExpectLedgerHoldsModel(*ledger_, m);
  ASSERT_NO_FATAL_FAILURE(ExpectVerifyClean(*ledger_, m.loans().size()));
}

// The migration takes the loan states from the column family (format 1
// had no tail to replay), not from a replay of the journal: one state
// changed there by a fen shows in QueryLoan, and Verify reports it.
TEST_F(StorageLedgerSnapshotTest, FormatOneMigrationLoadsTheColumnFamily) {
  LoanModel m(11);
  ASSERT_NO_FATAL_FAILURE(MustApply(m.DisburseNew(200)));
  const Snapshot before = Take(m.Keys());
  Close();
  WithRawStore(dir_, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta,
                         rocksdb::ColumnFamilyHandle* loans) {
    rocksdb::WriteOptions wo;
    std::string value;
    for (size_t i = 0; i < before.loans.size(); ++i) {
      const LoanView& v = before.loans[i];
      const int64_t balance = v.balance_fen + (i == 0 ? 1 : 0);  // one loan off by a fen
      EncodeLoanState(LoanState{v.last_seq, v.last_business_date, balance, v.attributes}, &value);
      ASSERT_TRUE(db->Put(wo, loans, LoanKey(v.institution_id, v.loan_id), value).ok());
    }
    const uint32_t format = 1;
    ASSERT_TRUE(
        db->Put(wo, meta, kMetaFormat, rocksdb::Slice(reinterpret_cast<const char*>(&format), 4))
            .ok());
    ASSERT_TRUE(db->Delete(wo, meta, kMetaLoanSnapshot).ok());
  });
  fs::remove_all(SnapshotDir(dir_));
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(Loan(before.loans[0].institution_id, before.loans[0].loan_id).balance_fen,
            before.loans[0].balance_fen + 1);
  Result<VerifyReport> v = ledger_->Verify();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_EQ(v->differences.size(), 1u);
  EXPECT_NE(v->differences[0].what.find(before.loans[0].loan_id), std::string::npos)
      << v->differences[0].what;
  EXPECT_EQ(v->differences[0].actual, v->differences[0].expected + 1);
}

}  // namespace
}  // namespace loanledger::storage
