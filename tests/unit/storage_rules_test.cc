// Rules files in the ledger (docs/categories.md, storage/rules_store.cc):
// a new version applied to a ledger gives the figures of a fresh ledger fed
// the same batches under it; queries answer under the old version until the
// switch, and writers go on meanwhile; the version survives a restart; a bad
// file changes nothing; region groups.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "schema/rules.h"
#include "storage/loan_snapshot.h"
#include "tests/unit/ledger_test_support.h"

namespace loanledger::storage::test {
namespace {

// Categories that reorder and differ from the default, and region groups
// of provinces and of cities (4-digit prefixes) that overlap.
const char* kPolicyRules = R"({"version": "test-2025",
 "categories": [
   {"name": "GREEN", "rule": {"flag": "green"}},
   {"name": "MANUFACTURING", "rule": {"industry_prefix": ["C"]}},
   {"name": "MLT_GREEN_MANUFACTURING", "rule": {"all": [{"category": "MANUFACTURING"},
                                                        {"category": "GREEN"},
                                                        {"term_months_gt": 12}]}},
   {"name": "NOT_SHANGHAI", "rule": {"not": {"region_prefix": ["31"]}}},
   {"name": "SMALL", "rule": {"any": [{"enterprise_size": ["SMALL", "MICRO"]},
                                      {"borrower_type": ["INDIVIDUAL_BUSINESS"]}]}}],
 "region_groups": [
   {"name": "YANGTZE_RIVER_DELTA", "region_prefix": ["31", "32", "33", "34"]},
   {"name": "SHENZHEN", "region_prefix": ["4403"]},
   {"name": "GUANGDONG", "region_prefix": ["44"]}]})";

// Deterministic batches of a small random portfolio: disbursements,
// repayments and reclassifications across regions, sizes and flags.
std::vector<Batch> RandomBatches(uint32_t seed, size_t batches, size_t loans) {
  std::mt19937 rng(seed);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  static const char* kRegions[] = {"310115", "320105", "440305", "440106", "110105", "330106"};
  static const char* kIndustries[] = {"C3911", "C2710", "F5211", "C13", "A0111"};
  struct Loan {
    uint64_t seq = 0;
    int64_t balance = 0;
    int day = 0;
  };
  std::vector<Loan> state(loans);
  std::vector<Batch> out;
  for (size_t b = 0; b < batches; ++b) {
    std::vector<LoanEvent> events;
    std::set<size_t> used;
    for (int k = 0; k < 8; ++k) {
      const size_t l = pick(loans);
      if (!used.insert(l).second) continue;
      Loan& s = state[l];
      LoanAttributes a = Attrs();
      a.region_code = kRegions[pick(6)];
      a.industry_code = kIndustries[pick(5)];
      a.enterprise_size = static_cast<EnterpriseSize>(1 + pick(4));
      a.term_months = static_cast<uint16_t>(6 + pick(48));
      a.green = pick(2) == 0;
      s.day += static_cast<int>(pick(40));
      const std::string date = FormatDate(D("2023-01-01") + s.day);
      const std::string id = "L" + std::to_string(l);
      const std::string inst = l % 3 == 0 ? "B0001" : "B0002";
      const size_t kind = s.seq == 0 ? 0 : pick(3);
      if (kind == 0) {
        const int64_t amount = 1000 + static_cast<int64_t>(pick(100000));
        events.push_back(Disburse(id, ++s.seq, date, amount, a, inst));
        s.balance += amount;
      } else if (kind == 1 && s.balance > 0) {
        const int64_t amount = 1 + static_cast<int64_t>(pick(static_cast<size_t>(s.balance)));
        events.push_back(Repay(id, ++s.seq, date, amount, a, inst));
        s.balance -= amount;
      } else {
        events.push_back(Reclassify(id, ++s.seq, date, a, inst));
      }
    }
    out.push_back(MakeBatch(std::move(events)));
  }
  return out;
}

