// The ledger (storage/ledger.h): exactly-once batches, rejection, category
// moves, as-of figures, groups, scopes and group commit (docs/data.md, docs/figures.md). Each
// test gets a fresh RocksDB directory. Persistence, verification and
// concurrency are in storage_ledger_persistence_test.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "schema/category.h"
#include "schema/date.h"
#include "schema/event.h"
#include "schema/limits.h"
#include "schema/query.h"
#include "storage/ledger.h"
#include "storage/rejected_streams.h"
#include "tests/unit/ledger_test_support.h"

namespace loanledger::storage {
namespace {

using namespace loanledger::storage::test;  // NOLINT(google-build-using-namespace): test helpers

// ---------------------------------------------------------------------------
// Exactly once (docs/data.md)

TEST_F(StorageLedgerTest, FirstBatchAppliesEveryEvent) {
  const ApplyResult r =
      Apply({Disburse("L1", 1, "2024-01-10", 1000), Repay("L1", 2, "2024-01-20", 300),
             Disburse("L2", 1, "2024-01-15", 500)});
  EXPECT_TRUE(r.applied);
  EXPECT_EQ(r.events_applied, 3u);
  EXPECT_EQ(r.events_duplicate, 0u);
  EXPECT_GT(r.batch_no, 0u);
  EXPECT_TRUE(r.rejections.empty());
  EXPECT_EQ(Balance("2024-01-31"), 1200);
}

TEST_F(StorageLedgerTest, ReplayingABatchCountsAllAsDuplicatesAndChangesNothing) {
  const std::vector<LoanEvent> events = {Disburse("L1", 1, "2024-01-10", 1000),
                                         Repay("L1", 2, "2024-01-20", 300),
                                         Disburse("L2", 1, "2024-01-15", 500, Green())};
  const ApplyResult first = Apply(events);
  ASSERT_TRUE(first.applied);
  const Snapshot before = Take({{"B0001", "L1"}, {"B0001", "L2"}});

  const ApplyResult again = Apply(events);
  EXPECT_TRUE(again.applied) << "duplicates are not an error";
  EXPECT_EQ(again.events_applied, 0u);
  EXPECT_EQ(again.events_duplicate, 3u);
  EXPECT_EQ(again.batch_no, 0u) << "an all-duplicate batch is not journaled";
  EXPECT_TRUE(again.rejections.empty());

  const Snapshot after = Take({{"B0001", "L1"}, {"B0001", "L2"}});
  ASSERT_EQ(before.reports.size(), after.reports.size());
  for (size_t i = 0; i < before.reports.size(); ++i)
    ExpectSameReport(before.reports[i], after.reports[i]);
  EXPECT_EQ(before.series.size(), after.series.size());
  for (size_t i = 0; i < before.series.size(); ++i)
    EXPECT_EQ(before.series[i].points, after.series[i].points);
  for (size_t i = 0; i < before.loans.size(); ++i) ExpectSameLoan(before.loans[i], after.loans[i]);
}

TEST_F(StorageLedgerTest, ReplayingAWholeStreamAppliesNothingTwice) {
  std::vector<std::vector<LoanEvent>> stream = {
      {Disburse("L1", 1, "2023-03-01", 10'000), Disburse("L2", 1, "2023-04-01", 20'000)},
      {Repay("L1", 2, "2023-05-01", 1'000), Disburse("L3", 1, "2023-05-02", 5'000, Green())},
      {Reclassify("L2", 2, "2023-06-01", Srdi()), WriteOff("L3", 2, "2023-07-01", 5'000, Green())},
      {Disburse("L1", 3, "2024-01-05", 2'000)},
  };
  uint32_t applied = 0;
  for (const auto& b : stream) {
    const ApplyResult r = Apply(b);
    ASSERT_TRUE(r.applied);
    applied += r.events_applied;
  }
  EXPECT_EQ(applied, 7u);
  const Snapshot before = Take({{"B0001", "L1"}, {"B0001", "L2"}, {"B0001", "L3"}});
  // Resend everything twice, in the original order and in reverse.
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 0; i < stream.size(); ++i) {
      const auto& b = round == 0 ? stream[i] : stream[stream.size() - 1 - i];
      const ApplyResult r = Apply(b);
      EXPECT_TRUE(r.applied);
      EXPECT_EQ(r.events_applied, 0u);
      EXPECT_EQ(r.events_duplicate, b.size());
    }
  }
  const Snapshot after = Take({{"B0001", "L1"}, {"B0001", "L2"}, {"B0001", "L3"}});
  for (size_t i = 0; i < before.reports.size(); ++i)
    ExpectSameReport(before.reports[i], after.reports[i]);
  for (size_t i = 0; i < before.series.size(); ++i)
    EXPECT_EQ(before.series[i].points, after.series[i].points);
  for (size_t i = 0; i < before.loans.size(); ++i) ExpectSameLoan(before.loans[i], after.loans[i]);
  EXPECT_EQ(Balance("2024-12-31"), 10'000 - 1'000 + 2'000 + 20'000);
}

TEST_F(StorageLedgerTest, OverlappingResendAppliesOnlyTheNewEvents) {
  MustApply({Disburse("L1", 1, "2024-01-10", 1000), Repay("L1", 2, "2024-01-11", 100)});
  const ApplyResult r =
      Apply({Disburse("L1", 1, "2024-01-10", 1000), Repay("L1", 2, "2024-01-11", 100),
             Repay("L1", 3, "2024-01-12", 200)});
  EXPECT_TRUE(r.applied);
  EXPECT_EQ(r.events_duplicate, 2u);
  EXPECT_EQ(r.events_applied, 1u);
  EXPECT_GT(r.batch_no, 0u);
  EXPECT_EQ(Loan("B0001", "L1").balance_fen, 700);
  EXPECT_EQ(Loan("B0001", "L1").last_seq, 3u);
}

TEST_F(StorageLedgerTest, DuplicateIsRecognisedBySeqAloneNotByContent) {
  MustApply({Disburse("L1", 1, "2024-01-10", 1000, Green())});
  // Same seq, other amount, date and attributes: still a duplicate.
  const ApplyResult r = Apply({Disburse("L1", 1, "2024-02-10", 999'999, Srdi())});
  EXPECT_TRUE(r.applied);
  EXPECT_EQ(r.events_duplicate, 1u);
  EXPECT_EQ(r.events_applied, 0u);
  const LoanView v = Loan("B0001", "L1");
  EXPECT_EQ(v.balance_fen, 1000);
  EXPECT_EQ(v.attributes, Green());
  EXPECT_EQ(v.last_business_date, D("2024-01-10"));
}

TEST_F(StorageLedgerTest, JournalNumbersIncreaseByOnePerAppliedBatch) {
  const ApplyResult a = Apply({Disburse("L1", 1, "2024-01-10", 1000)});
  const ApplyResult dup = Apply({Disburse("L1", 1, "2024-01-10", 1000)});
  const ApplyResult rejected = Apply({Repay("L1", 5, "2024-01-10", 1)});
  const ApplyResult b = Apply({Repay("L1", 2, "2024-01-11", 10)});
  EXPECT_EQ(dup.batch_no, 0u);
  EXPECT_EQ(rejected.batch_no, 0u);
  EXPECT_FALSE(rejected.applied);
  EXPECT_EQ(b.batch_no, a.batch_no + 1);
}

// ---------------------------------------------------------------------------
// Rejections (docs/data.md)

TEST_F(StorageLedgerTest, SeqGapIsRejectedWithItsIndex) {
  MustApply({Disburse("L1", 1, "2024-01-10", 1000)});
  const ApplyResult r = Apply({Disburse("L2", 1, "2024-01-10", 10),
                               Repay("L1", 2, "2024-01-11", 10), Repay("L1", 4, "2024-01-12", 10)});
  EXPECT_FALSE(r.applied);
  ASSERT_EQ(r.rejections.size(), 1u);
  EXPECT_EQ(r.rejections[0].index, 2u);
  EXPECT_EQ(r.rejections[0].reason, Reason::kSeqGap);
  EXPECT_FALSE(r.rejections[0].message.empty());
  EXPECT_EQ(r.events_applied, 0u);
  EXPECT_EQ(r.batch_no, 0u);
}

TEST_F(StorageLedgerTest, FirstSeqAboveOneIsAGap) {
  const ApplyResult r = Apply({Disburse("L1", 2, "2024-01-10", 1000)});
  EXPECT_FALSE(r.applied);
  ASSERT_EQ(r.rejections.size(), 1u);
  EXPECT_EQ(r.rejections[0].index, 0u);
  EXPECT_EQ(r.rejections[0].reason, Reason::kSeqGap);
  EXPECT_EQ(ledger_->QueryLoan("B0001", "L1").status().code(), Status::Code::kNotFound);
}

TEST_F(StorageLedgerTest, OverdrawIsRejected) {
  MustApply({Disburse("L1", 1, "2024-01-10", 1000)});
  for (EventKind kind : {EventKind::kRepay, EventKind::kWriteOff}) {
    const ApplyResult r = Apply({Ev("B0001", "L1", 2, "2024-01-11", kind, 1001)});
    EXPECT_FALSE(r.applied) << EventKindName(kind);
    ASSERT_EQ(r.rejections.size(), 1u);
    EXPECT_EQ(r.rejections[0].index, 0u);
    EXPECT_EQ(r.rejections[0].reason, Reason::kOverdraw);
  }
  // Within one batch the running balance counts: the second repay overdraws.
  const ApplyResult r = Apply({Disburse("L2", 1, "2024-01-10", 100),
                               Repay("L2", 2, "2024-01-11", 60), Repay("L2", 3, "2024-01-12", 60)});
  EXPECT_FALSE(r.applied);
  ASSERT_EQ(r.rejections.size(), 1u);
  EXPECT_EQ(r.rejections[0].index, 2u);
  EXPECT_EQ(r.rejections[0].reason, Reason::kOverdraw);
  // Repaying exactly the balance is fine.
  MustApply({Repay("L1", 2, "2024-01-11", 1000)});
  EXPECT_EQ(Loan("B0001", "L1").balance_fen, 0);
  // A zero balance cannot be written off either.
  const ApplyResult zero = Apply({WriteOff("L1", 3, "2024-01-12", 1)});
  ASSERT_EQ(zero.rejections.size(), 1u);
  EXPECT_EQ(zero.rejections[0].reason, Reason::kOverdraw);
}

TEST_F(StorageLedgerTest, FirstEventMustBeDisburse) {
  for (EventKind kind : {EventKind::kRepay, EventKind::kWriteOff, EventKind::kReclassify}) {
    const int64_t amount = kind == EventKind::kReclassify ? 0 : 10;
    const ApplyResult r = Apply(
        {Disburse("OK", 1, "2024-01-10", 10), Ev("B0001", "L1", 1, "2024-01-10", kind, amount)});
    EXPECT_FALSE(r.applied) << EventKindName(kind);
    ASSERT_EQ(r.rejections.size(), 1u) << EventKindName(kind);
    EXPECT_EQ(r.rejections[0].index, 1u);
    EXPECT_EQ(r.rejections[0].reason, Reason::kFirstEventNotDisburse) << EventKindName(kind);
  }
  EXPECT_EQ(ledger_->QueryLoan("B0001", "OK").status().code(), Status::Code::kNotFound);
}

TEST_F(StorageLedgerTest, DateBeforeThePreviousEventIsRejected) {
  MustApply({Disburse("L1", 1, "2024-03-01", 1000)});
  // Across batches.
  ApplyResult r = Apply({Repay("L1", 2, "2024-02-29", 10)});
  EXPECT_FALSE(r.applied);
  ASSERT_EQ(r.rejections.size(), 1u);
  EXPECT_EQ(r.rejections[0].reason, Reason::kDateBeforePrevious);
  // Within one batch.
  r = Apply({Repay("L1", 2, "2024-03-05", 10), Repay("L1", 3, "2024-03-04", 10)});
  EXPECT_FALSE(r.applied);
  ASSERT_EQ(r.rejections.size(), 1u);
  EXPECT_EQ(r.rejections[0].index, 1u);
  EXPECT_EQ(r.rejections[0].reason, Reason::kDateBeforePrevious);
  // The same date as the previous event is fine.
  MustApply({Repay("L1", 2, "2024-03-01", 10), Repay("L1", 3, "2024-03-01", 10)});
  EXPECT_EQ(Loan("B0001", "L1").balance_fen, 980);
}

TEST_F(StorageLedgerTest, EventOfAnotherInstitutionThanTheCallersIsRejected) {
  const ApplyResult r = Apply({Disburse("L1", 1, "2024-01-10", 1000, Attrs(), "B0001"),
                               Disburse("L2", 1, "2024-01-10", 1000, Attrs(), "B0002")},
                              "B0001");
  EXPECT_FALSE(r.applied);
  ASSERT_EQ(r.rejections.size(), 1u);
  EXPECT_EQ(r.rejections[0].index, 1u);
  EXPECT_EQ(r.rejections[0].reason, Reason::kWrongInstitution);
  EXPECT_EQ(ledger_->QueryLoan("B0001", "L1").status().code(), Status::Code::kNotFound);
  // The caller's own events pass; no caller restriction lets any through.
  EXPECT_TRUE(Apply({Disburse("L1", 1, "2024-01-10", 1000, Attrs(), "B0001")}, "B0001").applied);
  EXPECT_TRUE(Apply({Disburse("L2", 1, "2024-01-10", 1000, Attrs(), "B0002")}, "").applied);
}

TEST_F(StorageLedgerTest, FieldRuleViolationsAreRejectedWithTheirReason) {
  LoanEvent bad_region = Disburse("L1", 1, "2024-01-10", 1000);
  bad_region.attributes.region_code = "710000";
  LoanEvent bad_amount = Disburse("L2", 1, "2024-01-10", 0);
  LoanEvent bad_reclassify = Reclassify("L3", 2, "2024-01-10", Attrs());
  bad_reclassify.amount_fen = 5;
  LoanEvent bad_seq = Disburse("L4", 0, "2024-01-10", 1000);
  const ApplyResult r = Apply({bad_region, bad_amount, bad_reclassify, bad_seq});
  EXPECT_FALSE(r.applied);
  ASSERT_EQ(r.rejections.size(), 4u);
  EXPECT_EQ(r.rejections[0].index, 0u);
  EXPECT_EQ(r.rejections[0].reason, Reason::kBadRegionCode);
  EXPECT_EQ(r.rejections[1].index, 1u);
  EXPECT_EQ(r.rejections[1].reason, Reason::kBadAmount);
  EXPECT_EQ(r.rejections[2].index, 2u);
  EXPECT_EQ(r.rejections[2].reason, Reason::kBadAmount);
  EXPECT_EQ(r.rejections[3].index, 3u);
  EXPECT_EQ(r.rejections[3].reason, Reason::kBadSeq);
}

TEST_F(StorageLedgerTest, BatchWithBadEventsChangesNothingAndListsEveryBadIndex) {
  MustApply({Disburse("L1", 1, "2024-01-10", 1000, Green()), Disburse("L2", 1, "2024-01-10", 500)});
  const Snapshot before = Take({{"B0001", "L1"}, {"B0001", "L2"}});

  LoanEvent bad_industry = Disburse("L5", 1, "2024-02-01", 10);
  bad_industry.attributes.industry_code = "C1";
  const ApplyResult r = Apply({
      Disburse("L3", 1, "2024-02-01", 777, Srdi(), "B0002"),  // 0: valid, new institution
      bad_industry,                                           // 1: BAD_INDUSTRY_CODE
      Repay("L1", 2, "2024-02-02", 100),                      // 2: valid
      Repay("L2", 3, "2024-02-02", 100),                      // 3: SEQ_GAP
      Repay("L1", 3, "2024-02-03", 5000),                     // 4: OVERDRAW
      Reclassify("L2", 2, "2024-02-03", Srdi()),              // 5: valid
      Repay("NEW", 1, "2024-02-03", 1),                       // 6: FIRST_EVENT_NOT_DISBURSE
  });
  EXPECT_FALSE(r.applied);
  EXPECT_EQ(r.events_applied, 0u);
  EXPECT_EQ(r.batch_no, 0u);
  std::vector<std::pair<uint32_t, Reason>> got;
  for (const EventRejection& x : r.rejections) got.emplace_back(x.index, x.reason);
  const std::vector<std::pair<uint32_t, Reason>> want = {{1, Reason::kBadIndustryCode},
                                                         {3, Reason::kSeqGap},
                                                         {4, Reason::kOverdraw},
                                                         {6, Reason::kFirstEventNotDisburse}};
  EXPECT_EQ(got, want);

  const Snapshot after = Take({{"B0001", "L1"}, {"B0001", "L2"}});
  ASSERT_EQ(before.reports.size(), after.reports.size());
  for (size_t i = 0; i < before.reports.size(); ++i)
    ExpectSameReport(before.reports[i], after.reports[i]);
  for (size_t i = 0; i < before.series.size(); ++i)
    EXPECT_EQ(before.series[i].points, after.series[i].points);
  for (size_t i = 0; i < before.loans.size(); ++i) ExpectSameLoan(before.loans[i], after.loans[i]);
  EXPECT_EQ(ledger_->QueryLoan("B0002", "L3").status().code(), Status::Code::kNotFound);
  // The rejected batch's new institution left no trace.
  const Report by_inst = Query("2024-12-31", GroupBy::kInstitution);
  for (const ReportRow& row : by_inst.rows) EXPECT_NE(row.group, "B0002");

  // The valid events' seqs were not consumed: they apply now.
  MustApply({Disburse("L3", 1, "2024-02-01", 777, Srdi(), "B0002"),
             Repay("L1", 2, "2024-02-02", 100), Reclassify("L2", 2, "2024-02-03", Srdi())});
  EXPECT_EQ(Balance("2024-02-29"), 1000 - 100 + 500 + 777);
  EXPECT_EQ(Balance("2024-02-29", Category::kSrdi), 500 + 777);
}

TEST_F(StorageLedgerTest, BalanceLimitRejectsTheDisbursePastIt) {
  std::vector<LoanEvent> events;
  for (uint64_t seq = 1; seq <= 10; ++seq)
    events.push_back(Disburse("BIG", seq, "2024-01-10", kAmountFenMax));
  MustApply(events);
  EXPECT_EQ(Loan("B0001", "BIG").balance_fen, kLoanBalanceFenMax);
  const ApplyResult r = Apply({Disburse("BIG", 11, "2024-01-10", 1)});
  EXPECT_FALSE(r.applied);
  ASSERT_EQ(r.rejections.size(), 1u);
  EXPECT_EQ(r.rejections[0].reason, Reason::kBalanceLimit);
}

TEST_F(StorageLedgerTest, LedgerCapacityCountsEveryDisbursementEver) {
  // Disburse and repay 10^15 fen 4611 times: 4.611e18 fen disbursed, nothing
  // outstanding. The cap is 2^62 = 4,611,686,018,427,387,904 fen, inclusive.
  std::vector<LoanEvent> events;
  uint64_t seq = 1;
  for (int i = 0; i < 4611; ++i) {
    events.push_back(Disburse("CAP", seq++, "2024-01-10", kAmountFenMax));
    events.push_back(Repay("CAP", seq++, "2024-01-10", kAmountFenMax));
  }
  MustApply(events);
  const int64_t room = kLedgerDisbursedFenMax - 4611 * kAmountFenMax;
  ASSERT_EQ(room, 686'018'427'387'904);
  ApplyResult r = Apply({Disburse("OTHER", 1, "2024-01-11", room, Attrs(), "B0002"),
                         Disburse("OTHER", 2, "2024-01-11", 1, Attrs(), "B0002")});
  EXPECT_FALSE(r.applied);
  ASSERT_EQ(r.rejections.size(), 1u);
  EXPECT_EQ(r.rejections[0].index, 1u);
  EXPECT_EQ(r.rejections[0].reason, Reason::kLedgerCapacity);
  MustApply({Disburse("OTHER", 1, "2024-01-11", room, Attrs(), "B0002")});
  r = Apply({Disburse("CAP", seq, "2024-01-12", 1)});
  ASSERT_EQ(r.rejections.size(), 1u);
  EXPECT_EQ(r.rejections[0].reason, Reason::kLedgerCapacity);
  // Money that does not disburse still moves.
  MustApply({Repay("OTHER", 2, "2024-01-12", room, Attrs(), "B0002")});
  EXPECT_EQ(Balance("2024-12-31"), 0);
}

// ---------------------------------------------------------------------------
// Categories and as-of figures (docs/categories.md, docs/figures.md)

TEST_F(StorageLedgerTest, ReclassificationMovesTheWholeBalanceOnItsDate) {
  MustApply({Disburse("L1", 1, "2024-01-10", 1000, Green())});
  MustApply({Reclassify("L1", 2, "2024-03-01", Srdi())});

  Report r = Query("2024-02-29");
  EXPECT_EQ(Row(r, Category::kGreen).balance_fen, 1000);
  EXPECT_EQ(Row(r, Category::kGreen).loan_count, 1);
  EXPECT_EQ(Row(r, Category::kSrdi).balance_fen, 0);
  EXPECT_EQ(Row(r, Category::kSrdi).loan_count, 0);
  EXPECT_EQ(Row(r, Category::kTechFinance).balance_fen, 0);

  r = Query("2024-03-01");
  EXPECT_EQ(Row(r, Category::kGreen).balance_fen, 0);
  EXPECT_EQ(Row(r, Category::kGreen).loan_count, 0);
  EXPECT_EQ(Row(r, Category::kSrdi).balance_fen, 1000);
  EXPECT_EQ(Row(r, Category::kSrdi).loan_count, 1);
  EXPECT_EQ(Row(r, Category::kTechFinance).balance_fen, 1000);
  EXPECT_EQ(Row(r, Category::kTotal).balance_fen, 1000);
  EXPECT_EQ(Row(r, Category::kTotal).loan_count, 1);
  // The disbursement stays a GREEN flow of this year; SRDI disbursed nothing.
  EXPECT_EQ(Row(r, Category::kGreen).disbursed_ytd_fen, 1000);
  EXPECT_EQ(Row(r, Category::kSrdi).disbursed_ytd_fen, 0);
  EXPECT_EQ(Row(r, Category::kSrdi).ytd_increase_fen, 1000);
  EXPECT_EQ(Row(r, Category::kGreen).ytd_increase_fen, 0);
  EXPECT_EQ(Loan("B0001", "L1").categories, Classify(Srdi()));
}

TEST_F(StorageLedgerTest, FlowOfAnAttributeChangingEventCountsUnderTheNewAttributes) {
  MustApply({Disburse("L1", 1, "2024-01-10", 1000, Green())});
  // A repayment that also moves the loan from GREEN to SRDI.
  MustApply({Repay("L1", 2, "2024-04-01", 300, Srdi())});
  const Report r = Query("2024-04-01");
  EXPECT_EQ(Row(r, Category::kSrdi).repaid_ytd_fen, 300);
  EXPECT_EQ(Row(r, Category::kGreen).repaid_ytd_fen, 0);
  EXPECT_EQ(Row(r, Category::kSrdi).balance_fen, 700);
  EXPECT_EQ(Row(r, Category::kGreen).balance_fen, 0);
  EXPECT_EQ(Row(r, Category::kTotal).repaid_ytd_fen, 300);
  EXPECT_EQ(Row(r, Category::kTotal).balance_fen, 700);
  // Back to GREEN with a disbursement in another province.
  MustApply({Disburse("L1", 3, "2024-05-01", 50, Green(InRegion("440300")))});
  const Report p = Query("2024-05-01", GroupBy::kProvince);
  EXPECT_EQ(Row(p, Category::kGreen, "44").balance_fen, 750);
  EXPECT_EQ(Row(p, Category::kGreen, "44").disbursed_ytd_fen, 50);
  EXPECT_EQ(Row(p, Category::kGreen, "31").balance_fen, 0);
  EXPECT_EQ(Row(p, Category::kGreen, "31").disbursed_ytd_fen, 1000);
  EXPECT_EQ(Row(p, Category::kSrdi, "31").balance_fen, 0);
  EXPECT_EQ(Row(p, Category::kTotal, "31").balance_fen, 0);
  EXPECT_EQ(Row(p, Category::kTotal, "44").balance_fen, 750);
  EXPECT_EQ(Row(p, Category::kTotal, "44").loan_count, 1);
  EXPECT_EQ(Row(p, Category::kTotal, "31").loan_count, 0);
}

TEST_F(StorageLedgerTest, LateDatedLoanCorrectsEveryLaterDate) {
  MustApply({Disburse("L1", 1, "2024-06-01", 1000)});
  EXPECT_EQ(Balance("2024-06-30"), 1000);
  EXPECT_EQ(Balance("2024-01-31"), 0);
  // A new loan reported late, dated in the past of L1.
  MustApply({Disburse("L2", 1, "2024-01-15", 500), Repay("L2", 2, "2024-03-10", 100)});
  EXPECT_EQ(Balance("2024-01-14"), 0);
  EXPECT_EQ(Balance("2024-01-15"), 500);
  EXPECT_EQ(Balance("2024-03-10"), 400);
  EXPECT_EQ(Balance("2024-06-30"), 1400);
  const Series s = QuerySeries(Category::kTotal, "2024-01-01", "2024-06-15", Step::kMonth);
  std::vector<int64_t> balances;
  std::vector<std::string> dates;
  for (const SeriesPoint& p : s.points) {
    balances.push_back(p.balance_fen);
    dates.push_back(FormatDate(p.date));
    EXPECT_EQ(p.group, "");
  }
  EXPECT_EQ(dates, (std::vector<std::string>{"2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30",
                                             "2024-05-31", "2024-06-15"}));
  EXPECT_EQ(balances, (std::vector<int64_t>{500, 500, 400, 400, 400, 1400}));
  // The year-ago base of a later report changed too.
  const ReportRow row = Row(Query("2025-01-20"), Category::kTotal);
  EXPECT_EQ(row.balance_year_ago_fen, 500);
  EXPECT_EQ(row.ytd_increase_fen, 0);
}

TEST_F(StorageLedgerTest, LatestBusinessDateIsTheLatestDateWithAChange) {
  EXPECT_EQ(ledger_->LatestBusinessDate(), 0);
  MustApply({Disburse("L1", 1, "2024-06-01", 1000), Repay("L1", 2, "2024-09-30", 100)});
  EXPECT_EQ(FormatDate(ledger_->LatestBusinessDate()), "2024-09-30");
  // A late event dated in the past does not move it; a later one does.
  MustApply({Disburse("L2", 1, "2023-03-15", 500)});
  EXPECT_EQ(FormatDate(ledger_->LatestBusinessDate()), "2024-09-30");
  MustApply({Disburse("L2", 2, "2025-01-02", 7)});
  EXPECT_EQ(FormatDate(ledger_->LatestBusinessDate()), "2025-01-02");
  // A move to another province nets out nationally but is a change.
  MustApply({Reclassify("L1", 3, "2025-02-01", InRegion("440305"))});
  EXPECT_EQ(FormatDate(ledger_->LatestBusinessDate()), "2025-02-01");
  // A reclassification that changes no category or province changes no figure.
  LoanAttributes same_cells = InRegion("440305");
  same_cells.term_months = 13;
  MustApply({Reclassify("L1", 4, "2025-03-01", same_cells)});
  EXPECT_EQ(FormatDate(ledger_->LatestBusinessDate()), "2025-02-01");
  Reopen();  // restored from the stored cells
  EXPECT_EQ(FormatDate(ledger_->LatestBusinessDate()), "2025-02-01");
}

TEST_F(StorageLedgerTest, YearAgoOfFeb29IsFeb28) {
  MustApply({Disburse("L1", 1, "2023-02-28", 100), Disburse("L1", 2, "2023-03-01", 50),
             Disburse("L1", 3, "2024-02-28", 50), Disburse("L1", 4, "2024-02-29", 100),
             Repay("L1", 5, "2025-02-28", 60)});
  ReportRow row = Row(Query("2024-02-29"), Category::kTotal);
  EXPECT_EQ(row.balance_fen, 300);
  EXPECT_EQ(row.balance_year_ago_fen, 100) << "as of 2023-02-28";
  ASSERT_TRUE(row.yoy_growth_pct.has_value());
  EXPECT_NEAR(*row.yoy_growth_pct, 200.0, 1e-9);

  row = Row(Query("2024-03-01"), Category::kTotal);
  EXPECT_EQ(row.balance_year_ago_fen, 150) << "as of 2023-03-01";
  ASSERT_TRUE(row.yoy_growth_pct.has_value());
  EXPECT_NEAR(*row.yoy_growth_pct, 100.0, 1e-9);

  row = Row(Query("2025-02-28"), Category::kTotal);
  EXPECT_EQ(row.balance_fen, 240);
  EXPECT_EQ(row.balance_year_ago_fen, 200) << "as of 2024-02-28";
  ASSERT_TRUE(row.yoy_growth_pct.has_value());
  EXPECT_NEAR(*row.yoy_growth_pct, 20.0, 1e-9);

  row = Row(Query("2024-02-28"), Category::kTotal);
  EXPECT_EQ(row.balance_fen, 200);
  EXPECT_EQ(row.balance_year_ago_fen, 100);
  EXPECT_NEAR(row.yoy_growth_pct.value_or(-1), 100.0, 1e-9);
}

TEST_F(StorageLedgerTest, YoyIsNullWhenTheYearAgoBalanceIsZero) {
  MustApply({Disburse("L1", 1, "2023-06-01", 100), Repay("L1", 2, "2023-07-01", 100),
             Disburse("L1", 3, "2024-06-15", 70)});
  ReportRow row = Row(Query("2023-06-30"), Category::kTotal);
  EXPECT_EQ(row.balance_fen, 100);
  EXPECT_EQ(row.balance_year_ago_fen, 0);
  EXPECT_FALSE(row.yoy_growth_pct.has_value());
  row = Row(Query("2024-07-02"), Category::kTotal);  // a year ago (2023-07-02) the loan was repaid
  EXPECT_EQ(row.balance_fen, 70);
  EXPECT_EQ(row.balance_year_ago_fen, 0);
  EXPECT_FALSE(row.yoy_growth_pct.has_value());
  row = Row(Query("2024-06-20"), Category::kTotal);  // a year ago: 100
  EXPECT_NEAR(row.yoy_growth_pct.value_or(-1), -30.0, 1e-9);
  // A category with nothing at all has a null yoy and zeros.
  row = Row(Query("2024-06-20"), Category::kGreen);
  EXPECT_FALSE(row.yoy_growth_pct.has_value());
  EXPECT_EQ(row.balance_fen, 0);
}

TEST_F(StorageLedgerTest, YearToDateIncreaseAndFlows) {
  MustApply({Disburse("L1", 1, "2023-06-01", 1000), Repay("L1", 2, "2023-12-31", 100),
             Disburse("L1", 3, "2024-01-01", 500), Repay("L1", 4, "2024-02-15", 200),
             WriteOff("L1", 5, "2024-03-10", 50), Disburse("L2", 1, "2024-12-31", 5)});
  ReportRow row = Row(Query("2023-12-31"), Category::kTotal);
  EXPECT_EQ(row.balance_fen, 900);
  EXPECT_EQ(row.ytd_increase_fen, 900);
  EXPECT_EQ(row.disbursed_ytd_fen, 1000);
  EXPECT_EQ(row.repaid_ytd_fen, 100);
  EXPECT_EQ(row.written_off_ytd_fen, 0);

  row = Row(Query("2024-01-01"), Category::kTotal);  // Jan 1 is inclusive
  EXPECT_EQ(row.balance_fen, 1400);
  EXPECT_EQ(row.ytd_increase_fen, 500);
  EXPECT_EQ(row.disbursed_ytd_fen, 500);
  EXPECT_EQ(row.repaid_ytd_fen, 0);

  row = Row(Query("2024-02-15"), Category::kTotal);
  EXPECT_EQ(row.ytd_increase_fen, 300);
  EXPECT_EQ(row.disbursed_ytd_fen, 500);
  EXPECT_EQ(row.repaid_ytd_fen, 200);
  EXPECT_EQ(row.written_off_ytd_fen, 0);

  row = Row(Query("2024-03-31"), Category::kTotal);
  EXPECT_EQ(row.balance_fen, 1150);
  EXPECT_EQ(row.ytd_increase_fen, 250);
  EXPECT_EQ(row.disbursed_ytd_fen, 500);
  EXPECT_EQ(row.repaid_ytd_fen, 200);
  EXPECT_EQ(row.written_off_ytd_fen, 50);

  row = Row(Query("2024-12-31"), Category::kTotal);  // Dec 31 is inclusive
  EXPECT_EQ(row.disbursed_ytd_fen, 505);
  EXPECT_EQ(row.ytd_increase_fen, 255);
  EXPECT_EQ(row.loan_count, 2);

  row = Row(Query("2025-01-01"), Category::kTotal);  // a new year starts from zero flows
  EXPECT_EQ(row.disbursed_ytd_fen, 0);
  EXPECT_EQ(row.repaid_ytd_fen, 0);
  EXPECT_EQ(row.written_off_ytd_fen, 0);
  EXPECT_EQ(row.ytd_increase_fen, 0);
  EXPECT_EQ(row.balance_fen, 1155);
}

TEST_F(StorageLedgerTest, TechFinanceCountsALoanOnceWhateverItsReasons) {
  LoanAttributes all = Attrs();
  all.srdi = all.tech_enterprise = true;
  all.industry_code = "C2710";
  LoanAttributes tech_only = Attrs();
  tech_only.tech_enterprise = true;
  MustApply({Disburse("L1", 1, "2024-01-10", 1000, all),
             Disburse("L2", 1, "2024-01-10", 500, tech_only), Disburse("L3", 1, "2024-01-10", 70)});
  const Report r = Query("2024-01-31");
  EXPECT_EQ(Row(r, Category::kTechFinance).balance_fen, 1500);
  EXPECT_EQ(Row(r, Category::kTechFinance).loan_count, 2);
  EXPECT_EQ(Row(r, Category::kTechFinance).disbursed_ytd_fen, 1500);
  EXPECT_EQ(Row(r, Category::kSrdi).balance_fen, 1000);
  EXPECT_EQ(Row(r, Category::kTechEnterprise).balance_fen, 1500);
  EXPECT_EQ(Row(r, Category::kHighTechManufacturing).balance_fen, 1000);
  EXPECT_EQ(Row(r, Category::kManufacturing).balance_fen, 1000);
  EXPECT_EQ(Row(r, Category::kTotal).balance_fen, 1570);
  EXPECT_EQ(Row(r, Category::kTotal).loan_count, 3);
}

TEST_F(StorageLedgerTest, LoanCountFallsToZeroOnFullRepayment) {
  MustApply(
      {Disburse("L1", 1, "2024-01-10", 1000, Green()), Repay("L1", 2, "2024-02-10", 400, Green())});
  EXPECT_EQ(Row(Query("2024-02-10"), Category::kGreen).loan_count, 1);
  MustApply({Repay("L1", 3, "2024-03-10", 600, Green())});
  Report r = Query("2024-03-10");
  EXPECT_EQ(Row(r, Category::kGreen).balance_fen, 0);
  EXPECT_EQ(Row(r, Category::kGreen).loan_count, 0);
  EXPECT_EQ(Row(r, Category::kTotal).loan_count, 0);
  EXPECT_EQ(Row(r, Category::kGreen).repaid_ytd_fen, 1000);
  EXPECT_EQ(Row(Query("2024-03-09"), Category::kGreen).loan_count, 1);
  // A paid-off loan that is reclassified still counts nowhere.
  MustApply({Reclassify("L1", 4, "2024-04-01", Srdi())});
  r = Query("2024-04-01");
  EXPECT_EQ(Row(r, Category::kSrdi).loan_count, 0);
  EXPECT_EQ(Row(r, Category::kGreen).loan_count, 0);
  EXPECT_EQ(Row(r, Category::kTotal).loan_count, 0);
  // Disbursed again: it counts again, once.
  MustApply({Disburse("L1", 5, "2024-05-01", 10, Srdi())});
  r = Query("2024-05-01");
  EXPECT_EQ(Row(r, Category::kSrdi).loan_count, 1);
  EXPECT_EQ(Row(r, Category::kTotal).loan_count, 1);
  EXPECT_EQ(Row(r, Category::kGreen).loan_count, 0);
}

TEST_F(StorageLedgerTest, WriteOffReducesTheBalanceAndCountsAsWrittenOff) {
  MustApply({Disburse("L1", 1, "2024-01-10", 1000), WriteOff("L1", 2, "2024-06-30", 1000)});
  const ReportRow row = Row(Query("2024-06-30"), Category::kTotal);
  EXPECT_EQ(row.balance_fen, 0);
  EXPECT_EQ(row.loan_count, 0);
  EXPECT_EQ(row.written_off_ytd_fen, 1000);
  EXPECT_EQ(row.repaid_ytd_fen, 0);
  EXPECT_EQ(row.disbursed_ytd_fen, 1000);
  EXPECT_EQ(row.ytd_increase_fen, 0);
  EXPECT_EQ(Loan("B0001", "L1").balance_fen, 0);
}

// ---------------------------------------------------------------------------
// Loan view

TEST_F(StorageLedgerTest, QueryLoanOfAnUnknownLoanIsNotFound) {
  EXPECT_EQ(ledger_->QueryLoan("B0001", "NOPE").status().code(), Status::Code::kNotFound);
  MustApply({Disburse("L1", 1, "2024-01-10", 1000)});
  EXPECT_EQ(ledger_->QueryLoan("B0001", "NOPE").status().code(), Status::Code::kNotFound);
  // Loan ids are unique within an institution only.
  EXPECT_EQ(ledger_->QueryLoan("B0002", "L1").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(ledger_->QueryLoan("B000", "L1").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(ledger_->QueryLoan("B0001", "L").status().code(), Status::Code::kNotFound);
}

TEST_F(StorageLedgerTest, QueryLoanShowsTheLatestStateAndCategories) {
  LoanAttributes mlt = Attrs();
  mlt.industry_code = "C3921";
  mlt.term_months = 36;
  mlt.borrower_type = BorrowerType::kEnterprise;
  mlt.enterprise_size = EnterpriseSize::kSmall;
  mlt.credit_line_fen = 1'000'000'000;
  MustApply(
      {Disburse("L1", 1, "2024-01-10", 1000, Green()), Repay("L1", 2, "2024-02-10", 100, Green())});
  LoanView v = Loan("B0001", "L1");
  EXPECT_EQ(v.institution_id, "B0001");
  EXPECT_EQ(v.loan_id, "L1");
  EXPECT_EQ(v.last_seq, 2u);
  EXPECT_EQ(v.last_business_date, D("2024-02-10"));
  EXPECT_EQ(v.balance_fen, 900);
  EXPECT_EQ(v.attributes, Green());
  EXPECT_EQ(v.categories, Bit(Category::kTotal) | Bit(Category::kGreen));

  MustApply({Reclassify("L1", 3, "2024-03-10", mlt)});
  v = Loan("B0001", "L1");
  EXPECT_EQ(v.last_seq, 3u);
  EXPECT_EQ(v.balance_fen, 900);
  EXPECT_EQ(v.attributes, mlt);
  EXPECT_EQ(v.categories, Bit(Category::kTotal) | Bit(Category::kManufacturing) |
                              Bit(Category::kManufacturingMlt) |
                              Bit(Category::kHighTechManufacturing) |
                              Bit(Category::kInclusiveSmallMicro) | Bit(Category::kTechFinance));
  EXPECT_EQ(v.categories, Classify(mlt));

  // The same loan id at another institution is another loan.
  MustApply({Disburse("L1", 1, "2024-01-01", 5, Srdi(), "B0002")});
  EXPECT_EQ(Loan("B0002", "L1").balance_fen, 5);
  EXPECT_EQ(Loan("B0001", "L1").balance_fen, 900);
}

// ---------------------------------------------------------------------------
// Rows, groups and scopes

TEST_F(StorageLedgerTest, ReportWithoutGroupingHasOneRowPerCategoryInSpecOrder) {
  MustApply({Disburse("L1", 1, "2024-01-10", 1000, Green())});
  Report r = Query("2024-01-31");
  ASSERT_EQ(r.rows.size(), kCategoryCount);
  for (size_t i = 0; i < r.rows.size(); ++i) {
    EXPECT_EQ(static_cast<size_t>(r.rows[i].category), i);
    EXPECT_EQ(r.rows[i].group, "");
  }
  r = Query("2024-01-31", GroupBy::kNone, std::nullopt,
            {Category::kManufacturingMlt, Category::kGreen});
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[0].category, Category::kManufacturingMlt);
  EXPECT_EQ(r.rows[0].balance_fen, 0);
  EXPECT_EQ(r.rows[1].category, Category::kGreen);
  EXPECT_EQ(r.rows[1].balance_fen, 1000);
  // A date before any event still answers every category, with zeros.
  Reopen();
  r = Query("1990-01-01");
  EXPECT_EQ(r.rows.size(), kCategoryCount);
}

TEST_F(StorageLedgerTest, GroupByProvinceUsesTheTwoDigitCodeAscending) {
  MustApply({Disburse("L1", 1, "2024-01-10", 1000, InRegion("440300")),
             Disburse("L2", 1, "2024-01-10", 200, InRegion("310115")),
             Disburse("L3", 1, "2024-01-10", 30, Green(InRegion("110101"))),
             Disburse("L4", 1, "2024-01-10", 4, InRegion("310104"))});
  const Report r = Query("2024-01-31", GroupBy::kProvince);
  std::vector<std::pair<size_t, std::string>> order;
  std::vector<std::string> total_groups;
  for (const ReportRow& row : r.rows) {
    order.emplace_back(static_cast<size_t>(row.category), row.group);
    if (row.category == Category::kTotal) total_groups.push_back(row.group);
  }
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end())) << "category order, then group ascending";
  EXPECT_EQ(std::adjacent_find(order.begin(), order.end()), order.end())
      << "a (category, group) twice";
  EXPECT_EQ(total_groups, (std::vector<std::string>{"11", "31", "44"}));
  EXPECT_EQ(Row(r, Category::kTotal, "11").balance_fen, 30);
  EXPECT_EQ(Row(r, Category::kTotal, "31").balance_fen, 204);
  EXPECT_EQ(Row(r, Category::kTotal, "31").loan_count, 2);
  EXPECT_EQ(Row(r, Category::kTotal, "44").balance_fen, 1000);
  EXPECT_EQ(Row(r, Category::kGreen, "11").balance_fen, 30);
  EXPECT_TRUE(IsZeroOrAbsent(r, Category::kGreen, "31"));
  EXPECT_TRUE(IsZeroOrAbsent(r, Category::kGreen, "44"));
  EXPECT_TRUE(IsZeroOrAbsent(r, Category::kTotal, "12"));
}

TEST_F(StorageLedgerTest, GroupByInstitutionAscending) {
  MustApply({Disburse("L1", 1, "2024-01-10", 1000, Attrs(), "B0002"),
             Disburse("L1", 1, "2024-01-10", 200, Attrs(), "A9"),
             Disburse("L2", 1, "2024-01-10", 30, Green(), "B0001"),
             Disburse("L3", 1, "2024-01-10", 4, Attrs(), "B0001")});
  const Report r = Query("2024-01-31", GroupBy::kInstitution);
  std::vector<std::string> total_groups;
  for (const ReportRow& row : r.rows) {
    if (row.category == Category::kTotal) total_groups.push_back(row.group);
  }
  EXPECT_EQ(total_groups, (std::vector<std::string>{"A9", "B0001", "B0002"}));
  EXPECT_EQ(Row(r, Category::kTotal, "A9").balance_fen, 200);
  EXPECT_EQ(Row(r, Category::kTotal, "B0001").balance_fen, 34);
  EXPECT_EQ(Row(r, Category::kTotal, "B0001").loan_count, 2);
  EXPECT_EQ(Row(r, Category::kTotal, "B0002").balance_fen, 1000);
  EXPECT_EQ(Row(r, Category::kGreen, "B0001").balance_fen, 30);
  EXPECT_TRUE(IsZeroOrAbsent(r, Category::kGreen, "A9"));
}

TEST_F(StorageLedgerTest, ScopeInstitutionLimitsFiguresToItsOwnLoans) {
  MustApply({Disburse("L1", 1, "2023-01-10", 1000, Attrs(), "B0001"),
             Disburse("L1", 1, "2023-01-10", 200, InRegion("110101"), "B0002"),
             Disburse("L2", 1, "2024-01-10", 30, Green(InRegion("110101")), "B0001"),
             Disburse("L3", 1, "2024-01-10", 4, Green(), "B0002")});
  Report r = Query("2024-01-31", GroupBy::kNone, "B0001");
  EXPECT_EQ(Row(r, Category::kTotal).balance_fen, 1030);
  EXPECT_EQ(Row(r, Category::kTotal).loan_count, 2);
  EXPECT_EQ(Row(r, Category::kTotal).balance_year_ago_fen, 1000);
  EXPECT_EQ(Row(r, Category::kTotal).disbursed_ytd_fen, 30);
  EXPECT_EQ(Row(r, Category::kGreen).balance_fen, 30);
  r = Query("2024-01-31", GroupBy::kNone, "B0002");
  EXPECT_EQ(Row(r, Category::kTotal).balance_fen, 204);
  EXPECT_EQ(Row(r, Category::kGreen).balance_fen, 4);
  // Grouped and scoped.
  r = Query("2024-01-31", GroupBy::kProvince, "B0001");
  EXPECT_EQ(Row(r, Category::kTotal, "31").balance_fen, 1000);
  EXPECT_EQ(Row(r, Category::kTotal, "11").balance_fen, 30);
  r = Query("2024-01-31", GroupBy::kInstitution, "B0001");
  for (const ReportRow& row : r.rows) EXPECT_EQ(row.group, "B0001");
  EXPECT_EQ(Row(r, Category::kTotal, "B0001").balance_fen, 1030);
  // An institution with no loans sees zeros, not others' figures.
  r = Query("2024-01-31", GroupBy::kNone, "B0003");
  for (const ReportRow& row : r.rows) EXPECT_TRUE(IsZeroOrAbsent(r, row.category, row.group));
  EXPECT_EQ(Row(r, Category::kTotal).balance_fen, 0);
  // Series too.
  const Series s = QuerySeries(Category::kTotal, "2023-11-01", "2024-01-31", Step::kMonth,
                               GroupBy::kNone, "B0002");
  ASSERT_EQ(s.points.size(), 3u);
  EXPECT_EQ(s.points[0].balance_fen, 200);
  EXPECT_EQ(s.points[2].balance_fen, 204);
  EXPECT_EQ(s.points[2].loan_count, 2);
}

TEST_F(StorageLedgerTest, SeriesGivesOnePointPerPeriodEndAndGroup) {
  MustApply({Disburse("L1", 1, "2024-01-10", 1000, InRegion("440300")),
             Disburse("L2", 1, "2024-02-10", 200, InRegion("310115")),
             Repay("L1", 2, "2024-03-15", 100, InRegion("440300"))});
  for (Step step : {Step::kDay, Step::kMonth, Step::kQuarter, Step::kYear}) {
    const Series s = QuerySeries(Category::kTotal, "2024-01-01", "2024-04-10", step);
    EXPECT_EQ(s.category, Category::kTotal);
    EXPECT_EQ(s.step, step);
    const std::vector<Day> dates = SeriesDates(D("2024-01-01"), D("2024-04-10"), step);
    ASSERT_EQ(s.points.size(), dates.size()) << StepName(step);
    for (size_t i = 0; i < dates.size(); ++i) {
      EXPECT_EQ(s.points[i].date, dates[i]);
      EXPECT_EQ(s.points[i].balance_fen, Balance(FormatDate(dates[i])));
    }
  }
  const Series by =
      QuerySeries(Category::kTotal, "2024-01-01", "2024-03-31", Step::kMonth, GroupBy::kProvince);
  EXPECT_EQ(by.by, GroupBy::kProvince);
  std::vector<std::tuple<std::string, std::string, int64_t, int64_t>> got;
  for (const SeriesPoint& p : by.points) {
    got.emplace_back(FormatDate(p.date), p.group, p.balance_fen, p.loan_count);
  }
  using T = std::tuple<std::string, std::string, int64_t, int64_t>;
  EXPECT_EQ(got, (std::vector<T>{T{"2024-01-31", "31", 0, 0}, T{"2024-01-31", "44", 1000, 1},
                                 T{"2024-02-29", "31", 200, 1}, T{"2024-02-29", "44", 1000, 1},
                                 T{"2024-03-31", "31", 200, 1}, T{"2024-03-31", "44", 900, 1}}));
}

TEST_F(StorageLedgerTest, BadQueriesAreInvalidArgumentsNotCrashes) {
  SeriesQuery q;
  q.from = D("2024-02-01");
  q.to = D("2024-01-01");
  EXPECT_EQ(ledger_->QuerySeries(q).status().code(), Status::Code::kInvalidArgument);
  q.from = kDayMin - 1;
  q.to = D("2024-01-01");
  EXPECT_FALSE(ledger_->QuerySeries(q).ok());
  ReportQuery r;
  r.date = kDayMax + 1;
  EXPECT_FALSE(ledger_->QueryReport(r).ok());
  r.date = D("2024-01-01");
  r.categories = {static_cast<Category>(200)};
  EXPECT_FALSE(ledger_->QueryReport(r).ok());
}

// ---------------------------------------------------------------------------
// Group commit

TEST_F(StorageLedgerTest, ApplyGroupWithARejectedMiddleBatchAppliesTheOthers) {
  const Batch first = MakeBatch({Disburse("L1", 1, "2024-01-10", 1000)});
  const Batch bad =
      MakeBatch({Disburse("L2", 1, "2024-01-10", 50), Repay("L2", 2, "2024-01-11", 51)});
  const Batch third =
      MakeBatch({Repay("L1", 2, "2024-01-12", 100), Disburse("L3", 1, "2024-01-12", 7)});
  const Batch* batches[] = {&first, &bad, &third};
  Result<std::vector<ApplyResult>> r = ledger_->ApplyGroup(batches);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_TRUE((*r)[0].applied);
  EXPECT_EQ((*r)[0].events_applied, 1u);
  EXPECT_FALSE((*r)[1].applied);
  ASSERT_EQ((*r)[1].rejections.size(), 1u);
  EXPECT_EQ((*r)[1].rejections[0].index, 1u);
  EXPECT_EQ((*r)[1].rejections[0].reason, Reason::kOverdraw);
  EXPECT_EQ((*r)[1].batch_no, 0u);
  EXPECT_TRUE((*r)[2].applied);
  EXPECT_EQ((*r)[2].events_applied, 2u);
  EXPECT_EQ((*r)[2].batch_no, (*r)[0].batch_no + 1);
  EXPECT_EQ(Balance("2024-01-31"), 907);
  EXPECT_EQ(ledger_->QueryLoan("B0001", "L2").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(Loan("B0001", "L1").last_seq, 2u);
  // The same batches again: the good ones are duplicates now, the bad one still bad.
  r = ledger_->ApplyGroup(batches);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].events_duplicate, 1u);
  EXPECT_FALSE((*r)[1].applied);
  EXPECT_EQ((*r)[2].events_duplicate, 2u);
  EXPECT_EQ(Balance("2024-01-31"), 907);
}

TEST_F(StorageLedgerTest, ApplyGroupBatchesSeeEachOthersEffects) {
  const Batch a = MakeBatch({Disburse("L1", 1, "2024-01-10", 1000)});
  const Batch b = MakeBatch({Repay("L1", 2, "2024-01-11", 1000)});
  const Batch c = MakeBatch({Repay("L1", 3, "2024-01-12", 1)});        // overdraws after b
  const Batch d = MakeBatch({Disburse("L1", 1, "2024-01-10", 1000)});  // duplicate of a
  const Batch* batches[] = {&a, &b, &c, &d};
  Result<std::vector<ApplyResult>> r = ledger_->ApplyGroup(batches);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)[0].applied);
  EXPECT_TRUE((*r)[1].applied);
  EXPECT_FALSE((*r)[2].applied);
  ASSERT_EQ((*r)[2].rejections.size(), 1u);
  EXPECT_EQ((*r)[2].rejections[0].reason, Reason::kOverdraw);
  EXPECT_TRUE((*r)[3].applied);
  EXPECT_EQ((*r)[3].events_duplicate, 1u);
  EXPECT_EQ(Loan("B0001", "L1").balance_fen, 0);
}

TEST_F(StorageLedgerTest, AfterARejectedBatchOfAStreamItsLaterBatchesAreSkipped) {
  auto in_stream = [](std::vector<LoanEvent> events, uint64_t stream, uint64_t position,
                      std::string caller) {
    Batch b = MakeBatch(std::move(events), std::move(caller));
    b.stream = stream;
    b.stream_batch = position;
    return b;
  };
  const Batch a = in_stream({Disburse("L1", 1, "2024-01-10", 1000)}, 7, 0, "B0001");
  const Batch bad = in_stream({Repay("L1", 2, "2024-01-11", 5000)}, 7, 1, "B0001");  // overdraw
  const Batch after = in_stream({Disburse("L2", 1, "2024-01-12", 30)}, 7, 2, "B0001");
  const Batch other_stream = in_stream({Disburse("L3", 1, "2024-01-12", 40)}, 8, 0, "B0001");
  const Batch no_stream = MakeBatch({Disburse("L4", 1, "2024-01-12", 50)}, "B0001");
  // The same stream id of another institution is another stream.
  const Batch other_institution =
      in_stream({Disburse("L5", 1, "2024-01-12", 60, Attrs(), "B0002")}, 7, 0, "B0002");
  const Batch* group[] = {&a, &bad, &after, &other_stream, &no_stream, &other_institution};
  Result<std::vector<ApplyResult>> r = ledger_->ApplyGroup(group);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 6u);
  EXPECT_TRUE((*r)[0].applied);
  EXPECT_FALSE((*r)[1].applied);
  EXPECT_FALSE((*r)[1].skipped);
  ASSERT_EQ((*r)[1].rejections.size(), 1u);
  EXPECT_EQ((*r)[1].rejections[0].reason, Reason::kOverdraw);
  EXPECT_FALSE((*r)[2].applied);
  EXPECT_TRUE((*r)[2].skipped);
  EXPECT_TRUE((*r)[2].rejections.empty());
  EXPECT_EQ((*r)[2].batch_no, 0u);
  for (size_t i : {3, 4, 5}) {
    EXPECT_TRUE((*r)[i].applied) << i;
    EXPECT_FALSE((*r)[i].skipped) << i;
  }
  EXPECT_EQ(ledger_->QueryLoan("B0001", "L2").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(Loan("B0001", "L3").balance_fen, 40);
  EXPECT_EQ(Loan("B0002", "L5").balance_fen, 60);

  // In a later group too, whatever the batch holds; other streams go on.
  const Batch later = in_stream({Repay("L1", 2, "2024-01-13", 10)}, 7, 3, "B0001");
  const Batch fresh = in_stream({Repay("L1", 2, "2024-01-13", 10)}, 9, 0, "B0001");
  Result<ApplyResult> one = ledger_->Apply(later);
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(one->skipped);
  EXPECT_EQ(Loan("B0001", "L1").last_seq, 1u);
  // The rejected batch resent (its reply lost) is judged again, with its
  // reasons; an earlier one resent is judged as usual (duplicates).
  one = ledger_->Apply(bad);
  ASSERT_TRUE(one.ok());
  EXPECT_FALSE(one->skipped);
  ASSERT_EQ(one->rejections.size(), 1u);
  EXPECT_EQ(one->rejections[0].reason, Reason::kOverdraw);
  one = ledger_->Apply(a);
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(one->applied);
  EXPECT_EQ(one->events_duplicate, 1u);
  one = ledger_->Apply(fresh);
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(one->applied);
  EXPECT_EQ(Loan("B0001", "L1").balance_fen, 990);
  EXPECT_EQ(Balance("2024-01-31"), 990 + 40 + 50 + 60);
}

TEST_F(StorageLedgerTest, ARejectedBatchThatAppliesWhenResentClearsItsStream) {
  Batch gap = MakeBatch({Disburse("L1", 2, "2024-01-10", 5)}, "B0001");  // seq 2 before seq 1
  gap.stream = 3;
  gap.stream_batch = 4;
  Batch next = MakeBatch({Disburse("L2", 1, "2024-01-10", 6)}, "B0001");
  next.stream = 3;
  next.stream_batch = 5;
  Result<ApplyResult> r = ledger_->Apply(gap);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rejections.size(), 1u);
  EXPECT_TRUE(ledger_->Apply(next)->skipped);
  // Another stream fills the gap; the resent batch now applies, and the
  // stream goes on.
  Batch first = MakeBatch({Disburse("L1", 1, "2024-01-09", 1)}, "B0001");
  first.stream = 4;
  EXPECT_TRUE(ledger_->Apply(first)->applied);
  EXPECT_TRUE(ledger_->Apply(gap)->applied);
  EXPECT_TRUE(ledger_->Apply(next)->applied);
  EXPECT_EQ(Balance("2024-01-31"), 1 + 5 + 6);
}

TEST(RejectedStreams, RollbackUndoesAGroupAndCommitBoundsTheStreamsKept) {
  RejectedStreams streams(2);
  auto batch = [](uint64_t stream, uint64_t position) {
    Batch b = MakeBatch({}, "B0001");
    b.stream = stream;
    b.stream_batch = position;
    return b;
  };
  streams.OnJudged(batch(1, 5), false);
  EXPECT_TRUE(streams.Skips(batch(1, 6)));
  EXPECT_FALSE(streams.Skips(batch(1, 5)));
  EXPECT_FALSE(streams.Skips(batch(0, 6)));  // stream 0: never
  streams.Rollback();                        // the group's write failed
  EXPECT_FALSE(streams.Skips(batch(1, 6)));
  EXPECT_EQ(streams.size(), 0u);

  streams.OnJudged(batch(1, 5), false);
  streams.OnJudged(batch(1, 3), false);  // an earlier one rejected too: the stream stops there
  streams.Commit();
  EXPECT_TRUE(streams.Skips(batch(1, 4)));
  streams.OnJudged(batch(1, 3), true);  // the first rejected applies when resent: clear
  streams.Rollback();                   // ... but that group failed
  EXPECT_TRUE(streams.Skips(batch(1, 4)));
  streams.OnJudged(batch(2, 0), false);
  streams.OnJudged(batch(3, 0), false);
  streams.Commit();  // three streams, two kept: the oldest (1) is forgotten
  EXPECT_EQ(streams.size(), 2u);
  EXPECT_FALSE(streams.Skips(batch(1, 4)));
  EXPECT_TRUE(streams.Skips(batch(2, 1)));
  EXPECT_TRUE(streams.Skips(batch(3, 1)));
}

TEST_F(StorageLedgerTest, TheLedgerRemembersTheLastRejectedStreamsOnly) {
  // Rejected streams 1..kRejectedStreamsMax+1: the oldest is forgotten.
  const uint64_t n = kRejectedStreamsMax + 1;
  std::vector<Batch> bad;
  bad.reserve(n);
  for (uint64_t s = 1; s <= n; ++s) {
    bad.push_back(MakeBatch({Repay("NOPE", 1, "2024-01-10", 1)}, "B0001"));
    bad.back().stream = s;  // position 0: rejected
  }
  std::vector<const Batch*> group;
  for (const Batch& b : bad) group.push_back(&b);
  Result<std::vector<ApplyResult>> r = ledger_->ApplyGroup(group);
  ASSERT_TRUE(r.ok());
  for (const ApplyResult& x : *r) ASSERT_FALSE(x.applied || x.skipped);
  Batch oldest = MakeBatch({Disburse("L1", 1, "2024-01-10", 1)}, "B0001");
  oldest.stream = 1;
  oldest.stream_batch = 1;
  Batch newest = MakeBatch({Disburse("L2", 1, "2024-01-10", 1)}, "B0001");
  newest.stream = n;
  newest.stream_batch = 1;
  Result<ApplyResult> one = ledger_->Apply(newest);
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(one->skipped);
  one = ledger_->Apply(oldest);
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(one->applied);
}

// ---------------------------------------------------------------------------
// Edges

TEST_F(StorageLedgerTest, EmptyAndOversizeBatchesAreRejectedWhole) {
  ApplyResult r = Apply({});
  EXPECT_FALSE(r.applied);
  EXPECT_FALSE(r.rejections.empty());
  std::vector<LoanEvent> events;
  events.reserve(kBatchEventsMax + 1);
  for (size_t i = 0; i <= kBatchEventsMax; ++i) {
    events.push_back(Disburse("L" + std::to_string(i), 1, "2024-01-10", 1));
  }
  r = Apply(events);
  EXPECT_FALSE(r.applied);
  EXPECT_FALSE(r.rejections.empty());
  EXPECT_EQ(r.events_applied, 0u);
  EXPECT_EQ(ledger_->QueryLoan("B0001", "L0").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(Balance("2024-12-31"), 0);
  // Exactly the maximum is one batch.
  events.pop_back();
  const ApplyResult ok = Apply(events);
  EXPECT_TRUE(ok.applied);
  EXPECT_EQ(ok.events_applied, kBatchEventsMax);
  EXPECT_EQ(Row(Query("2024-12-31"), Category::kTotal).loan_count,
            static_cast<int64_t>(kBatchEventsMax));
}

TEST_F(StorageLedgerTest, EventsAtTheEndsOfTheDateRange) {
  MustApply({Disburse("L1", 1, "1990-01-01", 1000), Repay("L1", 2, "2199-12-31", 400)});
  ReportRow row = Row(Query("1990-01-01"), Category::kTotal);
  EXPECT_EQ(row.balance_fen, 1000);
  EXPECT_EQ(row.ytd_increase_fen, 1000);
  EXPECT_EQ(row.disbursed_ytd_fen, 1000);
  EXPECT_FALSE(row.yoy_growth_pct.has_value());
  row = Row(Query("2199-12-31"), Category::kTotal);
  EXPECT_EQ(row.balance_fen, 600);
  EXPECT_EQ(row.balance_year_ago_fen, 1000);
  EXPECT_EQ(row.repaid_ytd_fen, 400);
  EXPECT_EQ(row.ytd_increase_fen, -400);
  EXPECT_NEAR(row.yoy_growth_pct.value_or(0), -40.0, 1e-9);
  const Series s = QuerySeries(Category::kTotal, "1990-01-01", "2199-12-31", Step::kYear);
  ASSERT_EQ(s.points.size(), 210u);
  EXPECT_EQ(s.points.front().balance_fen, 1000);
  EXPECT_EQ(s.points[208].balance_fen, 1000);
  EXPECT_EQ(s.points.back().balance_fen, 600);
  EXPECT_EQ(FormatDate(s.points.back().date), "2199-12-31");
}

TEST_F(StorageLedgerTest, LoanKeysDoNotCollideAcrossTheInstitutionLoanBoundary) {
  const std::string long_inst(32, 'Z');
  const std::string long_loan = std::string(63, '~') + " ";
  MustApply({Disburse("C", 1, "2024-01-10", 1, Attrs(), "AB"),
             Disburse("BC", 1, "2024-01-10", 20, Attrs(), "A"),
             Disburse(long_loan, 1, "2024-01-10", 300, Attrs(), long_inst),
             Disburse("L/1 \"x\"", 1, "2024-01-10", 4000, Attrs(), "A")});
  EXPECT_EQ(Loan("AB", "C").balance_fen, 1);
  EXPECT_EQ(Loan("A", "BC").balance_fen, 20);
  EXPECT_EQ(Loan(long_inst, long_loan).balance_fen, 300);
  EXPECT_EQ(Loan(long_inst, long_loan).loan_id, long_loan);
  EXPECT_EQ(Loan("A", "L/1 \"x\"").balance_fen, 4000);
  EXPECT_EQ(ledger_->QueryLoan("A", "B").status().code(), Status::Code::kNotFound);
  EXPECT_FALSE(ledger_->QueryLoan("ABC", "").ok());
  const Report r = Query("2024-01-31", GroupBy::kInstitution, std::nullopt, {Category::kTotal});
  EXPECT_EQ(Row(r, Category::kTotal, "A").balance_fen, 4020);
  EXPECT_EQ(Row(r, Category::kTotal, "AB").balance_fen, 1);
  EXPECT_EQ(Row(r, Category::kTotal, long_inst).balance_fen, 300);
}

TEST_F(StorageLedgerTest, QueryLoanWithAnInvalidIdIsAnError) {
  MustApply({Disburse("L1", 1, "2024-01-10", 1)});
  EXPECT_FALSE(ledger_->QueryLoan("", "L1").ok());
  EXPECT_FALSE(ledger_->QueryLoan("b0001", "L1").ok());
  EXPECT_FALSE(ledger_->QueryLoan("B0001", "").ok());
  EXPECT_FALSE(ledger_->QueryLoan("B0001", "L1,").ok());
  EXPECT_FALSE(ledger_->QueryLoan(std::string("B0001\0L1", 8), "L1").ok());
}

}  // namespace
}  // namespace loanledger::storage
