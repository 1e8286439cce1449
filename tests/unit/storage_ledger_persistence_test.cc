// The ledger's persistence (docs/data.md): answers identical after reopening,
// durability of an acknowledged batch across kill -9, Verify on a good and a
// corrupted store, RebuildAggregates, and readers beside a writer. The
// corruption test opens the store with the RocksDB API directly.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "schema/category.h"
#include "schema/date.h"
#include "schema/event.h"
#include "schema/query.h"
#include "storage/ledger.h"
#include "tests/unit/ledger_test_support.h"

namespace loanledger::storage {
namespace {

using namespace loanledger::storage::test;  // NOLINT(google-build-using-namespace): test helpers

// ---------------------------------------------------------------------------
// Persistence and verification

std::vector<LoanEvent> SampleStream() {
  LoanAttributes mlt = Attrs();
  mlt.industry_code = "C2710";
  mlt.term_months = 60;
  mlt.srdi = true;
  return {
      Disburse("L1", 1, "2023-01-05", 5'000'000, mlt),
      Disburse("L2", 1, "2023-02-28", 700'000, Green(InRegion("440300")), "B0002"),
      Repay("L1", 2, "2023-06-30", 1'000'000, mlt),
      Reclassify("L2", 2, "2023-09-01", Srdi(InRegion("110101")), "B0002"),
      Disburse("L3", 1, "2024-02-29", 123'456, Green()),
      WriteOff("L2", 3, "2024-03-01", 100'000, Srdi(InRegion("110101")), "B0002"),
      Disburse("L1", 3, "2024-12-31", 10, mlt),
      Repay("L3", 2, "2025-01-02", 123'456, Green()),
  };
}

TEST_F(StorageLedgerTest, CloseAndReopenGivesIdenticalAnswers) {
  for (const LoanEvent& e : SampleStream()) MustApply({e});
  const std::vector<std::pair<std::string, std::string>> loans = {
      {"B0001", "L1"}, {"B0002", "L2"}, {"B0001", "L3"}};
  const Snapshot before = Take(loans);
  Reopen();
  ExpectSameSnapshot(before, Take(loans));
  if (HasFatalFailure()) return;
  // Exactly-once survives the restart: resent events are duplicates, the next seq applies.
  const ApplyResult dup = Apply(SampleStream());
  EXPECT_TRUE(dup.applied);
  EXPECT_EQ(dup.events_duplicate, SampleStream().size());
  MustApply({Repay("L1", 4, "2025-01-03", 10)});
  EXPECT_EQ(Loan("B0001", "L1").last_seq, 4u);
}

TEST_F(StorageLedgerTest, CompactionChangesNoAnswerAndVerifyStaysClean) {
  for (const LoanEvent& e : SampleStream()) MustApply({e});
  const std::vector<std::pair<std::string, std::string>> loans = {
      {"B0001", "L1"}, {"B0002", "L2"}, {"B0001", "L3"}};
  const Snapshot before = Take(loans);
  Result<CompactionReport> r = ledger_->Compact();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // Everything is in SST files afterwards (the memtables were flushed).
  EXPECT_GT(r->live_sst_bytes_after, 0u);
  EXPECT_EQ(ledger_->Stats().live_sst_bytes, r->live_sst_bytes_after);
  const Snapshot after = Take(loans);
  ASSERT_EQ(before.reports.size(), after.reports.size());
  for (size_t i = 0; i < before.reports.size(); ++i)
    ExpectSameReport(before.reports[i], after.reports[i]);
  for (size_t i = 0; i < before.loans.size(); ++i) ExpectSameLoan(before.loans[i], after.loans[i]);
  Result<VerifyReport> v = ledger_->Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->differences.empty());
  // Writes go on after it, and the store reopens.
  MustApply({Repay("L1", 4, "2025-01-03", 10)});
  Reopen();
  EXPECT_EQ(Loan("B0001", "L1").last_seq, 4u);
}

TEST_F(StorageLedgerTest, ReopenKeepsGroupsWhoseDayChangesCancelOut) {
  // On one day the loan enters GREEN (reclassify) and leaves it again: the
  // GREEN cell of that day nets to zero in every measure.
  MustApply({Disburse("L1", 1, "2024-01-10", 1000, InRegion("440300")),
             Reclassify("L1", 2, "2024-02-01", Green(InRegion("440300"))),
             Reclassify("L1", 3, "2024-02-01", InRegion("440300"))});
  const Report before = Query("2024-12-31", GroupBy::kProvince);
  const Series series_before = QuerySeries(Category::kGreen, "2024-01-01", "2024-03-31",
                                           Step::kMonth, GroupBy::kInstitution);
  Reopen();
  ExpectSameReport(before, Query("2024-12-31", GroupBy::kProvince));
  EXPECT_EQ(series_before.points, QuerySeries(Category::kGreen, "2024-01-01", "2024-03-31",
                                              Step::kMonth, GroupBy::kInstitution)
                                      .points);
}

// The open rebuilds the aggregates from the stored cells one series run at
// a time (Aggregator::AddCells): on a store of many series (six
// institutions, six regions in four provinces, loans moving between
// provinces and categories) and days over three years, every answer after
// a reopen equals the writer's, built group by group.
TEST_F(StorageLedgerTest, ReopenRebuildsTheWritersAggregatesOnManySeriesAndDays) {
  std::mt19937_64 rng(5);
  const std::vector<std::string> regions = {"110101", "110105", "310115",
                                            "310104", "440300", "320105"};
  const Day first = D("2022-01-03");
  std::vector<std::vector<LoanEvent>> per_loan;
  std::vector<std::pair<std::string, std::string>> loans;
  for (int n = 0; n < 400; ++n) {
    const std::string inst = "B000" + std::to_string(1 + rng() % 6);
    const std::string loan = "L" + std::to_string(n);
    LoanAttributes a = InRegion(regions[rng() % regions.size()]);
    if (rng() % 3 == 0) a.green = true;
    Day day = first + static_cast<Day>(rng() % 700);
    int64_t balance = 100'000 + static_cast<int64_t>(rng() % 50'000'000);
    std::vector<LoanEvent> events = {Disburse(loan, 1, FormatDate(day), balance, a, inst)};
    for (uint64_t seq = 2; seq <= 2 + rng() % 6; ++seq) {
      day += static_cast<Day>(rng() % 60);
      if (rng() % 3 == 0) {
        a = InRegion(regions[rng() % regions.size()], a);
        a.srdi = !a.srdi;
        events.push_back(Reclassify(loan, seq, FormatDate(day), a, inst));
      } else {
        const int64_t repaid = balance / 4;
        balance -= repaid;
        events.push_back(Repay(loan, seq, FormatDate(day), repaid, a, inst));
      }
    }
    per_loan.push_back(std::move(events));
    loans.emplace_back(inst, loan);
  }
  // Batches of up to 50 events, each loan's events in seq order.
  std::vector<LoanEvent> batch;
  for (size_t round = 0;; ++round) {
    bool any = false;
    for (const std::vector<LoanEvent>& events : per_loan) {
      if (round >= events.size()) continue;
      any = true;
      batch.push_back(events[round]);
      if (batch.size() == 50) {
        MustApply(std::exchange(batch, {}));
        if (HasFatalFailure()) return;
      }
    }
    if (!any) break;
  }
  if (!batch.empty()) MustApply(std::move(batch));
  if (HasFatalFailure()) return;

  auto balances = [&] {
    std::vector<std::tuple<int, int, int64_t, int64_t, std::string>> out;
    for (const CategoryBalance& b : ledger_->CategoryBalances()) {
      out.emplace_back(static_cast<int>(b.category), b.province, b.balance_fen, b.loan_count,
                       b.category_name);
    }
    return out;
  };
  const Snapshot before = Take(loans);
  const auto balances_before = balances();
  EXPECT_GT(balances_before.size(), 10u);
  Reopen();
  ExpectSameSnapshot(before, Take(loans));
  if (HasFatalFailure()) return;
  EXPECT_EQ(balances_before, balances());
  Result<VerifyReport> v = ledger_->Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->differences.empty());
}

TEST_F(StorageLedgerTest, InstitutionsAndJournalNumbersSurviveReopen) {
  const ApplyResult a = Apply({Disburse("L1", 1, "2024-01-10", 1000, Attrs(), "Z1")});
  Reopen();
  const ApplyResult b = Apply({Disburse("L1", 1, "2024-01-10", 1000, Attrs(), "A1")});
  EXPECT_EQ(b.batch_no, a.batch_no + 1);
  Reopen();
  const Report r = Query("2024-01-31", GroupBy::kInstitution, std::nullopt, {Category::kTotal});
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[0].group, "A1");
  EXPECT_EQ(r.rows[1].group, "Z1");
  EXPECT_EQ(r.rows[0].balance_fen, 1000);
  EXPECT_EQ(r.rows[1].balance_fen, 1000);
  EXPECT_EQ(ledger_->Stats().batches_applied, 2u);
  EXPECT_EQ(ledger_->Stats().loans, 2u);
}

// Open reads the loans with two threads over two key ranges when the store
// is large; lowering the threshold covers that path here. Three sessions
// leave three SST files (a clean close flushes), so the split falls between
// files: every loan must come back exactly once, with its state.
TEST_F(StorageLedgerTest, ReopenWithTwoReadersRestoresEveryLoan) {
  constexpr int kLoansPerPart = 2000;
  int64_t total = 0;
  for (const char* part : {"A", "M", "Z"}) {
    std::vector<LoanEvent> batch;
    for (int i = 0; i < kLoansPerPart; ++i) {
      const int64_t amount = 1000 + i;
      batch.push_back(Disburse(std::string(part) + std::to_string(i), 1, "2024-01-10", amount));
      total += amount;
    }
    MustApply(std::move(batch));
    Reopen();  // closes with a flush: one more SST file in "loans"
  }
  Close();
  LedgerOptions options = Options();
  options.parallel_load_loans = 1;
  Result<std::unique_ptr<Ledger>> opened = Ledger::Open(options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  ledger_ = std::move(opened).value();
  EXPECT_EQ(ledger_->Stats().loans, 3u * kLoansPerPart);
  for (const char* part : {"A", "M", "Z"}) {
    for (int i = 0; i < kLoansPerPart; i += 199) {
      Result<LoanView> v = ledger_->QueryLoan("B0001", std::string(part) + std::to_string(i));
      ASSERT_TRUE(v.ok()) << part << i << ": " << v.status().ToString();
      EXPECT_EQ(v->balance_fen, 1000 + i);
      EXPECT_EQ(v->last_seq, 1u);
    }
  }
  // The writer sees every loan: the next event of each part's last loan
  // applies (a loan missing from the table would be a seq gap).
  for (const char* part : {"A", "M", "Z"}) {
    MustApply({Repay(std::string(part) + std::to_string(kLoansPerPart - 1), 2, "2024-02-01", 1)});
    total -= 1;
  }
  const Report r = Query("2024-02-29", GroupBy::kNone, std::nullopt, {Category::kTotal});
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].balance_fen, total);
  Result<VerifyReport> verify = ledger_->Verify();
  ASSERT_TRUE(verify.ok()) << verify.status().ToString();
  EXPECT_TRUE(verify->differences.empty());
  EXPECT_EQ(verify->loans_checked, 3u * kLoansPerPart);
}

TEST_F(StorageLedgerTest, VerifyIsCleanOnAGoodStore) {
  uint32_t journaled = 0;
  for (const LoanEvent& e : SampleStream()) journaled += Apply({e}).batch_no != 0 ? 1 : 0;
  (void)Apply(SampleStream());                     // all duplicates
  (void)Apply({Repay("L1", 9, "2025-01-01", 1)});  // rejected
  Result<VerifyReport> v = ledger_->Verify();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  for (const VerifyDifference& d : v->differences)
    ADD_FAILURE() << d.what << " " << d.expected << " vs " << d.actual;
  EXPECT_TRUE(v->differences.empty());
  EXPECT_EQ(v->batches_replayed, journaled);
  EXPECT_GE(v->events_replayed, SampleStream().size());
  EXPECT_EQ(v->loans_checked, 3u);
  EXPECT_GT(v->cells_checked, 0u);
  Reopen();
  v = ledger_->Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->differences.empty());
}

// Changes one stored cell behind the ledger's back: opens the closed store
// with RocksDB directly and adds 1 to the balance_fen of the first cell of
// the "cells" column family (five little-endian int64, balance first).
void CorruptFirstCell(const std::string& dir) {
  rocksdb::DBOptions db_options;
  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(db_options, dir, &names);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_NE(std::find(names.begin(), names.end(), "cells"), names.end());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const std::string& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  s = rocksdb::DB::Open(db_options, dir, cfs, &handles, &raw);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::ColumnFamilyHandle* cells = nullptr;
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    if (h->GetName() == "cells") cells = h;
  }
  std::string key, value;
  if (cells != nullptr) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cells));
    it->SeekToFirst();
    if (it->Valid()) {
      key = it->key().ToString();
      value = it->value().ToString();
    }
  }
  if (!key.empty() && value.size() == 40) {
    int64_t balance_fen = 0;
    std::memcpy(&balance_fen, value.data(), 8);
    balance_fen += 1;  // a plausible, wrong figure
    std::memcpy(value.data(), &balance_fen, 8);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    s = db->Put(wo, cells, key, value);
  }
  for (rocksdb::ColumnFamilyHandle* h : handles) db->DestroyColumnFamilyHandle(h);
  ASSERT_TRUE(db->Close().ok());
  ASSERT_NE(cells, nullptr) << "no column family named cells";
  ASSERT_FALSE(key.empty()) << "no cell stored";
  ASSERT_EQ(value.size(), 40u) << "a cell value is five little-endian int64";
  ASSERT_TRUE(s.ok()) << s.ToString();
}