class StorageRulesTest : public testing::Test {
 protected:
  std::unique_ptr<Ledger> Open(const std::string& dir, const std::string& rules = "") {
    LedgerOptions o;
    o.path = dir;
    o.sync = false;
    o.rules_text = rules;
    o.clock_ms = [] { return int64_t{1'700'000'000'000}; };
    Result<std::unique_ptr<Ledger>> l = Ledger::Open(o);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    return l.ok() ? std::move(l).value() : nullptr;
  }
  static void Feed(Ledger* l, const std::vector<Batch>& batches, size_t from = 0,
                   size_t to = SIZE_MAX) {
    for (size_t i = from; i < std::min(to, batches.size()); ++i) {
      Result<ApplyResult> r = l->Apply(batches[i]);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ASSERT_TRUE(r->applied) << i;
    }
  }
  // `l` answers every report of Reports as `want` holds, and Verify finds
  // no difference (its figures are its journal's under its rules).
  static void ExpectFigures(Ledger& l, const std::vector<Report>& want) {
    const std::vector<Report> got = Reports(l);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].rows, want[i].rows) << i;
    Result<VerifyReport> check = l.Verify();
    ASSERT_TRUE(check.ok());
    EXPECT_TRUE(check->differences.empty()) << check->differences.front().what;
  }

  // Every report a regulator could ask for, on a few dates.
  static std::vector<Report> Reports(const Ledger& l) {
    std::vector<Report> out;
    for (const char* date : {"2023-06-30", "2024-03-31", "2026-12-31"}) {
      for (GroupBy by :
           {GroupBy::kNone, GroupBy::kProvince, GroupBy::kInstitution, GroupBy::kRegionGroup}) {
        ReportQuery q;
        q.date = D(date);
        q.by = by;
        Result<Report> r = l.QueryReport(q);
        EXPECT_TRUE(r.ok()) << r.status().ToString();
        if (r.ok()) out.push_back(*r);
      }
    }
    return out;
  }
  ScopedTempDir temp_a_;
  ScopedTempDir temp_b_;
  const std::string dir_a_ = temp_a_.path;
  const std::string dir_b_ = temp_b_.path;
};

TEST_F(StorageRulesTest, NewStoreRecordsTheDefaultAsVersionOne) {
  auto l = Open(dir_a_);
  ASSERT_NE(l, nullptr);
  const RulesVersion v = l->CurrentRules();
  EXPECT_EQ(v.number, 1u);
  EXPECT_EQ(v.version, "2024-default");
  EXPECT_EQ(v.text, DefaultRulesText());
  Result<std::vector<RulesVersion>> h = l->RulesHistory();
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size(), 1u);
  EXPECT_EQ((*h)[0].applied_ms, 1'700'000'000'000);
  ReportQuery q;
  q.date = D("2024-01-01");
  Result<Report> r = l->QueryReport(q);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rules_version, "2024-default");
  ASSERT_EQ(r->rows.size(), kCategoryCount);
  for (size_t i = 0; i < kCategoryCount; ++i)
    EXPECT_EQ(r->rows[i].category_name, CategoryName(static_cast<Category>(i)));
}

TEST_F(StorageRulesTest, AppliedRulesEqualAFreshLedgerUnderThem) {
  const std::vector<Batch> batches = RandomBatches(7, 300, 60);
  auto a = Open(dir_a_);
  ASSERT_NE(a, nullptr);
  Feed(a.get(), batches);
  EXPECT_EQ(a->RulesRecompute().completed, 0u);
  Result<RulesVersion> v = a->ApplyRules(kPolicyRules);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->number, 2u);
  EXPECT_EQ(v->version, "test-2025");
  // The progress of the recompute, for metrics: one completed, none running,
  // every journal batch replayed.
  const RulesProgress progress = a->RulesRecompute();
  EXPECT_FALSE(progress.running);
  EXPECT_EQ(progress.completed, 1u);
  EXPECT_GE(progress.last_duration_ms, 0);
  EXPECT_EQ(progress.batches_done, batches.size());
  EXPECT_EQ(progress.batches_total, batches.size());

  auto b = Open(dir_b_, kPolicyRules);
  ASSERT_NE(b, nullptr);
  Feed(b.get(), batches);
  const std::vector<Report> ra = Reports(*a);
  const std::vector<Report> rb = Reports(*b);
  ASSERT_EQ(ra.size(), rb.size());
  for (size_t i = 0; i < ra.size(); ++i) {
    EXPECT_EQ(ra[i].rules_version, "test-2025");
    EXPECT_EQ(ra[i].rows, rb[i].rows) << "report " << i;
  }
  // The new categories and groups are there, with data.
  ReportQuery q;
  q.date = D("2026-12-31");
  q.by = GroupBy::kRegionGroup;
  q.category_names = {"MLT_GREEN_MANUFACTURING", "TOTAL"};
  Result<Report> r = a->QueryReport(q);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::set<std::string> groups;
  for (const ReportRow& row : r->rows) {
    groups.insert(row.group);
    EXPECT_TRUE(row.category_name == "MLT_GREEN_MANUFACTURING" || row.category_name == "TOTAL");
  }
  EXPECT_EQ(groups, (std::set<std::string>{"YANGTZE_RIVER_DELTA", "SHENZHEN", "GUANGDONG"}));
  // Verify recomputes under the new rules and finds nothing to report.
  Result<VerifyReport> check = a->Verify();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->differences.empty()) << check->differences.front().what;
  // And after more batches, both still agree.
  const std::vector<Batch> more = RandomBatches(8, 40, 90);
  Feed(a.get(), more);
  Feed(b.get(), more);
  EXPECT_EQ(Reports(*a).back().rows, Reports(*b).back().rows);
  // Loans name their categories under the new rules.
  Result<LoanView> loan = a->QueryLoan("B0001", "L0");
  ASSERT_TRUE(loan.ok());
  ASSERT_FALSE(loan->category_names.empty());
  EXPECT_EQ(loan->category_names.front(), "TOTAL");
}

