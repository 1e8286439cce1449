// A seeded randomized model test of the ledger (STYLE.md "Tests"): random
// valid event streams, applied in random batch splits with resends, group
// commits and rejected batches, are compared with a plain recomputation
// from the list of applied events (ledger_model.h; docs/data.md, docs/figures.md).
//
// Replay one seed: LOANLEDGER_MODEL_SEED=123 ./storage_model_test
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "schema/category.h"
#include "schema/date.h"
#include "schema/event.h"
#include "schema/query.h"
#include "storage/ledger.h"
#include "tests/unit/ledger_model.h"

namespace loanledger::storage {
namespace {

namespace fs = std::filesystem;

constexpr int kSeedCount = 200;       // streams in the main test
constexpr int kReopenSeedCount = 40;  // streams in the reopen test
constexpr uint64_t kFirstSeed = 1;
constexpr const char* kSeedEnv = "LOANLEDGER_MODEL_SEED";

using namespace loanledger::storage::model;  // NOLINT(google-build-using-namespace): the model

// ---------------------------------------------------------------------------
// Comparison

std::string Describe(const ReportRow& r) {
  std::ostringstream os;
  os << CategoryName(r.category) << "/'" << r.group << "' balance=" << r.balance_fen
     << " count=" << r.loan_count << " year_ago=" << r.balance_year_ago_fen << " yoy=";
  if (r.yoy_growth_pct) {
    os << *r.yoy_growth_pct;
  } else {
    os << "null";
  }
  os << " ytd_increase=" << r.ytd_increase_fen << " disbursed_ytd=" << r.disbursed_ytd_fen
     << " repaid_ytd=" << r.repaid_ytd_fen << " written_off_ytd=" << r.written_off_ytd_fen;
  return os.str();
}

std::string DescribeQuery(const ReportQuery& q) {
  std::ostringstream os;
  os << "report date=" << FormatDate(q.date) << " by=" << GroupByName(q.by)
     << " scope=" << q.scope_institution.value_or("-") << " categories=" << q.categories.size();
  return os.str();
}

bool SameFigures(const ReportRow& a, const ReportRow& b) {
  if (a.yoy_growth_pct.has_value() != b.yoy_growth_pct.has_value()) return false;
  // Same formula on the same integers: the doubles agree to the last bit;
  // 1e-9 leaves room for an equivalent formulation.
  if (a.yoy_growth_pct && std::abs(*a.yoy_growth_pct - *b.yoy_growth_pct) > 1e-9) return false;
  return a.balance_fen == b.balance_fen && a.loan_count == b.loan_count &&
         a.balance_year_ago_fen == b.balance_year_ago_fen &&
         a.ytd_increase_fen == b.ytd_increase_fen && a.disbursed_ytd_fen == b.disbursed_ytd_fen &&
         a.repaid_ytd_fen == b.repaid_ytd_fen && a.written_off_ytd_fen == b.written_off_ytd_fen;
}

// The differences between an expected and an actual answer, in two kinds:
// wrong figures (a missing row or point counting as zeros), and otherwise
// right figures in a different set or order of rows. Empty when equal.
struct Mismatch {
  std::string figures;
  std::string rows;
};

Mismatch CompareReports(const ReportQuery& q, const Report& want, const Report& got) {
  if (got.date != want.date) return {DescribeQuery(q) + ": wrong date " + FormatDate(got.date), ""};
  auto key = [](const ReportRow& r) {
    return std::make_pair(static_cast<int>(r.category), r.group);
  };
  std::map<std::pair<int, std::string>, ReportRow> w, g;
  for (const ReportRow& r : want.rows) w[key(r)] = r;
  for (const ReportRow& r : got.rows) g[key(r)] = r;
  std::set<std::pair<int, std::string>> keys;
  for (const auto& [k, r] : w) keys.insert(k);
  for (const auto& [k, r] : g) keys.insert(k);
  for (const auto& k : keys) {
    ReportRow zero;
    zero.category = static_cast<Category>(k.first);
    zero.group = k.second;
    const ReportRow& a = w.count(k) ? w[k] : zero;
    const ReportRow& b = g.count(k) ? g[k] : zero;
    if (!SameFigures(a, b)) {
      return {DescribeQuery(q) + ":\n  expected " + Describe(a) + "\n  actual   " + Describe(b),
              ""};
    }
  }
  std::vector<std::pair<int, std::string>> want_keys, got_keys;
  for (const ReportRow& r : want.rows) want_keys.push_back(key(r));
  for (const ReportRow& r : got.rows) got_keys.push_back(key(r));
  if (want_keys != got_keys) {
    std::ostringstream os;
    os << DescribeQuery(q) << ": figures agree but the rows differ (category/group):\n  expected";
    for (const auto& [c, gr] : want_keys)
      os << ' ' << CategoryName(static_cast<Category>(c)) << "/'" << gr << "'";
    os << "\n  actual  ";
    for (const auto& [c, gr] : got_keys)
      os << ' ' << CategoryName(static_cast<Category>(c)) << "/'" << gr << "'";
    return {"", os.str()};
  }
  return {};
}

std::string DescribePoint(const SeriesPoint& p) {
  return FormatDate(p.date) + " '" + p.group + "' balance=" + std::to_string(p.balance_fen) +
         " count=" + std::to_string(p.loan_count);
}

Mismatch CompareSeries(const SeriesQuery& q, const std::vector<SeriesPoint>& want,
                       const Series& got) {
  std::ostringstream head;
  head << "series " << CategoryName(q.category) << " " << FormatDate(q.from) << ".."
       << FormatDate(q.to) << " step=" << StepName(q.step) << " by=" << GroupByName(q.by)
       << " scope=" << q.scope_institution.value_or("-");
  if (got.category != q.category || got.step != q.step || got.by != q.by)
    return {head.str() + ": wrong header", ""};
  // Figures by (date, group), a missing point counting as zero.
  using Key = std::pair<Day, std::string>;
  std::map<Key, SeriesPoint> w, g;
  for (const SeriesPoint& p : want) w[{p.date, p.group}] = p;
  for (const SeriesPoint& p : got.points) g[{p.date, p.group}] = p;
  std::set<Key> keys;
  for (const auto& [k, p] : w) keys.insert(k);
  for (const auto& [k, p] : g) keys.insert(k);
  for (const Key& k : keys) {
    const SeriesPoint zero{k.first, k.second, 0, 0};
    const SeriesPoint& a = w.count(k) ? w[k] : zero;
    const SeriesPoint& b = g.count(k) ? g[k] : zero;
    if (!(a == b)) {
      return {head.str() + ":\n  expected " + DescribePoint(a) + "\n  actual   " + DescribePoint(b),
              ""};
    }
  }
  for (size_t i = 0; i < std::max(want.size(), got.points.size()); ++i) {
    if (i >= want.size() || i >= got.points.size() || !(want[i] == got.points[i])) {
      std::ostringstream os;
      os << head.str() << ": figures agree but the points differ at " << i << " (" << want.size()
         << " expected, " << got.points.size() << " actual)";
      if (i < want.size()) os << "\n  expected " << DescribePoint(want[i]);
      if (i < got.points.size()) os << "\n  actual   " << DescribePoint(got.points[i]);
      return {"", os.str()};
    }
  }
  return {};
}

// ---------------------------------------------------------------------------
// One seed

std::string MakeTempDir() {
  std::string tmpl = (fs::path(testing::TempDir()) / "loanledger-model-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
  return tmpl;
}

class SeedRun {
 public:
  SeedRun(uint64_t seed, bool reopen)
      : seed_(seed), reopen_(reopen), rng_(seed), dir_(MakeTempDir()) {}
  ~SeedRun() {
    ledger_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Empty on success, else the first difference found.
  std::string Run() {
    if (std::string e = Open(); !e.empty()) return e;
    const Stream stream = RandomStream(rng_);
    institutions_ = stream.institutions;
    model_ = std::make_unique<Model>(stream.institutions);
    const size_t n = stream.batches.size();
    const size_t checkpoint = static_cast<size_t>(rng_.Int(0, static_cast<int64_t>(n) - 1));
    std::set<size_t> reopen_at;
    if (reopen_) {
      for (int i = 0; i < 2; ++i)
        reopen_at.insert(static_cast<size_t>(rng_.Int(0, static_cast<int64_t>(n))));
    }
    bool checked_mid = false;
    for (size_t i = 0; i < n;) {
      if (reopen_at.count(i)) {
        reopen_at.erase(i);
        if (std::string e = Open(); !e.empty()) return e;
      }
      if (!checked_mid && i >= checkpoint) {
        checked_mid = true;
        if (std::string e = CheckQueries(); !e.empty())
          return "mid-stream after batch " + std::to_string(i) + ": " + e;
      }
      const double r = rng_.Int(0, 999) / 1000.0;
      std::string e;
      if (r < 0.12 && i > 0) {
        e = Resend(stream.batches[static_cast<size_t>(rng_.Int(0, static_cast<int64_t>(i) - 1))]);
      } else if (r < 0.24) {
        e = ApplyBad(stream.batches[i]);
      } else if (r < 0.40 && i + 1 < n) {
        const size_t k = std::min<size_t>(n - i, static_cast<size_t>(rng_.Int(2, 4)));
        e = ApplyGroup(stream.batches, i, k);
        i += k;
      } else if (r < 0.50 && i > 0) {
        e = ApplyOverlapping(stream.batches[i - 1], stream.batches[i]);
        ++i;
      } else {
        e = ApplyFresh(stream.batches[i]);
        ++i;
      }
      if (!e.empty()) return "at batch " + std::to_string(i) + ": " + e;
    }
    if (reopen_) {
      if (std::string e = Open(); !e.empty()) return e;
    }
    if (std::string e = CheckQueries(); !e.empty()) return "end of stream: " + e;
    if (std::string e = CheckLoans(); !e.empty()) return "end of stream: " + e;
    if (std::string e = CheckVerify(); !e.empty()) return e;
    // Rebuilding the aggregates with unchanged rules changes no answer.
    if (reopen_ || rng_.Chance(0.2)) {
      Result<uint64_t> rebuilt = ledger_->RebuildAggregates();
      if (!rebuilt.ok()) return "rebuild: " + rebuilt.status().ToString();
      if (std::string e = CheckQueries(); !e.empty()) return "after rebuild: " + e;
      if (std::string e = CheckVerify(); !e.empty()) return "after rebuild: " + e;
      if (reopen_) {
        if (std::string e = Open(); !e.empty()) return e;
        if (std::string e = CheckQueries(); !e.empty()) return "after rebuild and reopen: " + e;
      }
    }
    return rows_error_;
  }

 private:
  std::string Open() {
    ledger_.reset();
    LedgerOptions o;
    o.path = dir_;
    o.sync = false;
    o.block_cache_bytes = 4u << 20;
    o.clock_ms = [] { return int64_t{1'700'000'000'000}; };
    Result<std::unique_ptr<Ledger>> opened = Ledger::Open(o);
    if (!opened.ok()) return "open: " + opened.status().ToString();
    ledger_ = std::move(opened).value();
    return "";
  }

  static Batch MakeBatch(std::vector<LoanEvent> events, std::string caller = "") {
    return Batch{
        .submitter = "model", .caller_institution = std::move(caller), .events = std::move(events)};
  }

  static std::string Rejections(const ApplyResult& r) {
    std::string s;
    for (const EventRejection& x : r.rejections) {
      s += " [" + std::to_string(x.index) + " " + std::string(ReasonName(x.reason)) + ": " +
           x.message + "]";
    }
    return s;
  }

  // Checks one batch's result against what the model expects of it.
  std::string Expect(const ApplyResult& r, uint32_t applied, uint32_t duplicate) {
    if (!r.applied) return "batch rejected:" + Rejections(r);
    if (r.events_applied != applied || r.events_duplicate != duplicate) {
      return "applied/duplicate " + std::to_string(r.events_applied) + "/" +
             std::to_string(r.events_duplicate) + ", expected " + std::to_string(applied) + "/" +
             std::to_string(duplicate);
    }
    const uint64_t want_no = applied > 0 ? next_batch_no_ : 0;
    if (r.batch_no != want_no) {
      return "batch_no " + std::to_string(r.batch_no) + ", expected " + std::to_string(want_no);
    }
    if (applied > 0) ++next_batch_no_;
    return "";
  }

  std::string ApplyFresh(const std::vector<LoanEvent>& events) {
    Result<ApplyResult> r = ledger_->Apply(MakeBatch(events));
    if (!r.ok()) return "apply: " + r.status().ToString();
    if (std::string e = Expect(*r, static_cast<uint32_t>(events.size()), 0); !e.empty()) return e;
    for (const LoanEvent& ev : events) model_->Apply(ev);
    return "";
  }

  std::string Resend(const std::vector<LoanEvent>& events) {
    Result<ApplyResult> r = ledger_->Apply(MakeBatch(events));
    if (!r.ok()) return "apply: " + r.status().ToString();
    return Expect(*r, 0, static_cast<uint32_t>(events.size()));
  }

  // The tail of the previous batch resent in front of the next one.
  std::string ApplyOverlapping(const std::vector<LoanEvent>& previous,
                               const std::vector<LoanEvent>& events) {
    const size_t m = static_cast<size_t>(rng_.Int(1, static_cast<int64_t>(previous.size())));
    std::vector<LoanEvent> combined(previous.end() - static_cast<long>(m), previous.end());
    combined.insert(combined.end(), events.begin(), events.end());
    Result<ApplyResult> r = ledger_->Apply(MakeBatch(combined));
    if (!r.ok()) return "apply: " + r.status().ToString();
    if (std::string e = Expect(*r, static_cast<uint32_t>(events.size()), static_cast<uint32_t>(m));
        !e.empty()) {
      return "overlapping resend: " + e;
    }
    for (const LoanEvent& ev : events) model_->Apply(ev);
    return "";
  }

  // A copy of a fresh batch with one event broken, and the rejections the
  // ledger must answer with.
  struct BadBatch {
    Batch batch;
    std::vector<std::pair<uint32_t, Reason>> rejections;
  };
  BadBatch MakeBad(const std::vector<LoanEvent>& events) {
    BadBatch bad{MakeBatch(events), {}};
    const size_t j = static_cast<size_t>(rng_.Int(0, static_cast<int64_t>(events.size()) - 1));
    LoanEvent& e = bad.batch.events[j];
    // The loan's state just before event j: the model's, then the batch's events before j.
    int64_t balance = model_->BalanceOf(e.institution_id, e.loan_id);
    std::optional<Day> previous_date;
    if (const std::vector<LoanEvent>* h = model_->History(e.institution_id, e.loan_id);
        h && !h->empty()) {
      previous_date = h->back().business_date;
    }
    for (size_t k = 0; k < j; ++k) {
      const LoanEvent& o = events[k];
      if (o.institution_id != e.institution_id || o.loan_id != e.loan_id) continue;
      balance += o.kind == EventKind::kDisburse     ? o.amount_fen
                 : o.kind == EventKind::kReclassify ? 0
                                                    : -o.amount_fen;
      previous_date = o.business_date;
    }
    const auto index = static_cast<uint32_t>(j);
    switch (rng_.Int(0, 4)) {
      case 0:
        e.attributes.region_code = "990000";
        bad.rejections = {{index, Reason::kBadRegionCode}};
        break;
      case 1:
        e.seq += 2;
        bad.rejections = {{index, Reason::kSeqGap}};
        break;
      case 2:
        if (e.seq == 1) {
          e.kind = EventKind::kRepay;
          e.amount_fen = 1;
          bad.rejections = {{index, Reason::kFirstEventNotDisburse}};
        } else {
          e.kind = rng_.Chance(0.5) ? EventKind::kRepay : EventKind::kWriteOff;
          e.amount_fen = balance + 1;
          bad.rejections = {{index, Reason::kOverdraw}};
        }
        break;
      case 3:
        if (previous_date && *previous_date > kDayMin) {
          e.business_date = *previous_date - 1;
          bad.rejections = {{index, Reason::kDateBeforePrevious}};
        } else {
          // Keep the ids valid, so that the loan's later events in the
          // batch are recognised as following a rejected one.
          e.attributes.term_months = 601;
          bad.rejections = {{index, Reason::kBadTermMonths}};
        }
        break;
      default: {
        // Sent by an institution that does not own event j: every event of
        // another institution than the caller is named.
        std::string caller = "NOT_" + e.institution_id;
        if (rng_.Chance(0.5)) {
          for (const std::string& inst : institutions_) {
            if (inst != e.institution_id) caller = inst;
          }
        }
        bad.batch.caller_institution = caller;
        for (size_t k = 0; k < events.size(); ++k) {
          if (events[k].institution_id != caller) {
            bad.rejections.emplace_back(static_cast<uint32_t>(k), Reason::kWrongInstitution);
          }
        }
        break;
      }
    }
    return bad;
  }

  static std::string ExpectRejected(const ApplyResult& r,
                                    const std::vector<std::pair<uint32_t, Reason>>& want) {
    if (r.applied) return "a bad batch was applied";
    std::vector<std::pair<uint32_t, Reason>> got;
    for (const EventRejection& x : r.rejections) got.emplace_back(x.index, x.reason);
    if (got != want) {
      std::string w;
      for (const auto& [i, reason] : want)
        w += " [" + std::to_string(i) + " " + std::string(ReasonName(reason)) + "]";
      return "rejections" + Rejections(r) + ", expected" + w;
    }
    if (r.events_applied != 0 || r.batch_no != 0) return "a rejected batch reports applied events";
    return "";
  }

  std::string ApplyBad(const std::vector<LoanEvent>& events) {
    const BadBatch bad = MakeBad(events);
    Result<ApplyResult> r = ledger_->Apply(bad.batch);
    if (!r.ok()) return "apply: " + r.status().ToString();
    if (std::string e = ExpectRejected(*r, bad.rejections); !e.empty()) return "bad batch: " + e;
    return "";
  }

  // k fresh batches in one group, sometimes with a bad copy of one of them
  // (placed before it) and a resent earlier batch mixed in.
  std::string ApplyGroup(const std::vector<std::vector<LoanEvent>>& batches, size_t first,
                         size_t k) {
    struct Item {
      Batch batch;
      enum { kFresh, kBad, kResend } kind;
      size_t source;
      std::vector<std::pair<uint32_t, Reason>> rejections;
    };
    std::vector<Item> items;
    const size_t bad_before =
        rng_.Chance(0.5) ? first + static_cast<size_t>(rng_.Int(0, static_cast<int64_t>(k) - 1))
                         : SIZE_MAX;
    for (size_t b = first; b < first + k; ++b) {
      if (b == bad_before) {
        // MakeBad reads the model, which does not yet hold the group's
        // earlier batches: apply them to a copy first.
        BadBatch bad = MakeBadAfter(batches, first, b);
        items.push_back(Item{std::move(bad.batch), Item::kBad, b, std::move(bad.rejections)});
      }
      items.push_back(Item{MakeBatch(batches[b]), Item::kFresh, b, {}});
      if (first > 0 && rng_.Chance(0.2)) {
        const size_t old = static_cast<size_t>(rng_.Int(0, static_cast<int64_t>(first) - 1));
        items.push_back(Item{MakeBatch(batches[old]), Item::kResend, old, {}});
      }
    }
    std::vector<const Batch*> pointers;
    for (const Item& it : items) pointers.push_back(&it.batch);
    Result<std::vector<ApplyResult>> r = ledger_->ApplyGroup(pointers);
    if (!r.ok()) return "apply group: " + r.status().ToString();
    if (r->size() != items.size()) return "apply group: wrong number of results";
    for (size_t x = 0; x < items.size(); ++x) {
      const Item& it = items[x];
      const ApplyResult& res = (*r)[x];
      std::string e;
      const auto size = static_cast<uint32_t>(it.batch.events.size());
      switch (it.kind) {
        case Item::kFresh:
          e = Expect(res, size, 0);
          for (const LoanEvent& ev : it.batch.events) model_->Apply(ev);
          break;
        case Item::kResend:
          e = Expect(res, 0, size);
          break;
        case Item::kBad:
          e = ExpectRejected(res, it.rejections);
          break;
      }
      if (!e.empty()) return "group item " + std::to_string(x) + ": " + e;
    }
    return "";
  }

  BadBatch MakeBadAfter(const std::vector<std::vector<LoanEvent>>& batches, size_t first,
                        size_t b) {
    if (b == first) return MakeBad(batches[b]);
    // Temporarily extend the model with the group's earlier batches.
    std::unique_ptr<Model> saved = std::make_unique<Model>(*model_);
    for (size_t x = first; x < b; ++x) {
      for (const LoanEvent& ev : batches[x]) model_->Apply(ev);
    }
    BadBatch bad = MakeBad(batches[b]);
    model_ = std::move(saved);
    return bad;
  }

  // Wrong figures stop the run; a difference only in which rows are present
  // is kept (the first one) and reported at the end, so that the run goes on
  // checking figures.
  std::string Note(Mismatch m) {
    if (!m.rows.empty() && rows_error_.empty()) rows_error_ = std::move(m.rows);
    return m.figures;
  }

  std::optional<std::string> RandomScope() {
    const double r = rng_.Int(0, 99) / 100.0;
    if (r < 0.55) return std::nullopt;
    if (r < 0.9) return rng_.Pick(institutions_);
    return std::string("NOBODY");
  }

  Day RandomDate() { return static_cast<Day>(rng_.Int(D("2021-06-01"), D("2026-06-30"))); }

  std::string CheckQueries() {
    std::vector<Day> dates = {D("2024-02-29"), D("2025-02-28"), D("2024-12-31"), D("2023-01-01")};
    for (int i = 0; i < 5; ++i) dates.push_back(RandomDate());
    for (Day d : dates) {
      for (GroupBy by : {GroupBy::kNone, GroupBy::kProvince, GroupBy::kInstitution}) {
        for (int scoped = 0; scoped < 2; ++scoped) {
          ReportQuery q;
          q.date = d;
          q.by = by;
          q.scope_institution = scoped ? RandomScope() : std::nullopt;
          if (rng_.Chance(0.2)) {
            for (const CategoryRule& rule : CategoryRules()) {
              if (rng_.Chance(0.4)) q.categories.push_back(rule.category);
            }
          }
          Result<Report> got = ledger_->QueryReport(q);
          if (!got.ok()) return DescribeQuery(q) + ": " + got.status().ToString();
          if (std::string e = Note(CompareReports(q, model_->ExpectedReport(q), *got)); !e.empty())
            return e;
        }
      }
    }
    for (Step step : {Step::kDay, Step::kMonth, Step::kQuarter, Step::kYear}) {
      static constexpr int64_t kSpanDaysMax[] = {40, 900, 1500, 2000};
      for (int i = 0; i < 2; ++i) {
        SeriesQuery q;
        q.category = static_cast<Category>(rng_.Int(0, kCategoryCount - 1));
        q.from = RandomDate();
        q.to = q.from + static_cast<Day>(rng_.Int(0, kSpanDaysMax[static_cast<int>(step)]));
        q.step = step;
        q.by = static_cast<GroupBy>(rng_.Int(0, 2));
        q.scope_institution = RandomScope();
        Result<Series> got = ledger_->QuerySeries(q);
        if (!got.ok()) return "series: " + got.status().ToString();
        if (std::string e = Note(CompareSeries(q, model_->ExpectedSeries(q), *got)); !e.empty())
          return e;
      }
    }
    return "";
  }

  std::string CheckLoans() {
    for (const auto& [key, history] : model_->loans()) {
      const std::string what = "loan " + key.first + "/" + key.second;
      Result<LoanView> v = ledger_->QueryLoan(key.first, key.second);
      if (!v.ok()) return what + ": " + v.status().ToString();
      const LoanEvent& last = history.back();
      if (v->institution_id != key.first || v->loan_id != key.second) return what + ": wrong ids";
      if (v->last_seq != last.seq) return what + ": last_seq " + std::to_string(v->last_seq);
      if (v->last_business_date != last.business_date)
        return what + ": last date " + FormatDate(v->last_business_date);
      if (v->balance_fen != model_->BalanceOf(key.first, key.second)) {
        return what + ": balance " + std::to_string(v->balance_fen) + ", expected " +
               std::to_string(model_->BalanceOf(key.first, key.second));
      }
      if (!(v->attributes == last.attributes)) return what + ": attributes differ";
      if (v->categories != Classify(last.attributes)) return what + ": categories differ";
    }
    if (ledger_->QueryLoan(institutions_.front(), "NO-SUCH-LOAN").status().code() !=
        Status::Code::kNotFound) {
      return "unknown loan is not NotFound";
    }
    const LedgerStats stats = ledger_->Stats();
    if (stats.loans != model_->loans().size()) {
      return "Stats().loans " + std::to_string(stats.loans) + ", expected " +
             std::to_string(model_->loans().size());
    }
    if (stats.batches_applied != next_batch_no_ - 1) {
      return "Stats().batches_applied " + std::to_string(stats.batches_applied) + ", expected " +
             std::to_string(next_batch_no_ - 1);
    }
    return "";
  }

  std::string CheckVerify() {
    Result<VerifyReport> v = ledger_->Verify();
    if (!v.ok()) return "verify: " + v.status().ToString();
    if (!v->differences.empty()) {
      const VerifyDifference& d = v->differences.front();
      return "verify found " + std::to_string(v->differences.size()) +
             " differences, first: " + d.what + " expected " + std::to_string(d.expected) +
             " actual " + std::to_string(d.actual);
    }
    if (v->loans_checked != model_->loans().size())
      return "verify checked " + std::to_string(v->loans_checked) + " loans";
    if (v->batches_replayed != next_batch_no_ - 1)
      return "verify replayed " + std::to_string(v->batches_replayed) + " batches";
    return "";
  }

  const uint64_t seed_;
  const bool reopen_;
  Rng rng_;
  const std::string dir_;
  std::unique_ptr<Ledger> ledger_;
  std::unique_ptr<Model> model_;
  std::vector<std::string> institutions_;
  uint64_t next_batch_no_ = 1;  // the journal number the next applied batch gets
  std::string rows_error_;      // the first rows-only mismatch (see Note)
};

std::vector<uint64_t> Seeds(int count, uint64_t first) {
  if (const char* env = std::getenv(kSeedEnv)) return {std::strtoull(env, nullptr, 10)};
  std::vector<uint64_t> seeds;
  for (int i = 0; i < count; ++i) seeds.push_back(first + static_cast<uint64_t>(i));
  return seeds;
}

// Runs every seed; prints the first few failures in full and counts the rest.
void RunSeeds(int count, uint64_t first, bool reopen) {
  constexpr int kFailuresPrinted = 5;
  std::vector<uint64_t> failed;
  const std::vector<uint64_t> seeds = Seeds(count, first);
  for (uint64_t seed : seeds) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " (replay: " + kSeedEnv + "=" +
                 std::to_string(seed) + ")");
    std::string error;
    {
      SeedRun run(seed, reopen);
      error = run.Run();
    }
    if (error.empty()) continue;
    failed.push_back(seed);
    if (failed.size() <= kFailuresPrinted) ADD_FAILURE() << error;
  }
  if (failed.size() > kFailuresPrinted) {
    std::string list;
    for (uint64_t s : failed) list += " " + std::to_string(s);
    ADD_FAILURE() << failed.size() << " of " << seeds.size() << " seeds failed:" << list;
  }
}

TEST(StorageModel, RandomStreamsMatchARecomputation) { RunSeeds(kSeedCount, kFirstSeed, false); }

TEST(StorageModel, RandomStreamsMatchARecomputationAcrossReopen) {
  RunSeeds(kReopenSeedCount, kFirstSeed + 100'000, true);
}

}  // namespace
}  // namespace loanledger::storage