TEST_F(StorageLedgerTest, VerifyFindsACorruptedCell) {
  for (const LoanEvent& e : SampleStream()) MustApply({e});
  Close();
  ASSERT_NO_FATAL_FAILURE(CorruptFirstCell(dir_));
  Reopen();
  Result<VerifyReport> v = ledger_->Verify();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_GE(v->differences.size(), 1u);
  bool names_balance = false;
  for (const VerifyDifference& d : v->differences) {
    names_balance |= d.what.find("balance") != std::string::npos && d.actual == d.expected + 1;
  }
  EXPECT_TRUE(names_balance) << "a difference should name the balance and be off by one";
}

TEST_F(StorageLedgerTest, RebuildAggregatesRepairsACorruptedCell) {
  for (const LoanEvent& e : SampleStream()) MustApply({e});
  const std::vector<std::pair<std::string, std::string>> loans = {
      {"B0001", "L1"}, {"B0002", "L2"}, {"B0001", "L3"}};
  const Snapshot good = Take(loans);
  Close();
  ASSERT_NO_FATAL_FAILURE(CorruptFirstCell(dir_));
  Reopen();
  Result<uint64_t> cells = ledger_->RebuildAggregates();
  ASSERT_TRUE(cells.ok()) << cells.status().ToString();
  EXPECT_GT(*cells, 0u);
  Result<VerifyReport> v = ledger_->Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->differences.empty());
  const Snapshot rebuilt = Take(loans);
  for (size_t i = 0; i < good.reports.size(); ++i)
    ExpectSameReport(good.reports[i], rebuilt.reports[i]);
  for (size_t i = 0; i < good.series.size(); ++i)
    EXPECT_EQ(good.series[i].points, rebuilt.series[i].points);
  // The repair is stored, not only in memory.
  Reopen();
  v = ledger_->Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->differences.empty());
  ExpectSameReport(good.reports.front(), Take(loans).reports.front());
}