TEST_F(StorageRulesTest, RegionGroupsCountALoanInEveryMatchingGroup) {
  auto l = Open(dir_a_, kPolicyRules);
  ASSERT_NE(l, nullptr);
  Feed(l.get(), {MakeBatch({Disburse("SZ", 1, "2024-01-02", 500, InRegion("440305")),
                            Disburse("GZ", 1, "2024-01-02", 70, InRegion("440106")),
                            Disburse("SH", 1, "2024-01-02", 9, InRegion("310115")),
                            Disburse("BJ", 1, "2024-01-02", 1, InRegion("110105"))})});
  ReportQuery q;
  q.date = D("2024-06-30");
  q.by = GroupBy::kRegionGroup;
  q.category_names = {"TOTAL"};
  Result<Report> r = l->QueryReport(q);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->rows.size(), 3u);
  EXPECT_EQ(r->rows[0].group, "YANGTZE_RIVER_DELTA");
  EXPECT_EQ(r->rows[0].balance_fen, 9);
  EXPECT_EQ(r->rows[1].group, "SHENZHEN");
  EXPECT_EQ(r->rows[1].balance_fen, 500);
  EXPECT_EQ(r->rows[2].group, "GUANGDONG");
  EXPECT_EQ(r->rows[2].balance_fen, 570);
  EXPECT_EQ(r->rows[2].loan_count, 2);
  // Groups never add into the national figure.
  q.by = GroupBy::kNone;
  r = l->QueryReport(q);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rows.at(0).balance_fen, 580);
  // A loan that moves out of a group leaves it on that date.
  Feed(l.get(), {MakeBatch({Reclassify("SZ", 2, "2024-03-01", InRegion("320105"))})});
  q.by = GroupBy::kRegionGroup;
  r = l->QueryReport(q);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rows.at(0).balance_fen, 509);
  EXPECT_EQ(r->rows.at(2).balance_fen, 70);
  SeriesQuery s;
  s.category_name = "TOTAL";
  s.from = D("2024-01-31");
  s.to = D("2024-03-31");
  s.by = GroupBy::kRegionGroup;
  Result<Series> series = l->QuerySeries(s);
  ASSERT_TRUE(series.ok()) << series.status().ToString();
  EXPECT_EQ(series->rules_version, "test-2025");
  int64_t shenzhen_jan = -1, shenzhen_mar = -1;
  for (const SeriesPoint& p : series->points) {
    if (p.group == "SHENZHEN" && p.date == D("2024-01-31")) shenzhen_jan = p.balance_fen;
    if (p.group == "SHENZHEN" && p.date == D("2024-03-31")) shenzhen_mar = p.balance_fen;
  }
  EXPECT_EQ(shenzhen_jan, 500);
  EXPECT_EQ(shenzhen_mar, 0);
}

