// Planner, phase 2: the calibration loans (portfolio.h).
#include <algorithm>
#include <cmath>

#include "client/gen/portfolio.h"
#include "client/gen/tables.h"
#include "schema/check.h"

namespace loanledger::gen {
namespace {

constexpr int64_t kInclusiveLineCapFen = 1'000'000'000;  // docs/categories.md: 10 million yuan
constexpr int64_t kEnterpriseUnitFen = 1'000'000;        // 10,000 yuan
constexpr int64_t kIndividualUnitFen = 100'000;          // 1,000 yuan

// What a calibration loan of each quantity looks like. Each profile puts
// the loan in exactly one calibrated quantity (and never in Shanghai unless
// the quantity is Shanghai's).
struct Profile {
  double typical_yuan;  // size of one loan
  bool both_dates;      // may be open on both dates (false: short-term only)
  int64_t unit_fen;     // amounts rounded to this
};

Profile ProfileOf(Quantity q) {
  switch (q) {
    case Quantity::kMlt:
      return {30e6, true, kEnterpriseUnitFen};
    case Quantity::kHighTech:
      return {20e6, false, kEnterpriseUnitFen};  // 12-month loans
    case Quantity::kSrdi:
      return {10e6, true, kEnterpriseUnitFen};
    case Quantity::kInclusiveExShanghai:
      return {2e6, true, kIndividualUnitFen};
    case Quantity::kShanghaiInclusive:
      return {2e6, true, kIndividualUnitFen};
    case Quantity::kShanghaiTech:
      return {15e6, true, kEnterpriseUnitFen};
    case Quantity::kShanghaiGreen:
      return {40e6, true, kEnterpriseUnitFen};
  }
  return {1e6, true, kEnterpriseUnitFen};
}

// A weekday in [lo, hi] (a weekend day when the range has no weekday after it).
Day DayWithin(Day lo, Day hi, Rng& rng) {
  const Day day = static_cast<Day>(rng.Between(lo, hi));
  const Day weekday = NextWeekday(day);
  return weekday <= hi ? weekday : day;
}

uint16_t Pick(std::initializer_list<uint16_t> terms, Rng& rng) {
  return *(terms.begin() + rng.Below(terms.size()));
}

// Attributes, province and bank of a calibration loan. `old_loan`: repaid
// between the two dates (a one-year term where the profile allows it).
void ProfileAttributes(Quantity q, int64_t amount_fen, bool both_dates, bool old_loan,
                       LoanAttributes& a, uint32_t& institution, Rng& rng) {
  a = LoanAttributes{};
  bool shanghai = false;
  Book book = Book::kCorporate;
  IndustryFamily family = IndustryFamily::kMfgGeneral;
  a.borrower_type = BorrowerType::kEnterprise;
  a.enterprise_size = EnterpriseSize::kLarge;
  switch (q) {
    case Quantity::kMlt:  // large manufacturer, not high-tech, medium/long term
      a.term_months = Pick({36, 60}, rng);
      break;
    case Quantity::kHighTech:  // large high-tech manufacturer, one-year working capital
      family = IndustryFamily::kMfgHighTech;
      a.term_months = 12;
      break;
    case Quantity::kSrdi:  // medium SRDI firm in software and research
      family = IndustryFamily::kCorporateTech;
      a.enterprise_size = EnterpriseSize::kMedium;
      a.srdi = true;
      a.tech_enterprise = rng.Bernoulli(.6);
      a.term_months = Pick({24, 36}, rng);
      break;
    case Quantity::kShanghaiInclusive:
      shanghai = true;
      [[fallthrough]];
    case Quantity::kInclusiveExShanghai:  // an individual business, shop or farm
      family = IndustryFamily::kSmallBusiness;
      book = Book::kSme;
      a.borrower_type = BorrowerType::kIndividualBusiness;
      a.enterprise_size = EnterpriseSize::kNa;
      // Open on both dates needs more than a year; an old loan is a one-year one.
      a.term_months = both_dates ? Pick({24, 36}, rng) : (old_loan ? 12 : Pick({12, 24, 36}, rng));
      break;
    case Quantity::kShanghaiTech:  // technology firm in Shanghai
      shanghai = true;
      family = IndustryFamily::kCorporateTech;
      a.enterprise_size = rng.Bernoulli(.7) ? EnterpriseSize::kMedium : EnterpriseSize::kLarge;
      a.tech_enterprise = true;
      a.term_months = Pick({24, 36, 60}, rng);
      break;
    case Quantity::kShanghaiGreen:  // renewable, rail or environment project in Shanghai
      shanghai = true;
      family = IndustryFamily::kCorporateGreen;
      a.green = true;
      a.term_months = Pick({36, 60, 120}, rng);
      break;
  }
  const IndustryClass& ind = DrawIndustry(family, rng);
  a.industry_code = std::string(ind.code);
  a.digital_economy = rng.Bernoulli(ind.digital);
  a.elderly_care = rng.Bernoulli(ind.elderly);
  const uint8_t province = DrawProvince(book, shanghai, rng);
  a.region_code = DrawRegionCode(province, rng);
  institution = DrawInstitution(book, province, rng);
  if (a.borrower_type == BorrowerType::kIndividualBusiness) {
    LL_CHECK(amount_fen <= kInclusiveLineCapFen);
    const auto line = static_cast<int64_t>(static_cast<double>(amount_fen) * rng.Uniform(1, 1.5));
    a.credit_line_fen = std::clamp(line / kIndividualUnitFen * kIndividualUnitFen, amount_fen,
                                   kInclusiveLineCapFen);
  } else {
    const auto line = static_cast<int64_t>(static_cast<double>(amount_fen) * rng.Uniform(1.5, 5));
    a.credit_line_fen = std::max(line / kEnterpriseUnitFen * kEnterpriseUnitFen, amount_fen);
  }
}

}  // namespace

void Planner::StartCalibration() {
  calibrating_ = true;
  for (size_t i = 0; i < kQuantityCount; ++i) {
    const auto q = static_cast<Quantity>(i);
    const int64_t gap0 = targets_.fen[0][i] - reached_[0][i];
    const int64_t gap1 = targets_.fen[1][i] - reached_[1][i];
    LL_CHECK(gap0 >= 0 && gap1 >= 0);  // the guard keeps random loans under the caps
    const Profile p = ProfileOf(q);
    const int64_t both = p.both_dates ? std::min(gap0, gap1) : 0;
    const auto typical_fen = static_cast<int64_t>(p.typical_yuan * 100);
    auto add = [&](Shape shape, int64_t amount) {
      if (amount <= 0) return;
      const auto loans = static_cast<uint64_t>((amount + typical_fen - 1) / typical_fen);
      tasks_.push_back({q, shape, amount, loans});
    };
    add(Shape::kBoth, both);
    add(Shape::kNew, gap1 - both);
    add(Shape::kOld, gap0 - both);
  }
}

bool Planner::NextCalibration(PlannedLoan& loan) {
  while (task_ < tasks_.size() && tasks_[task_].remaining_fen == 0) ++task_;
  if (task_ == tasks_.size()) return false;
  CalibrationTask& t = tasks_[task_];
  LL_CHECK(t.loans_left >= 1);
  const int64_t unit = ProfileOf(t.quantity).unit_fen;
  int64_t amount = t.remaining_fen;
  if (t.loans_left > 1) {
    // Around an equal share of what is left, in round amounts; the last
    // loan takes the exact remainder.
    const double share = static_cast<double>(t.remaining_fen) / static_cast<double>(t.loans_left);
    amount = static_cast<int64_t>(share * rng_.Uniform(.8, 1.2)) / unit * unit;
    const int64_t keep = static_cast<int64_t>(t.loans_left - 1);  // at least 1 fen each
    amount = std::clamp<int64_t>(amount, 1, t.remaining_fen - keep);
  }
  t.remaining_fen -= amount;
  --t.loans_left;
  BuildCalibrationLoan(t, amount, loan);
  return true;
}

void Planner::BuildCalibrationLoan(const CalibrationTask& t, int64_t amount, PlannedLoan& loan) {
  LoanAttributes& a = loan.attributes[0];
  ProfileAttributes(t.quantity, amount, t.shape == Shape::kBoth, t.shape == Shape::kOld, a,
                    loan.institution, rng_);
  loan.attributes[1] = a;
  loan.events.clear();
  const uint16_t term = a.term_months;
  Day disburse = 0;
  Day repay = 0;  // 0: none in the window
  switch (t.shape) {
    case Shape::kBoth:  // open from before 2023-09-30 to after 2024-09-30
      disburse = DayWithin(kYearAgoDate - 270, kYearAgoDate, rng_);
      break;
    case Shape::kNew:  // disbursed after 2023-09-30, open on 2024-09-30
      disburse = DayWithin(kYearAgoDate + 1, kReferenceDay, rng_);
      break;
    case Shape::kOld:  // open on 2023-09-30, repaid by 2024-09-30
      if (term <= 12) {
        disburse = DayWithin(AddMonths(kYearAgoDate, -11), kYearAgoDate, rng_);
        repay = AddMonths(disburse, term);  // at maturity
      } else {
        disburse = DayWithin(kYearAgoDate - 540, kYearAgoDate, rng_);
        repay = DayWithin(kYearAgoDate + 1, kReferenceDay, rng_);  // prepaid
      }
      break;
  }
  if (repay == 0) {
    const Day maturity = AddMonths(disburse, term);
    LL_CHECK(maturity > kReferenceDay);
    if (maturity <= kHistoryLast) repay = maturity;
  }
  LL_CHECK(repay == 0 ||
           (repay > kYearAgoDate && (t.shape == Shape::kOld) == (repay <= kReferenceDay)));
  loan.events.push_back({disburse, EventKind::kDisburse, 0, amount});
  if (repay != 0) loan.events.push_back({repay, EventKind::kRepay, 0, amount});
  loan.outcome = LoanOutcome{};
  for (const PlannedEvent& e : loan.events) {
    const Day dates[2] = {kYearAgoDate, kReferenceDay};
    for (size_t d = 0; d < 2; ++d) {
      if (e.business_date > dates[d]) continue;
      loan.outcome.balance_fen[d] += e.kind == EventKind::kDisburse ? e.amount_fen : -e.amount_fen;
      loan.outcome.version[d] = 0;
    }
  }
  std::array<std::array<int64_t, kQuantityCount>, 2> contribution{};
  Contribute(loan.attributes, loan.outcome, contribution);
  const auto qi = static_cast<size_t>(t.quantity);
  for (size_t d = 0; d < 2; ++d) {
    for (size_t q = 0; q < kQuantityCount; ++q) {
      LL_CHECK(q == qi || contribution[d][q] == 0);  // exactly one quantity moves
      reached_[d][q] += contribution[d][q];
    }
  }
  ++quantities_[qi].calibration_loans;
  loan.number = ++loans_;
  loan.calibration = true;
  Count(loan);
}

void Planner::CheckTargetsMet() const {
  for (size_t d = 0; d < 2; ++d) {
    for (size_t q = 0; q < kQuantityCount; ++q) LL_CHECK(reached_[d][q] == targets_.fen[d][q]);
  }
}

}  // namespace loanledger::gen
