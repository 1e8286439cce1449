#include "client/gen/loan_model.h"

#include <algorithm>
#include <cmath>

#include "schema/check.h"
#include "schema/limits.h"

namespace loanledger::gen {
namespace {

// A money flow before truncation by the history window.
struct Flow {
  Day date;
  EventKind kind;
  int64_t amount_fen;  // 0 for RECLASSIFY
};

void AddTranches(const LoanDraw& d, std::vector<Flow>& flows) {
  const int64_t n = d.tranches < 1 ? 1 : d.tranches;
  // Tranches in round hundreds of yuan; the first takes the remainder.
  const int64_t each = d.principal_fen / n / 10000 * 10000;
  int64_t first = d.principal_fen - each * (n - 1);
  if (each == 0) first = d.principal_fen;
  flows.push_back({d.origination, EventKind::kDisburse, first});
  for (int64_t i = 1; i < n && each > 0; ++i) {
    flows.push_back(
        {AddMonths(d.origination, static_cast<int>(2 * i)), EventKind::kDisburse, each});
  }
}

// Dates a whole number of months after one start date, without converting
// the start again for every instalment.
class MonthStepper {
 public:
  explicit MonthStepper(Day start) : start_(CivilFromDays(start)) {}
  Day After(int months) const {
    CivilDate c = start_;
    const int total = static_cast<int>(c.month) - 1 + months;
    const int year_shift = total >= 0 ? total / 12 : -((11 - total) / 12);
    c.year += year_shift;
    c.month = static_cast<uint32_t>(total - year_shift * 12 + 1);
    c.day = std::min(c.day, DaysInMonth(c.year, c.month));
    return DaysFromCivil(c);
  }