TEST_F(StorageRulesTest, TheVersionSurvivesARestart) {
  const std::vector<Batch> batches = RandomBatches(11, 80, 30);
  std::vector<Report> before;
  {
    auto a = Open(dir_a_);
    ASSERT_NE(a, nullptr);
    Feed(a.get(), batches);
    ASSERT_TRUE(a->ApplyRules(kPolicyRules).ok());
    before = Reports(*a);
  }
  auto a = Open(dir_a_);  // no --rules: the store's current version
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->CurrentRules().version, "test-2025");
  EXPECT_EQ(a->CurrentRules().number, 2u);
  const std::vector<Report> after = Reports(*a);
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) EXPECT_EQ(after[i].rows, before[i].rows) << i;
  Result<std::vector<RulesVersion>> h = a->RulesHistory();
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size(), 2u);
  EXPECT_EQ((*h)[0].text, DefaultRulesText());
  EXPECT_EQ((*h)[1].text, kPolicyRules);
  Result<VerifyReport> check = a->Verify();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->differences.empty()) << check->differences.front().what;
  // --rules with the default again: a third version, today's figures back.
  a.reset();
  a = Open(dir_a_, std::string(DefaultRulesText()));
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->CurrentRules().number, 3u);
  auto fresh = Open(dir_b_);
  Feed(fresh.get(), batches);
  EXPECT_EQ(Reports(*a).back().rows, Reports(*fresh).back().rows);
}

TEST_F(StorageRulesTest, ABadFileChangesNothing) {
  auto a = Open(dir_a_);
  ASSERT_NE(a, nullptr);
  Feed(a.get(), RandomBatches(3, 20, 10));
  const std::vector<Report> before = Reports(*a);
  Result<RulesVersion> v =
      a->ApplyRules(R"({"version":"x","categories":[{"name":"A","rule":{"flag":"purple"}}]})");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(v.status().message().rfind("categories[0].rule.flag: unknown flag \"purple\"", 0), 0u)
      << v.status().message();
  EXPECT_EQ(a->CurrentRules().number, 1u);
  Result<std::vector<RulesVersion>> h = a->RulesHistory();
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->size(), 1u);
  const std::vector<Report> after = Reports(*a);
  for (size_t i = 0; i < after.size(); ++i) EXPECT_EQ(after[i].rows, before[i].rows);
  // The current text again is no new version.
  v = a->ApplyRules(DefaultRulesText());
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->number, 1u);
}

// Queries answer under the old version during the recompute and under the
// new one after it, never a mixture; batches keep applying; the result
// equals a fresh ledger fed every batch under the new rules.
TEST_F(StorageRulesTest, OldVersionAnswersDuringTheRecomputeAndWritersGoOn) {
  const std::vector<Batch> batches = RandomBatches(5, 4000, 400);
  const size_t preloaded = 3000;
  auto a = Open(dir_a_);
  ASSERT_NE(a, nullptr);
  Feed(a.get(), batches, 0, preloaded);
  std::atomic<bool> done{false};
  Result<RulesVersion> applied = Status::Internal("not run");
  std::thread apply([&] {
    applied = a->ApplyRules(kPolicyRules);
    done = true;
  });
  size_t old_answers_while_running = 0;
  size_t next = preloaded;
  while (!done.load()) {
    const bool running = a->RulesRecompute().running;
    ReportQuery q;
    q.date = D("2026-12-31");
    Result<Report> r = a->QueryReport(q);
    ASSERT_TRUE(r.ok());
    if (r->rules_version == "2024-default") {
      ASSERT_EQ(r->rows.size(), kCategoryCount);  // never a mixture of the two versions
      if (running) ++old_answers_while_running;
    } else {
      ASSERT_EQ(r->rules_version, "test-2025");
      ASSERT_EQ(r->rows.size(), 6u);
    }
    if (next < batches.size()) Feed(a.get(), batches, next, next + 1), ++next;
  }
  apply.join();
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_GT(old_answers_while_running, 0u);
  Feed(a.get(), batches, next);
  auto b = Open(dir_b_, kPolicyRules);
  Feed(b.get(), batches);
  ExpectFigures(*a, Reports(*b));
}

