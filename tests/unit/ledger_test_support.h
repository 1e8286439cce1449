// Shared helpers of the ledger unit tests (storage_ledger_test.cc,
// storage_ledger_persistence_test.cc, storage_ledger_snapshot_test.cc):
// event builders, report lookups and a fixture that opens a fresh ledger in
// a temporary directory per test.
#pragma once

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "schema/category.h"
#include "schema/date.h"
#include "schema/event.h"
#include "schema/query.h"
#include "storage/ledger.h"

namespace loanledger::storage::test {

namespace fs = std::filesystem;

inline Day D(std::string_view text) {
  const std::optional<Day> d = ParseDate(text);
  EXPECT_TRUE(d.has_value()) << text;
  return d.value_or(kDayMin);
}

inline std::string MakeTempDir() {
  std::string tmpl = (fs::path(testing::TempDir()) / "loanledger-unit-XXXXXX").string();
  const char* made = mkdtemp(tmpl.data());
  EXPECT_NE(made, nullptr) << std::strerror(errno);
  return tmpl;
}

// A MakeTempDir removed with everything in it when the test ends.
struct ScopedTempDir {
  std::string path = MakeTempDir();
  ScopedTempDir() = default;
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  ~ScopedTempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// A loan in TOTAL only: a large enterprise in retail in Shanghai, short term.
inline LoanAttributes Attrs() {
  LoanAttributes a;
  a.borrower_type = BorrowerType::kEnterprise;
  a.enterprise_size = EnterpriseSize::kLarge;
  a.industry_code = "F5211";
  a.region_code = "310115";
  a.term_months = 12;
  a.credit_line_fen = 50'000'000'000;
  return a;
}

inline LoanAttributes Green(LoanAttributes a = Attrs()) {
  a.green = true;
  return a;
}
inline LoanAttributes Srdi(LoanAttributes a = Attrs()) {
  a.srdi = true;
  return a;
}
inline LoanAttributes InRegion(std::string region, LoanAttributes a = Attrs()) {
  a.region_code = std::move(region);
  return a;
}

inline LoanEvent Ev(std::string_view inst, std::string_view loan, uint64_t seq,
                    std::string_view date, EventKind kind, int64_t amount_fen,
                    const LoanAttributes& a = Attrs()) {
  LoanEvent e;
  e.institution_id = inst;
  e.loan_id = loan;
  e.seq = seq;
  e.business_date = D(date);
  e.kind = kind;
  e.amount_fen = amount_fen;
  e.attributes = a;
  return e;
}
inline LoanEvent Disburse(std::string_view loan, uint64_t seq, std::string_view date,
                          int64_t amount, const LoanAttributes& a = Attrs(),
                          std::string_view inst = "B0001") {
  return Ev(inst, loan, seq, date, EventKind::kDisburse, amount, a);
}
inline LoanEvent Repay(std::string_view loan, uint64_t seq, std::string_view date, int64_t amount,
                       const LoanAttributes& a = Attrs(), std::string_view inst = "B0001") {
  return Ev(inst, loan, seq, date, EventKind::kRepay, amount, a);
}
inline LoanEvent WriteOff(std::string_view loan, uint64_t seq, std::string_view date,
                          int64_t amount, const LoanAttributes& a = Attrs(),
                          std::string_view inst = "B0001") {
  return Ev(inst, loan, seq, date, EventKind::kWriteOff, amount, a);
}
inline LoanEvent Reclassify(std::string_view loan, uint64_t seq, std::string_view date,
                            const LoanAttributes& a, std::string_view inst = "B0001") {
  return Ev(inst, loan, seq, date, EventKind::kReclassify, 0, a);
}

inline Batch MakeBatch(std::vector<LoanEvent> events, std::string caller = "") {
  return Batch{.submitter = "unit-test",
               .caller_institution = std::move(caller),
               .events = std::move(events)};
}

// A row of a report, if present.
inline std::optional<ReportRow> FindRow(const Report& r, Category c, std::string_view group = "") {
  for (const ReportRow& row : r.rows) {
    if (row.category == c && row.group == group) return row;
  }
  return std::nullopt;
}

// A row that must be present.
inline ReportRow Row(const Report& r, Category c, std::string_view group = "") {
  std::optional<ReportRow> row = FindRow(r, c, group);
  EXPECT_TRUE(row.has_value()) << CategoryName(c) << " group '" << group << "' missing";
  return row.value_or(ReportRow{});
}

// A missing row and an all-zero row both mean "nothing there".
inline bool IsZeroOrAbsent(const Report& r, Category c, std::string_view group) {
  const std::optional<ReportRow> row = FindRow(r, c, group);
  if (!row) return true;
  return row->balance_fen == 0 && row->loan_count == 0 && row->balance_year_ago_fen == 0 &&
         row->ytd_increase_fen == 0 && row->disbursed_ytd_fen == 0 && row->repaid_ytd_fen == 0 &&
         row->written_off_ytd_fen == 0 && !row->yoy_growth_pct.has_value();
}

inline void ExpectSameLoan(const LoanView& a, const LoanView& b);
inline void ExpectSameReport(const Report& a, const Report& b);

class StorageLedgerTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    Reopen();
  }
  void TearDown() override {
    ledger_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  LedgerOptions Options(bool sync = false) const {
    LedgerOptions o;
    o.path = dir_;
    o.sync = sync;
    o.block_cache_bytes = 8u << 20;
    o.clock_ms = [] { return int64_t{1'700'000'000'000}; };
    o.snapshot_events = snapshot_events_;
    o.parallel_load_loans = parallel_load_loans_;
    return o;
  }

  void Close() { ledger_.reset(); }
  void Reopen() {
    ledger_.reset();
    Result<std::unique_ptr<Ledger>> opened = Ledger::Open(Options());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    ledger_ = std::move(opened).value();
  }

  ApplyResult Apply(std::vector<LoanEvent> events, std::string caller = "") {
    Result<ApplyResult> r = ledger_->Apply(MakeBatch(std::move(events), std::move(caller)));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return ApplyResult{};
    // The header's invariant: rejections non-empty iff not applied.
    EXPECT_EQ(r->applied, r->rejections.empty());
    return std::move(r).value();
  }

  // Applies and expects the whole batch to be applied.
  void MustApply(std::vector<LoanEvent> events) {
    const size_t n = events.size();
    const ApplyResult r = Apply(std::move(events));
    ASSERT_TRUE(r.applied) << (r.rejections.empty()
                                   ? std::string()
                                   : std::string(ReasonName(r.rejections[0].reason)) + ": " +
                                         r.rejections[0].message);
    EXPECT_EQ(r.events_applied + r.events_duplicate, n);
  }

  Report Query(std::string_view date, GroupBy by = GroupBy::kNone,
               std::optional<std::string> scope = std::nullopt,
               std::vector<Category> categories = {}) {
    ReportQuery q;
    q.date = D(date);
    q.by = by;
    q.scope_institution = std::move(scope);
    q.categories = std::move(categories);
    Result<Report> r = ledger_->QueryReport(q);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return Report{};
    EXPECT_EQ(r->date, q.date);
    return std::move(r).value();
  }

  int64_t Balance(std::string_view date, Category c = Category::kTotal, std::string_view group = "",
                  GroupBy by = GroupBy::kNone) {
    const Report r = Query(date, by);
    const std::optional<ReportRow> row = FindRow(r, c, group);
    return row ? row->balance_fen : 0;
  }

  Series QuerySeries(Category c, std::string_view from, std::string_view to, Step step,
                     GroupBy by = GroupBy::kNone, std::optional<std::string> scope = std::nullopt) {
    SeriesQuery q;
    q.category = c;
    q.from = D(from);
    q.to = D(to);
    q.step = step;
    q.by = by;
    q.scope_institution = std::move(scope);
    Result<Series> r = ledger_->QuerySeries(q);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return Series{};
    return std::move(r).value();
  }

  LoanView Loan(std::string_view inst, std::string_view loan) {
    Result<LoanView> r = ledger_->QueryLoan(inst, loan);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return LoanView{};
    return std::move(r).value();
  }

  // Every report, series and loan view that the state-based tests compare.
  struct Snapshot {
    std::vector<Report> reports;
    std::vector<Series> series;
    std::vector<LoanView> loans;
  };
  Snapshot Take(const std::vector<std::pair<std::string, std::string>>& loans) {
    Snapshot s;
    for (const char* date : {"2022-12-31", "2023-02-28", "2023-06-30", "2024-02-29", "2024-03-01",
                             "2024-12-31", "2025-02-28"}) {
      for (GroupBy by : {GroupBy::kNone, GroupBy::kProvince, GroupBy::kInstitution}) {
        s.reports.push_back(Query(date, by));
        s.reports.push_back(Query(date, by, "B0001"));
      }
    }
    for (const CategoryRule& rule : CategoryRules()) {
      for (Step step : {Step::kDay, Step::kMonth, Step::kQuarter, Step::kYear}) {
        const std::string_view from = step == Step::kDay ? "2024-02-01" : "2022-01-15";
        for (GroupBy by : {GroupBy::kNone, GroupBy::kProvince, GroupBy::kInstitution}) {
          s.series.push_back(QuerySeries(rule.category, from, "2025-03-10", step, by));
        }
      }
    }
    for (const auto& [inst, loan] : loans) s.loans.push_back(Loan(inst, loan));
    return s;
  }
  // Every report, series and loan of two Takes equal.
  static void ExpectSameSnapshot(const Snapshot& before, const Snapshot& after) {
    ASSERT_EQ(before.reports.size(), after.reports.size());
    for (size_t i = 0; i < before.reports.size(); ++i)
      ExpectSameReport(before.reports[i], after.reports[i]);
    ASSERT_EQ(before.series.size(), after.series.size());
    for (size_t i = 0; i < before.series.size(); ++i) {
      EXPECT_EQ(before.series[i].points, after.series[i].points) << i;
    }
    ASSERT_EQ(before.loans.size(), after.loans.size());
    for (size_t i = 0; i < before.loans.size(); ++i)
      ExpectSameLoan(before.loans[i], after.loans[i]);
  }
  std::string dir_;
  std::unique_ptr<Ledger> ledger_;
  // Passed by Options() (the snapshot tests lower them; Reopen() to apply).
  uint64_t snapshot_events_ = LedgerOptions{}.snapshot_events;
  uint64_t parallel_load_loans_ = LedgerOptions{}.parallel_load_loans;
};

// A whole file's bytes ("" when it cannot be read), and writing them back.
inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
inline void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

inline void ExpectSameLoan(const LoanView& a, const LoanView& b) {
  EXPECT_EQ(a.institution_id, b.institution_id);
  EXPECT_EQ(a.loan_id, b.loan_id);
  EXPECT_EQ(a.last_seq, b.last_seq);
  EXPECT_EQ(a.last_business_date, b.last_business_date);
  EXPECT_EQ(a.balance_fen, b.balance_fen);
  EXPECT_EQ(a.attributes, b.attributes);
  EXPECT_EQ(a.categories, b.categories);
}

inline void ExpectSameReport(const Report& a, const Report& b) {
  EXPECT_EQ(a.date, b.date);
  ASSERT_EQ(a.rows.size(), b.rows.size()) << FormatDate(a.date);
  for (size_t i = 0; i < a.rows.size(); ++i) {
    EXPECT_EQ(a.rows[i], b.rows[i]) << FormatDate(a.date) << " row " << i << " "
                                    << CategoryName(a.rows[i].category) << "/" << a.rows[i].group;
  }
}

}  // namespace loanledger::storage::test
