// The model of the randomized ledger test (storage_model_test.cc): random
// valid event streams, and every figure of a report or series recomputed
// plainly from the list of applied events (docs/categories.md, docs/figures.md), without anything
// incremental. Deliberately simple and slow.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "schema/category.h"
#include "schema/date.h"
#include "schema/event.h"
#include "schema/query.h"

namespace loanledger::storage::model {

inline Day D(std::string_view text) { return ParseDate(text).value(); }

// ---------------------------------------------------------------------------
// Random generation

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  // Uniform in [lo, hi].
  int64_t Int(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(gen_);
  }
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(gen_) < p; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(Int(0, static_cast<int64_t>(v.size()) - 1))];
  }
  std::mt19937_64& gen() { return gen_; }

 private:
  std::mt19937_64 gen_;
};

inline const std::vector<std::string> kRegions = {"310115", "110101", "440300", "650102", "330100"};
inline const std::vector<std::string> kIndustries = {"C2710", "C3921", "C39",   "C3911", "C1311",
                                                     "F5211", "C",     "A0111", "K66",   "C3587",
                                                     "C3581", "C4343", "C27",   "C3741"};

inline LoanAttributes RandomAttributes(Rng& rng) {
  LoanAttributes a;
  a.borrower_type = static_cast<BorrowerType>(rng.Int(1, 4));
  a.enterprise_size = a.borrower_type == BorrowerType::kEnterprise
                          ? static_cast<EnterpriseSize>(rng.Int(1, 4))
                          : EnterpriseSize::kNa;
  a.industry_code =
      a.borrower_type == BorrowerType::kIndividual && rng.Chance(0.5) ? "" : rng.Pick(kIndustries);
  a.region_code = rng.Pick(kRegions);
  a.term_months = static_cast<uint16_t>(rng.Pick(std::vector<int>{1, 6, 12, 13, 36, 120, 600}));
  a.credit_line_fen =
      rng.Pick(std::vector<int64_t>{0, 999'999'999, 1'000'000'000, 1'000'000'001, 50'000'000'000});
  a.srdi = rng.Chance(0.3);
  a.tech_enterprise = rng.Chance(0.3);
  a.green = rng.Chance(0.3);
  a.elderly_care = rng.Chance(0.2);
  a.digital_economy = rng.Chance(0.2);
  return a;
}

inline int64_t RandomAmount(Rng& rng) {
  if (rng.Chance(0.05)) return rng.Int(1, 1'000'000'000'000);
  return rng.Int(1, 10'000'000);
}

struct Stream {
  std::vector<std::string> institutions;
  std::vector<std::vector<LoanEvent>> batches;  // every event valid when applied in order
};

// One loan's events: starts with DISBURSE, dates non-decreasing within
// 2022..2025, repays and write-offs never above the balance.
inline std::vector<LoanEvent> RandomLoan(Rng& rng, const std::string& inst,
                                         const std::string& loan_id) {
  std::vector<LoanEvent> events;
  const Day first = D("2022-01-01");
  const Day last = D("2025-12-31");
  Day date = static_cast<Day>(rng.Int(first, last));
  LoanAttributes attrs = RandomAttributes(rng);
  int64_t balance = 0;
  const int count = static_cast<int>(rng.Int(1, 9));
  for (int i = 0; i < count; ++i) {
    LoanEvent e;
    e.institution_id = inst;
    e.loan_id = loan_id;
    e.seq = static_cast<uint64_t>(i) + 1;
    if (i > 0) {
      if (!rng.Chance(0.2)) date = std::min<Day>(last, date + static_cast<Day>(rng.Int(1, 150)));
      if (rng.Chance(0.3)) attrs = RandomAttributes(rng);
    }
    e.business_date = date;
    e.attributes = attrs;
    int kind = i == 0 ? 0 : static_cast<int>(rng.Int(0, 9));
    if (balance == 0 && (kind >= 2 && kind <= 7)) kind = rng.Chance(0.5) ? 0 : 8;
    if (kind <= 1) {
      e.kind = EventKind::kDisburse;
      e.amount_fen = RandomAmount(rng);
      balance += e.amount_fen;
    } else if (kind <= 5) {
      e.kind = EventKind::kRepay;
      e.amount_fen = rng.Chance(0.3) ? balance : rng.Int(1, balance);
      balance -= e.amount_fen;
    } else if (kind <= 7) {
      e.kind = EventKind::kWriteOff;
      e.amount_fen = rng.Chance(0.5) ? balance : rng.Int(1, balance);
      balance -= e.amount_fen;
    } else {
      e.kind = EventKind::kReclassify;
      e.amount_fen = 0;
      e.attributes = attrs = RandomAttributes(rng);
    }
    events.push_back(std::move(e));
  }
  return events;
}

inline Stream RandomStream(Rng& rng) {
  Stream s;
  std::vector<std::string> pool = {"B0001", "B0002", "A9", "Z_-1", "C0003"};
  std::shuffle(pool.begin(), pool.end(), rng.gen());
  s.institutions.assign(pool.begin(), pool.begin() + rng.Int(2, 4));
  // Loans: some share a loan id across institutions (distinct loans).
  std::vector<std::vector<LoanEvent>> loans;
  std::set<std::pair<std::string, std::string>> ids;
  const int loan_count = static_cast<int>(rng.Int(8, 40));
  while (static_cast<int>(loans.size()) < loan_count) {
    const std::string inst = rng.Pick(s.institutions);
    const std::string id = "L" + std::to_string(rng.Int(1, loan_count));
    if (!ids.insert({inst, id}).second) continue;
    loans.push_back(RandomLoan(rng, inst, id));
  }
  // Interleave the loans' events at random, keeping each loan's order: a
  // later event of the stream is often dated before an earlier one.
  std::vector<size_t> order;
  for (size_t i = 0; i < loans.size(); ++i) order.insert(order.end(), loans[i].size(), i);
  std::shuffle(order.begin(), order.end(), rng.gen());
  std::vector<size_t> next(loans.size(), 0);
  std::vector<LoanEvent> all;
  for (size_t i : order) all.push_back(loans[i][next[i]++]);
  // Random batch splits, mostly small.
  for (size_t pos = 0; pos < all.size();) {
    const size_t n = std::min<size_t>(
        all.size() - pos, static_cast<size_t>(rng.Chance(0.7) ? rng.Int(1, 6) : rng.Int(1, 40)));
    s.batches.emplace_back(all.begin() + static_cast<long>(pos),
                           all.begin() + static_cast<long>(pos + n));
    pos += n;
  }
  return s;
}

// ---------------------------------------------------------------------------
// The model: the applied events, and figures recomputed from them alone.

struct Measures {
  int64_t balance = 0;
  int64_t count = 0;
  int64_t disbursed = 0;
  int64_t repaid = 0;
  int64_t written_off = 0;
};

class Model {
 public:
  explicit Model(std::vector<std::string> institutions) : institutions_(std::move(institutions)) {
    std::sort(institutions_.begin(), institutions_.end());
    for (const std::string& r : kRegions) {
      const uint8_t p = ProvinceOf(r);
      if (std::find(provinces_.begin(), provinces_.end(), p) == provinces_.end())
        provinces_.push_back(p);
    }
    std::sort(provinces_.begin(), provinces_.end());
  }

  void Apply(const LoanEvent& e) {
    std::vector<LoanEvent>& history = loans_[{e.institution_id, e.loan_id}];
    EXPECT_EQ(e.seq, history.size() + 1) << "the stream itself is broken";
    InstIndex(e.institution_id);  // a known institution
    history.push_back(e);
    cache_.clear();
    day_changes_.reset();
    groups_cache_.clear();
  }

  // The loan's balance and last date after its applied events.
  int64_t BalanceOf(const std::string& inst, const std::string& loan) const {
    int64_t b = 0;
    auto it = loans_.find({inst, loan});
    if (it == loans_.end()) return 0;
    for (const LoanEvent& e : it->second) b += Signed(e);
    return b;
  }
  const std::vector<LoanEvent>* History(const std::string& inst, const std::string& loan) const {
    auto it = loans_.find({inst, loan});
    return it == loans_.end() ? nullptr : &it->second;
  }
  const std::map<std::pair<std::string, std::string>, std::vector<LoanEvent>>& loans() const {
    return loans_;
  }

  Report ExpectedReport(const ReportQuery& q) {
    Report r;
    r.date = q.date;
    std::vector<Category> categories = q.categories;
    if (categories.empty()) {
      for (const CategoryRule& rule : CategoryRules()) categories.push_back(rule.category);
    }
    const std::vector<Measures>& now = AsOf(q.date);
    const std::vector<Measures>& year_ago = AsOf(YearAgo(q.date));
    const std::vector<Measures>& year_start = AsOf(PreviousYearEnd(q.date));
    const std::vector<Measures> flows = Flows(PreviousYearEnd(q.date) + 1, q.date);
    for (Category c : categories) {
      for (const std::string& g : Groups(c, q.by, q.scope_institution)) {
        const Measures m = Sum(now, c, q.by, g, q.scope_institution);
        const Measures y = Sum(year_ago, c, q.by, g, q.scope_institution);
        const Measures s = Sum(year_start, c, q.by, g, q.scope_institution);
        const Measures f = Sum(flows, c, q.by, g, q.scope_institution);
        ReportRow row;
        row.category = c;
        row.group = g;
        row.balance_fen = m.balance;
        row.loan_count = m.count;
        row.balance_year_ago_fen = y.balance;
        row.yoy_growth_pct = YoyGrowthPct(m.balance, y.balance);
        row.ytd_increase_fen = m.balance - s.balance;
        row.disbursed_ytd_fen = f.disbursed;
        row.repaid_ytd_fen = f.repaid;
        row.written_off_ytd_fen = f.written_off;
        r.rows.push_back(row);
      }
    }
    return r;
  }

  std::vector<SeriesPoint> ExpectedSeries(const SeriesQuery& q) {
    std::vector<SeriesPoint> points;
    const std::vector<std::string>& groups = Groups(q.category, q.by, q.scope_institution);
    for (Day d : SeriesDates(q.from, q.to, q.step)) {
      const std::vector<Measures>& cells = AsOf(d);
      for (const std::string& g : groups) {
        const Measures m = Sum(cells, q.category, q.by, g, q.scope_institution);
        points.push_back(SeriesPoint{d, g, m.balance, m.count});
      }
    }
    return points;
  }

 private:
  static int64_t Signed(const LoanEvent& e) {
    switch (e.kind) {
      case EventKind::kDisburse:
        return e.amount_fen;
      case EventKind::kRepay:
      case EventKind::kWriteOff:
        return -e.amount_fen;
      case EventKind::kReclassify:
        return 0;
    }
    return 0;
  }

  size_t InstIndex(const std::string& inst) const {
    auto it = std::find(institutions_.begin(), institutions_.end(), inst);
    EXPECT_NE(it, institutions_.end());
    return static_cast<size_t>(it - institutions_.begin());
  }
  size_t ProvIndex(uint8_t province) const {
    auto it = std::find(provinces_.begin(), provinces_.end(), province);
    EXPECT_NE(it, provinces_.end());
    return static_cast<size_t>(it - provinces_.begin());
  }
  size_t Index(size_t c, size_t prov, size_t inst) const {
    return (c * provinces_.size() + prov) * institutions_.size() + inst;
  }
  size_t CellCount() const { return kCategoryCount * provinces_.size() * institutions_.size(); }

  std::string ProvinceLabel(size_t prov) const {
    const uint8_t p = provinces_[prov];
    return std::string{static_cast<char>('0' + p / 10), static_cast<char>('0' + p % 10)};
  }

  bool InScope(size_t inst, const std::optional<std::string>& scope) const {
    return !scope || institutions_[inst] == *scope;
  }

  bool InGroup(size_t prov, size_t inst, GroupBy by, const std::string& group) const {
    switch (by) {
      case GroupBy::kNone:
        return true;
      case GroupBy::kProvince:
        return ProvinceLabel(prov) == group;
      case GroupBy::kInstitution:
        return institutions_[inst] == group;
      case GroupBy::kRegionGroup:  // the model runs under the default rules: no region groups
        return false;
    }
    return false;
  }

  // The groups of a grouped answer: those whose figures change on some day
  // (a group whose day changes all cancel out has nothing to show, at any
  // date, and is not listed). Without grouping there is always one row.
  const std::vector<std::string>& Groups(Category c, GroupBy by,
                                         const std::optional<std::string>& scope) {
    const auto key =
        std::make_tuple(static_cast<int>(c), static_cast<int>(by), scope.value_or("\n"));
    if (auto it = groups_cache_.find(key); it != groups_cache_.end()) return it->second;
    std::vector<std::string>& groups = groups_cache_[key];
    if (by == GroupBy::kNone) {
      groups = {""};
      return groups;
    }
    std::set<std::string> candidates;
    for (size_t prov = 0; prov < provinces_.size(); ++prov) {
      for (size_t inst = 0; inst < institutions_.size(); ++inst) {
        if (InScope(inst, scope))
          candidates.insert(by == GroupBy::kProvince ? ProvinceLabel(prov) : institutions_[inst]);
      }
    }
    for (const std::string& g : candidates) {
      for (const auto& [day, changes] : DayChanges()) {
        const Measures m = Sum(changes, c, by, g, scope);
        if (m.balance != 0 || m.count != 0 || m.disbursed != 0 || m.repaid != 0 ||
            m.written_off != 0) {
          groups.push_back(g);
          break;
        }
      }
    }
    return groups;  // ascending, as the set was
  }

  // Per cell, the change of every figure on each day that has an event:
  // as-of(d) - as-of(d - 1) for balances and counts, and the day's flows.
  const std::map<Day, std::vector<Measures>>& DayChanges() {
    if (day_changes_) return *day_changes_;
    std::set<Day> days;
    for (const auto& [key, history] : loans_) {
      for (const LoanEvent& e : history) days.insert(e.business_date);
    }
    std::map<Day, std::vector<Measures>> out;
    for (Day d : days) {
      std::vector<Measures> change = AsOf(d);  // a copy, turned into the change below
      const std::vector<Measures>& before = AsOf(d - 1);
      const std::vector<Measures> flows = Flows(d, d);
      for (size_t i = 0; i < change.size(); ++i) {
        change[i].balance -= before[i].balance;
        change[i].count -= before[i].count;
        change[i].disbursed = flows[i].disbursed;
        change[i].repaid = flows[i].repaid;
        change[i].written_off = flows[i].written_off;
      }
      out.emplace(d, std::move(change));
    }
    day_changes_ = std::move(out);
    return *day_changes_;
  }

  Measures Sum(const std::vector<Measures>& cells, Category c, GroupBy by, const std::string& group,
               const std::optional<std::string>& scope) const {
    Measures sum;
    for (size_t prov = 0; prov < provinces_.size(); ++prov) {
      for (size_t inst = 0; inst < institutions_.size(); ++inst) {
        if (!InScope(inst, scope) || !InGroup(prov, inst, by, group)) continue;
        const Measures& m = cells[Index(static_cast<size_t>(c), prov, inst)];
        sum.balance += m.balance;
        sum.count += m.count;
        sum.disbursed += m.disbursed;
        sum.repaid += m.repaid;
        sum.written_off += m.written_off;
      }
    }
    return sum;
  }

  // Balances and loan counts as of d: each loan's events dated <= d, its
  // latest attributes classifying its whole balance.
  const std::vector<Measures>& AsOf(Day d) {
    auto cached = cache_.find(d);
    if (cached != cache_.end()) return cached->second;
    std::vector<Measures> cells(CellCount());
    for (const auto& [key, history] : loans_) {
      int64_t balance = 0;
      const LoanAttributes* attrs = nullptr;
      for (const LoanEvent& e : history) {
        if (e.business_date > d) break;  // a loan's dates never decrease
        balance += Signed(e);
        attrs = &e.attributes;
      }
      if (attrs == nullptr) continue;
      const CategoryMask mask = Classify(*attrs);
      const size_t prov = ProvIndex(ProvinceOf(attrs->region_code));
      const size_t inst = InstIndex(key.first);
      for (size_t c = 0; c < kCategoryCount; ++c) {
        if (!(mask & (CategoryMask{1} << c))) continue;
        Measures& m = cells[Index(c, prov, inst)];
        m.balance += balance;
        m.count += balance > 0 ? 1 : 0;
      }
    }
    return cache_.emplace(d, std::move(cells)).first->second;
  }

  // Flows dated from..to, each under the attributes of its own event.
  std::vector<Measures> Flows(Day from, Day to) const {
    std::vector<Measures> cells(CellCount());
    for (const auto& [key, history] : loans_) {
      const size_t inst = InstIndex(key.first);
      for (const LoanEvent& e : history) {
        if (e.business_date < from || e.business_date > to) continue;
        const CategoryMask mask = Classify(e.attributes);
        const size_t prov = ProvIndex(ProvinceOf(e.attributes.region_code));
        for (size_t c = 0; c < kCategoryCount; ++c) {
          if (!(mask & (CategoryMask{1} << c))) continue;
          Measures& m = cells[Index(c, prov, inst)];
          if (e.kind == EventKind::kDisburse) m.disbursed += e.amount_fen;
          if (e.kind == EventKind::kRepay) m.repaid += e.amount_fen;
          if (e.kind == EventKind::kWriteOff) m.written_off += e.amount_fen;
        }
      }
    }
    return cells;
  }

  std::vector<std::string> institutions_;  // sorted
  std::vector<uint8_t> provinces_;         // sorted, those of kRegions
  std::map<std::pair<std::string, std::string>, std::vector<LoanEvent>>
      loans_;                                                        // applied events per loan
  std::optional<std::map<Day, std::vector<Measures>>> day_changes_;  // DayChanges(); reset on Apply
  std::map<std::tuple<int, int, std::string>, std::vector<std::string>>
      groups_cache_;                                      // Groups(); cleared on Apply
  std::unordered_map<Day, std::vector<Measures>> cache_;  // AsOf results; cleared on Apply
};

}  // namespace loanledger::storage::model