 private:
  CivilDate start_;
};

Day AtFraction(Day from, Day to, double fraction) {
  return from + static_cast<Day>(std::floor(fraction * (to - from)));
}

// Instalments that fall before the history window only matter through the
// balance they leave; this many months of margin keep the collapsed ones
// safely before kHistoryFirst.
constexpr int kCollapseMarginMonths = 2;

int MonthsBetween(Day from, Day to) {
  const CivilDate a = CivilFromDays(from);
  const CivilDate b = CivilFromDays(to);
  return (b.year - a.year) * 12 + static_cast<int>(b.month) - static_cast<int>(a.month);
}

// Scheduled principal instalments (dates and amounts summing to the
// principal). Instalments long before kHistoryFirst are collapsed into one
// flow (they only reduce the opening balance) and none after kHistoryLast
// is produced (the window drops them anyway).
void AddSchedule(const LoanDraw& d, std::vector<Flow>& flows) {
  const int term = d.attributes.term_months;
  const MonthStepper months(d.origination);
  const Day maturity = months.After(term);
  const int64_t p = d.principal_fen;
  if (d.repayment == Repayment::kBullet || term - d.grace_months < 2) {
    flows.push_back({maturity, EventKind::kRepay, p});
    return;
  }
  const int period = d.repayment == Repayment::kAnnuity ? 1 : std::max<int>(1, d.period_months);
  const int n = std::max(1, (term - d.grace_months) / period);
  // Outstanding after k instalments: annuity (q^n - q^k) / (q^n - 1), else
  // linear. Powers by repeated multiplication: deterministic everywhere.
  const bool annuity = d.repayment == Repayment::kAnnuity && d.annual_rate > 0;
  const double q = 1.0 + d.annual_rate / 12.0;
  double qn = 1.0;
  for (int k = 0; k < n; ++k) qn *= q;
  auto outstanding_after = [&](int k, double qk, int64_t cap) -> int64_t {
    if (k >= n) return 0;
    const double share = annuity ? (qn - qk) / (qn - 1.0) : static_cast<double>(n - k) / n;
    return std::clamp<int64_t>(std::llround(static_cast<double>(p) * share), 0, cap);
  };
  // Collapse only before the window and before a prepayment or default
  // (ApplyEnd cuts the flows there).
  Day horizon = kHistoryFirst;
  const double stop_at = d.prepay_at >= 0 ? d.prepay_at : d.default_at;
  if (stop_at >= 0) horizon = std::min(horizon, AtFraction(d.origination, maturity, stop_at));
  const int before_window =
      (MonthsBetween(d.origination, horizon) - d.grace_months) / period - kCollapseMarginMonths;
  const int skip = std::clamp(before_window, 0, n - 1);
  int64_t previous = p;
  double qk = 1.0;
  for (int k = 1; k <= skip; ++k) qk *= q;
  if (skip > 0) {
    const int64_t outstanding = outstanding_after(skip, qk, previous);
    const Day date = months.After(d.grace_months + skip * period);
    LL_CHECK(date < horizon);
    if (previous > outstanding) flows.push_back({date, EventKind::kRepay, previous - outstanding});
    previous = outstanding;
  }
  for (int k = skip + 1; k <= n; ++k) {
    qk *= q;
    const int64_t outstanding = outstanding_after(k, qk, previous);
    const Day date = k < n ? months.After(d.grace_months + k * period) : maturity;
    if (date > kHistoryLast) break;
    if (previous > outstanding) flows.push_back({date, EventKind::kRepay, previous - outstanding});
    previous = outstanding;
  }
}

// Applies prepayment or default: drops flows after the stop and adds the
// final ones. Flows are in date order (disbursements first within a day).
void ApplyEnd(const LoanDraw& d, std::vector<Flow>& flows) {
  const Day maturity = AddMonths(d.origination, d.attributes.term_months);
  const bool prepay = d.prepay_at >= 0;
  const bool defaults = d.default_at >= 0 && !prepay;
  if (!prepay && !defaults) return;
  const Day stop = AtFraction(d.origination, maturity, prepay ? d.prepay_at : d.default_at);
  int64_t balance = 0;
  size_t kept = 0;
  for (; kept < flows.size() && flows[kept].date <= stop; ++kept) {
    balance +=
        flows[kept].kind == EventKind::kDisburse ? flows[kept].amount_fen : -flows[kept].amount_fen;
  }
  flows.resize(kept);
  if (balance <= 0) return;
  if (prepay) {
    flows.push_back({stop, EventKind::kRepay, balance});
    return;
  }
  const int64_t recovered =
      static_cast<int64_t>(std::floor(balance * d.recovery_share / 100.0)) * 100;
  if (recovered > 0 && recovered < balance) {
    flows.push_back({AddMonths(stop, d.recovery_months), EventKind::kRepay, recovered});
    balance -= recovered;
  }
  flows.push_back({AddMonths(stop, std::max<int>(d.write_off_months, d.recovery_months)),
                   EventKind::kWriteOff, balance});
}

// Sums flows before kHistoryFirst into an opening DISBURSE and keeps the
// rest up to kHistoryLast. Returns false when nothing is left.
bool ClipToWindow(const std::vector<Flow>& flows, std::vector<Flow>& out) {
  out.clear();
  int64_t opening = 0;
  size_t i = 0;
  for (; i < flows.size() && flows[i].date < kHistoryFirst; ++i) {
    opening += flows[i].kind == EventKind::kDisburse ? flows[i].amount_fen : -flows[i].amount_fen;
  }
  LL_CHECK(opening >= 0);
  if (opening > 0) out.push_back({kHistoryFirst, EventKind::kDisburse, opening});
  if (opening == 0) {
    // A loan repaid before the window is not in the history; one whose next
    // flow is a disbursement (a later tranche) starts with it.
    if (i == flows.size() || flows[i].kind != EventKind::kDisburse) return false;
  }
  for (; i < flows.size() && flows[i].date <= kHistoryLast; ++i) out.push_back(flows[i]);
  return !out.empty();
}

// Where the RECLASSIFY goes: while the loan is open, at reclassify_at of its
// visible life, after the events of that day but never after the event that
// closes the loan. Returns the insertion index and sets its date.
size_t ReclassifyPosition(const LoanDraw& d, const std::vector<Flow>& events, Day& date) {
  int64_t balance = 0;
  Day close = kHistoryLast;
  for (const Flow& f : events) {
    balance += f.kind == EventKind::kDisburse ? f.amount_fen : -f.amount_fen;
    if (balance == 0) {
      close = f.date;
      break;
    }
  }
  date = AtFraction(events.front().date, close, d.reclassify_at);
  size_t pos = 0;
  balance = 0;
  while (pos < events.size() && events[pos].date <= date) {
    balance +=
        events[pos].kind == EventKind::kDisburse ? events[pos].amount_fen : -events[pos].amount_fen;
    ++pos;
  }
  if (balance == 0) --pos;  // would follow the closing event: go just before it
  LL_CHECK(pos >= 1);       // the first event is a DISBURSE, the loan is open after it
  if (pos < events.size()) date = std::min(date, events[pos].date);
  return pos;
}

void Record(const Flow& f, uint8_t version, std::vector<PlannedEvent>& events, LoanOutcome& outcome,
            int64_t& balance) {
  if (f.kind == EventKind::kDisburse) {
    balance += f.amount_fen;
  } else if (f.kind != EventKind::kReclassify) {
    balance -= f.amount_fen;
  }
  LL_CHECK(balance >= 0);                   // no overdraw
  LL_CHECK(balance <= kLoanBalanceFenMax);  // docs/data.md: limit per loan
  LL_CHECK((f.kind == EventKind::kReclassify) == (f.amount_fen == 0));
  LL_CHECK(f.amount_fen >= 0 && f.amount_fen <= kAmountFenMax);
  LL_CHECK(events.empty() || events.back().business_date <= f.date);
  events.push_back({f.date, f.kind, version, f.amount_fen});
  const Day dates[2] = {kYearAgoDate, kReferenceDay};
  for (int i = 0; i < 2; ++i) {
    if (f.date <= dates[i]) {
      outcome.balance_fen[i] = balance;
      outcome.version[i] = static_cast<int8_t>(version);
    }
  }
}

}  // namespace

bool BuildEvents(const LoanDraw& draw, std::vector<PlannedEvent>& events, LoanOutcome& outcome) {
  LL_CHECK(draw.principal_fen > 0);
  LL_CHECK(draw.attributes.term_months >= 1);
  // Scratch space reused across calls (the generator is single-threaded per
  // instance; thread_local keeps separate instances on threads apart).
  thread_local std::vector<Flow> flows;
  thread_local std::vector<Flow> visible;
  flows.clear();
  AddTranches(draw, flows);
  AddSchedule(draw, flows);
  // Disbursements before repayments on the same day, else schedule order.
  // Insertion sort: stable, no allocation, and the flows are nearly sorted.
  auto before = [](const Flow& a, const Flow& b) {
    if (a.date != b.date) return a.date < b.date;
    return a.kind == EventKind::kDisburse && b.kind != EventKind::kDisburse;
  };
  for (size_t i = 1; i < flows.size(); ++i) {
    const Flow f = flows[i];
    size_t j = i;
    for (; j > 0 && before(f, flows[j - 1]); --j) flows[j] = flows[j - 1];
    flows[j] = f;
  }
  ApplyEnd(draw, flows);
  events.clear();
  outcome = LoanOutcome{};
  if (!ClipToWindow(flows, visible)) return false;
  LL_CHECK(visible.front().kind == EventKind::kDisburse);
  size_t reclassify_pos = visible.size() + 1;
  Day reclassify_date = 0;
  if (draw.reclassified) reclassify_pos = ReclassifyPosition(draw, visible, reclassify_date);
  int64_t balance = 0;
  uint8_t version = 0;
  for (size_t i = 0; i <= visible.size(); ++i) {
    if (i == reclassify_pos) {
      version = 1;
      Record({reclassify_date, EventKind::kReclassify, 0}, version, events, outcome, balance);
    }
    if (i < visible.size()) Record(visible[i], version, events, outcome, balance);
  }
  return true;
}

Day AddMonths(Day day, int months) { return MonthStepper(day).After(months); }

Day NextWeekday(Day day) {
  const int weekday = ((day % 7) + 10) % 7;  // 0 = Monday; 1970-01-01 was a Thursday (3)
  if (weekday == 5) return day + 2;
  if (weekday == 6) return day + 1;
  return day;
}

}  // namespace loanledger::gen