// Loan snapshots keep each loan's categories with a digest of the rules
// they were computed under (storage/README.md, "Loan snapshots"): an open
// under the same rules takes them as they are and classifies nothing
// (LedgerStats::open_masks_from_snapshot, open_loans_classified); the
// batches after it, whose events take each loan's old categories out of
// their cells, give the figures of a store that classified every loan
// itself. Under the default rules and under a file with region groups.
TEST_F(StorageRulesTest, SnapshotMasksAreUsedWhenTheRulesAreUnchanged) {
  const std::vector<Batch> batches = RandomBatches(41, 300, 250);
  for (const std::string& rules : {std::string(), std::string(kPolicyRules)}) {
    SCOPED_TRACE(rules.empty() ? "default rules" : "policy rules");
    ScopedTempDir reopened_dir, fresh_dir;
    {
      auto l = Open(reopened_dir.path, rules);
      ASSERT_NE(l, nullptr);
      Feed(l.get(), batches, 0, 150);
    }  // a clean close writes the snapshot
    auto l = Open(reopened_dir.path, rules);
    ASSERT_NE(l, nullptr);
    const LedgerStats st = l->Stats();
    EXPECT_GT(st.loans, 200u);
    EXPECT_EQ(st.open_masks_from_snapshot, st.loans);
    EXPECT_EQ(st.open_loans_classified, 0u) << "classified although the rules did not change";
    Feed(l.get(), batches, 150);
    auto fresh = Open(fresh_dir.path, rules);
    ASSERT_NE(fresh, nullptr);
    Feed(fresh.get(), batches);
    ExpectFigures(*l, Reports(*fresh));
  }
}

// A snapshot written under other rules than those in force at open: its
// masks are not used, every loan is classified under the rules in force,
// and the figures are those rules' — whether the rules change at this
// open (--rules) or changed after the snapshot was written (ApplyRules,
// then a crash before the next snapshot; a clean close writes one with
// the new rules' masks even when no batch came since).
TEST_F(StorageRulesTest, SnapshotMasksUnderOtherRulesAreNotUsed) {
  const std::vector<Batch> batches = RandomBatches(42, 300, 250);
  auto fresh = Open(dir_b_, kPolicyRules);
  ASSERT_NE(fresh, nullptr);
  Feed(fresh.get(), batches);
  const std::vector<Report> want = Reports(*fresh);
  auto expect_policy_figures = [&](Ledger* l) { ExpectFigures(*l, want); };
  {
    SCOPED_TRACE("--rules at open");
    {
      auto l = Open(dir_a_);
      ASSERT_NE(l, nullptr);
      Feed(l.get(), batches, 0, 150);
    }
    auto l = Open(dir_a_, kPolicyRules);
    ASSERT_NE(l, nullptr);
    const LedgerStats st = l->Stats();
    EXPECT_EQ(st.open_loans_classified, st.loans);
    Feed(l.get(), batches, 150);
    expect_policy_figures(l.get());
  }
  {
    SCOPED_TRACE("rules changed after the snapshot");
    ScopedTempDir dir;
    {
      auto l = Open(dir.path);
      ASSERT_NE(l, nullptr);
      Feed(l.get(), batches, 0, 150);
    }
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(dir.path + "/loan-snapshots"))
      files.push_back(e.path());
    ASSERT_EQ(files.size(), 1u);
    const std::string snapshot = files[0].string();
    const std::string under_default = ReadFile(snapshot);
    {
      auto l = Open(dir.path);
      ASSERT_NE(l, nullptr);
      EXPECT_EQ(l->Stats().open_loans_classified, 0u);
      Result<RulesVersion> v = l->ApplyRules(kPolicyRules);
      ASSERT_TRUE(v.ok()) << v.status().ToString();
    }  // written again under the new rules, the same replay_from
    Result<SnapshotInfo> info = ReadSnapshotInfo(snapshot);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    Result<std::shared_ptr<const Rules>> policy = Rules::Parse(kPolicyRules);
    ASSERT_TRUE(policy.ok());
    EXPECT_EQ(info->rules_digest, DigestOfRules(**policy));
    {
      auto l = Open(dir.path);
      ASSERT_NE(l, nullptr);
      const LedgerStats st = l->Stats();
      EXPECT_EQ(st.open_masks_from_snapshot, st.loans);
      EXPECT_EQ(st.open_loans_classified, 0u);
    }
    // A crash after the rules change, before that snapshot: the older one.
    WriteFile(snapshot, under_default);
    auto l = Open(dir.path);
    ASSERT_NE(l, nullptr);
    EXPECT_EQ(l->CurrentRules().version, "test-2025");
    const LedgerStats st = l->Stats();
    EXPECT_GT(st.loans, 200u);
    EXPECT_EQ(st.open_masks_from_snapshot, 0u) << "masks of the old rules used";
    EXPECT_EQ(st.open_loans_classified, st.loans);
    Feed(l.get(), batches, 150);
    expect_policy_figures(l.get());
  }
}

}  // namespace
}  // namespace loanledger::storage::test