// The child of the durability test: applies one batch with sync and dies by
// SIGKILL as soon as it is acknowledged.
[[noreturn]] void ApplyThenKill9(const std::string& dir) {
  LedgerOptions o;
  o.path = dir;
  o.sync = true;
  Result<std::unique_ptr<Ledger>> opened = Ledger::Open(o);
  if (!opened.ok()) std::exit(3);
  Result<ApplyResult> r = (*opened)->Apply(MakeBatch(
      {Disburse("L1", 1, "2024-01-10", 1000, Green()), Repay("L1", 2, "2024-01-11", 1, Green())}));
  if (!r.ok() || !r->applied) std::exit(4);
  std::raise(SIGKILL);
  std::abort();
}

TEST(StorageLedgerDurability, AcknowledgedBatchSurvivesKill9) {
  // The writer runs in a child process that is killed with SIGKILL right
  // after Apply returns, without closing anything. "threadsafe" re-executes
  // this binary for the child, so the directory travels in the environment.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  constexpr const char* kDirEnv = "LOANLEDGER_UNIT_DURABILITY_DIR";
  std::string dir;
  if (const char* env = std::getenv(kDirEnv)) {
    dir = env;  // the child
  } else {
    dir = MakeTempDir();
    setenv(kDirEnv, dir.c_str(), 1);
  }
  EXPECT_EXIT(ApplyThenKill9(dir), testing::KilledBySignal(SIGKILL), "");
  unsetenv(kDirEnv);
  {
    LedgerOptions o;
    o.path = dir;
    Result<std::unique_ptr<Ledger>> opened = Ledger::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    Result<LoanView> v = (*opened)->QueryLoan("B0001", "L1");
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(v->balance_fen, 999);
    EXPECT_EQ(v->last_seq, 2u);
    ReportQuery q;
    q.date = D("2024-01-31");
    q.categories = {Category::kGreen};
    Result<Report> r = (*opened)->QueryReport(q);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->rows.size(), 1u);
    EXPECT_EQ(r->rows[0].balance_fen, 999);
    Result<VerifyReport> verify = (*opened)->Verify();
    ASSERT_TRUE(verify.ok());
    EXPECT_TRUE(verify->differences.empty());
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

// ---------------------------------------------------------------------------
// Concurrency

TEST_F(StorageLedgerTest, QueriesNeverSeeHalfABatch) {
  // Every batch moves 1 fen from loan A to loan B on the same day: TOTAL is
  // constant for any reader that sees whole batches.
  MustApply({Disburse("A", 1, "2024-01-10", 1'000'000), Disburse("B", 1, "2024-01-10", 1)});
  constexpr int kBatches = 300;
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    ReportQuery q;
    q.date = D("2024-12-31");
    q.categories = {Category::kTotal};
    while (!done.load()) {
      Result<Report> r = ledger_->QueryReport(q);
      if (!r.ok() || r->rows.size() != 1 || r->rows[0].balance_fen != 1'000'001 ||
          r->rows[0].disbursed_ytd_fen - r->rows[0].repaid_ytd_fen != 1'000'001) {
        bad.fetch_add(1);
      }
      reads.fetch_add(1);
    }
  });
  for (int i = 0; i < kBatches; ++i) {
    const uint64_t seq = static_cast<uint64_t>(i) + 2;
    Result<ApplyResult> r = ledger_->Apply(
        MakeBatch({Repay("A", seq, "2024-02-01", 1), Disburse("B", seq, "2024-02-01", 1)}));
    if (!r.ok() || !r->applied) {
      ADD_FAILURE() << "batch " << i << " not applied";
      break;  // the reader must still be joined
    }
  }
  done.store(true);
  reader.join();
  EXPECT_EQ(bad.load(), 0) << "of " << reads.load() << " reads";
  EXPECT_EQ(Loan("B0001", "B").balance_fen, 1 + kBatches);
}

}  // namespace
}  // namespace loanledger::storage
