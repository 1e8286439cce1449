// DrawLoan: the random choices of one loan of a cell (cells.h).
#include <algorithm>
#include <cmath>

#include "client/gen/cells.h"
#include "schema/category.h"
#include "schema/check.h"

namespace loanledger::gen {
namespace {

constexpr int64_t kFenPerYuan = 100;
constexpr int64_t kInclusiveLineCapFen = 1'000'000'000;  // docs/categories.md: 10 million yuan
constexpr int64_t kLineStepFen = 1'000'000;              // credit lines in 10,000 yuan steps

struct TermWeight {
  uint16_t months;
  double weight;
};

uint16_t DrawTerm(std::span<const TermWeight> table, Rng& rng) {
  double w[8];
  LL_CHECK(table.size() <= 8);
  for (size_t i = 0; i < table.size(); ++i) w[i] = table[i].weight;
  return table[DrawWeighted({w, table.size()}, rng)].months;
}

bool IsLargeOrMedium(EnterpriseSize s) {
  return s == EnterpriseSize::kLarge || s == EnterpriseSize::kMedium;
}

uint16_t TermOf(const CellSpec& c, Rng& rng) {
  static constexpr TermWeight kShort[] = {{6, .15}, {12, .85}};
  static constexpr TermWeight kMltLarge[] = {{24, .1}, {36, .25}, {60, .35}, {84, .15}, {120, .15}};
  static constexpr TermWeight kMltMedium[] = {{24, .2}, {36, .35}, {60, .35}, {84, .1}};
  static constexpr TermWeight kMltSmall[] = {{24, .35}, {36, .5}, {60, .15}};
  static constexpr TermWeight kOtherLarge[] = {{12, .15}, {36, .2},   {60, .2},
                                               {120, .2}, {180, .15}, {240, .1}};
  static constexpr TermWeight kOtherMedium[] = {{6, .1},  {12, .35}, {24, .15},
                                                {36, .2}, {60, .15}, {120, .05}};
  static constexpr TermWeight kOtherSmall[] = {{6, .1}, {12, .4}, {24, .15}, {36, .3}, {60, .05}};
  static constexpr TermWeight kIndividualBusiness[] = {{12, .45}, {24, .2}, {36, .35}};
  static constexpr TermWeight kOwnerMlt[] = {{24, .4}, {36, .45}, {60, .15}};
  static constexpr TermWeight kOwnerShort[] = {{6, .1}, {12, .9}};
  static constexpr TermWeight kMortgage[] = {{120, .1}, {180, .1}, {240, .3}, {300, .2}, {360, .3}};
  static constexpr TermWeight kConsumer[] = {{12, .2}, {24, .3}, {36, .35}, {60, .15}};
  switch (c.family) {
    case Family::kManufacturingEnterprise:
      if (!c.mlt) return DrawTerm(kShort, rng);
      if (c.size == EnterpriseSize::kLarge) return DrawTerm(kMltLarge, rng);
      if (c.size == EnterpriseSize::kMedium) return DrawTerm(kMltMedium, rng);
      return DrawTerm(kMltSmall, rng);
    case Family::kOtherEnterprise:
      if (c.size == EnterpriseSize::kLarge) return DrawTerm(kOtherLarge, rng);
      if (c.size == EnterpriseSize::kMedium) return DrawTerm(kOtherMedium, rng);
      return DrawTerm(kOtherSmall, rng);
    case Family::kIndividualBusiness:
      return DrawTerm(kIndividualBusiness, rng);
    case Family::kSmallMicroOwner:
      return c.mlt ? DrawTerm(kOwnerMlt, rng) : DrawTerm(kOwnerShort, rng);
    case Family::kMortgage:
      return DrawTerm(kMortgage, rng);
    case Family::kConsumer:
      return DrawTerm(kConsumer, rng);
  }
  return 12;
}

// Median principal and log-space spread by family, size and credit line.
struct PrincipalLaw {
  double median_yuan;
  double sigma;
  double max_yuan;
};

PrincipalLaw PrincipalLawOf(const CellSpec& c) {
  const bool small = c.size == EnterpriseSize::kSmall;
  switch (c.family) {
    case Family::kManufacturingEnterprise:
      if (c.inclusive_line)
        return small ? PrincipalLaw{5e6, .5, 1e7} : PrincipalLaw{2.6e6, .6, 1e7};
      if (c.size == EnterpriseSize::kLarge) return {60e6, 1.0, 2e9};
      if (c.size == EnterpriseSize::kMedium) return {15e6, .9, 5e8};
      return small ? PrincipalLaw{10e6, .7, 2e8} : PrincipalLaw{6e6, .6, 1e8};
    case Family::kOtherEnterprise:
      if (c.inclusive_line)
        return small ? PrincipalLaw{4.5e6, .5, 1e7} : PrincipalLaw{2.4e6, .6, 1e7};
      if (c.size == EnterpriseSize::kLarge) return {120e6, 1.0, 2e9};
      if (c.size == EnterpriseSize::kMedium) return {20e6, 1.0, 5e8};
      return small ? PrincipalLaw{10e6, .7, 2e8} : PrincipalLaw{6e6, .6, 1e8};
    case Family::kIndividualBusiness:
      return c.inclusive_line ? PrincipalLaw{2.6e6, .7, 1e7} : PrincipalLaw{4e6, .6, 5e7};
    case Family::kSmallMicroOwner:
      return c.inclusive_line ? PrincipalLaw{3e6, .6, 1e7} : PrincipalLaw{5e6, .6, 5e7};
    case Family::kMortgage:
      return {3.8e6, .45, 3e7};
    case Family::kConsumer:
      return {.9e6, .5, 5e6};
  }
  return {1e6, 1, 1e7};
}

int64_t RoundDownLine(int64_t fen) { return fen / kLineStepFen * kLineStepFen; }

// The borrower's total credit line at the bank, consistent with the cell:
// at most 10 million yuan for an inclusive line, above it otherwise (for
// small borrowers, where it decides the category).
int64_t CreditLineOf(const CellSpec& c, int64_t principal_fen, Rng& rng) {
  const auto p = static_cast<double>(principal_fen);
  if (c.family == Family::kMortgage) return principal_fen;
  if (c.family == Family::kConsumer)
    return std::max(principal_fen, RoundDownLine(static_cast<int64_t>(p * rng.Uniform(1, 2))));
  if (c.inclusive_line) {
    const int64_t line = RoundDownLine(static_cast<int64_t>(p * rng.Uniform(1, 2)));
    return std::clamp(line, principal_fen, kInclusiveLineCapFen);
  }
  const bool big = c.size == EnterpriseSize::kLarge || c.size == EnterpriseSize::kMedium;
  const int64_t line =
      RoundDownLine(static_cast<int64_t>(p * rng.Uniform(big ? 1.5 : 1.2, big ? 6 : 3)));
  if (big) return std::max(line, principal_fen);
  const int64_t floor_fen =
      kInclusiveLineCapFen +
      RoundDownLine(static_cast<int64_t>(rng.Uniform(5e5, 3e7) * kFenPerYuan));
  return std::max({line, principal_fen, floor_fen});
}

IndustryFamily IndustryFamilyOf(const CellSpec& c, Rng& rng) {
  switch (c.family) {
    case Family::kManufacturingEnterprise: {
      const bool green = c.flags_fixed ? c.green : rng.Bernoulli(.12);
      if (c.high_tech)
        return green ? IndustryFamily::kMfgHighTechGreen : IndustryFamily::kMfgHighTech;
      return green ? IndustryFamily::kMfgGreen : IndustryFamily::kMfgGeneral;
    }
    case Family::kOtherEnterprise:
      if (c.green) return IndustryFamily::kCorporateGreen;
      if (c.tech) return IndustryFamily::kCorporateTech;
      return IsLargeOrMedium(c.size) ? IndustryFamily::kCorporateGeneral
                                     : IndustryFamily::kSmallBusiness;
    case Family::kSmallMicroOwner:
      return c.manufacturing ? IndustryFamily::kMfgGeneral : IndustryFamily::kSmallBusiness;
    default:
      return IndustryFamily::kSmallBusiness;
  }
}

void DrawAttributes(const CellSpec& c, uint8_t province, LoanDraw& d, Rng& rng) {
  LoanAttributes& a = d.attributes;
  a.region_code = DrawRegionCode(province, rng);
  a.term_months = TermOf(c, rng);
  a.srdi = c.srdi;
  switch (c.family) {
    case Family::kManufacturingEnterprise:
    case Family::kOtherEnterprise:
      a.borrower_type = BorrowerType::kEnterprise;
      break;
    case Family::kIndividualBusiness:
      a.borrower_type = BorrowerType::kIndividualBusiness;
      break;
    case Family::kSmallMicroOwner:
      a.borrower_type = BorrowerType::kSmallMicroOwner;
      break;
    case Family::kMortgage:
    case Family::kConsumer:
      a.borrower_type = BorrowerType::kIndividual;
      break;
  }
  a.enterprise_size = a.borrower_type == BorrowerType::kEnterprise ? c.size : EnterpriseSize::kNa;
  if (a.borrower_type == BorrowerType::kIndividual) {
    a.industry_code.clear();  // household loans carry no industry (docs/data.md)
    a.green =
        !c.flags_fixed && c.family == Family::kConsumer && rng.Bernoulli(.04);  // NEV car loans
    return;
  }
  const IndustryClass& ind = DrawIndustry(IndustryFamilyOf(c, rng), rng);
  a.industry_code = std::string(ind.code);
  const bool enterprise = a.borrower_type == BorrowerType::kEnterprise;
  if (c.flags_fixed) {
    a.tech_enterprise = c.tech;
    a.green = c.green;
  } else {
    a.tech_enterprise = enterprise && rng.Bernoulli(c.srdi ? std::max(ind.tech, .6) : ind.tech);
    a.green = rng.Bernoulli(ind.green);
  }
  a.digital_economy = rng.Bernoulli(ind.digital);
  a.elderly_care = rng.Bernoulli(ind.elderly);
}

void DrawRepayment(const CellSpec& c, LoanDraw& d, Rng& rng) {
  const uint16_t term = d.attributes.term_months;
  const bool big = IsLargeOrMedium(c.size) && (c.family == Family::kManufacturingEnterprise ||
                                               c.family == Family::kOtherEnterprise);
  if (c.family == Family::kMortgage || c.family == Family::kConsumer) {
    d.repayment = Repayment::kAnnuity;
    d.annual_rate = c.family == Family::kMortgage ? rng.Uniform(.036, .049) : rng.Uniform(.04, .09);
    return;
  }
  const double u = rng.Uniform();
  if (term <= 12) {
    d.repayment = u < .85 || term < 6 ? Repayment::kBullet : Repayment::kEqualPrincipal;
    d.period_months = 3;
    return;
  }
  if (big) {
    d.repayment = u < .3 ? Repayment::kBullet : Repayment::kEqualPrincipal;
    d.period_months = u < .75 ? 6 : 3;
    d.grace_months = static_cast<uint8_t>(std::min<int64_t>(rng.Between(0, 24), term / 3));
    if (term >= 36 && d.repayment == Repayment::kEqualPrincipal && rng.Bernoulli(.3)) {
      d.tranches = static_cast<uint8_t>(rng.Between(2, 3));
      d.grace_months =
          std::max<uint8_t>(d.grace_months, static_cast<uint8_t>(2 * (d.tranches - 1)));
    }
    return;
  }
  // Small borrowers' medium-term loans: monthly annuity (25 %), interest
  // only with the principal at maturity (35 %), or equal principal every
  // quarter (40 %).
  d.repayment =
      u < .25 ? Repayment::kAnnuity : (u < .6 ? Repayment::kBullet : Repayment::kEqualPrincipal);
  d.period_months = 3;
  d.annual_rate = rng.Uniform(.035, .06);
}

void DrawFate(const CellSpec& c, LoanDraw& d, Rng& rng) {
  double default_p = .03;
  double prepay_p = .10;
  switch (c.family) {
    case Family::kManufacturingEnterprise:
    case Family::kOtherEnterprise: {
      constexpr double kDefault[4] = {.004, .01, .025, .035};
      default_p = kDefault[c.size == EnterpriseSize::kLarge    ? 0
                           : c.size == EnterpriseSize::kMedium ? 1
                           : c.size == EnterpriseSize::kSmall  ? 2
                                                               : 3];
      prepay_p = .08;
      break;
    }
    case Family::kMortgage:
      default_p = .006;
      break;
    case Family::kConsumer:
      prepay_p = .12;
      break;
    default:
      break;
  }
  if (rng.Bernoulli(prepay_p)) {
    d.prepay_at = rng.Uniform(.1, .9);
  } else if (rng.Bernoulli(default_p)) {
    d.default_at = rng.Uniform(.15, .85);
    d.recovery_share = rng.Bernoulli(.4) ? rng.Uniform(.1, .5) : 0;
    d.recovery_months = static_cast<uint8_t>(rng.Between(3, 9));
    d.write_off_months = static_cast<uint8_t>(rng.Between(9, 24));
  }
}

// Origination: exponential intensity growing by `growth` a year over the
// window in which a loan of this term can still be open on 2022-01-01.
Day DrawOrigination(double growth, uint16_t term, Rng& rng) {
  const Day start = AddMonths(kHistoryFirst, -static_cast<int>(term));
  const double width_years = (kHistoryLast - start) / 365.25;
  const double r = DetLn(1.0 + growth);
  const double u = rng.Uniform();
  double t = u * width_years;
  if (std::fabs(r) > 1e-9) t = DetLn(1.0 + u * (DetExp(r * width_years) - 1.0)) / r;
  const Day day = start + static_cast<Day>(std::floor(t * 365.25));
  const Day weekday = NextWeekday(std::min(day, kHistoryLast));
  return weekday <= kHistoryLast ? weekday : day;
}

// A RECLASSIFY: mostly data corrections and credit-line revisions, some
// certifications (SRDI, technology, green) and size upgrades that move the
// loan between categories on that date.
void DrawReclassification(const CellSpec& c, LoanDraw& d, Rng& rng) {
  const bool enterprise = d.attributes.borrower_type == BorrowerType::kEnterprise;
  const bool individual = d.attributes.borrower_type == BorrowerType::kIndividual;
  if (individual || !rng.Bernoulli(enterprise ? .04 : .02)) return;
  d.reclassified = true;
  d.reclassify_at = rng.Uniform(.05, .95);
  LoanAttributes& before = d.attributes;
  LoanAttributes& after = d.attributes_after;
  after = before;
  const double u = enterprise ? rng.Uniform() : 0;
  const std::string& code = before.industry_code;
  const std::string coarse = code.substr(0, 4);
  if (u >= .35 && u < .60 && code.size() == 5 &&
      IsHighTechManufacturing(coarse) == IsHighTechManufacturing(code)) {
    before.industry_code = coarse;  // reported at group level first, refined later
    return;
  }
  if (u >= .60 && u < .70 && !before.digital_economy) {
    after.digital_economy = true;
    return;
  }
  if (u >= .70 && u < .80 && !before.srdi && c.size != EnterpriseSize::kLarge) {
    after.srdi = true;
    return;
  }
  if (u >= .80 && u < .85 && c.size == EnterpriseSize::kSmall) {
    after.enterprise_size = EnterpriseSize::kMedium;
    return;
  }
  if (u >= .85 && u < .95 && !before.tech_enterprise) {
    after.tech_enterprise = true;
    return;
  }
  if (u >= .95 && !before.green) {
    after.green = true;
    return;
  }
  // Credit-line revision on the same side of the inclusive cap.
  const auto line = static_cast<double>(before.credit_line_fen);
  int64_t revised = RoundDownLine(static_cast<int64_t>(line * rng.Uniform(.8, 1.4)));
  if (c.inclusive_line) {
    revised = std::clamp(revised, d.principal_fen, kInclusiveLineCapFen);
  } else if (!IsLargeOrMedium(c.size) || !enterprise) {
    revised = std::max(revised, kInclusiveLineCapFen + kLineStepFen);
  }
  after.credit_line_fen = std::max<int64_t>(revised, 0);
}

}  // namespace

LoanDraw DrawLoan(const CellSpec& c, Rng& rng) {
  LoanDraw d;
  const Book book = BookOf(c);
  const uint8_t province = DrawProvince(book, c.shanghai, rng);
  d.institution = DrawInstitution(book, province, rng);
  DrawAttributes(c, province, d, rng);
  const PrincipalLaw law = PrincipalLawOf(c);
  d.principal_fen =
      RoundPrincipalFen(std::min(rng.LogNormal(law.median_yuan, law.sigma), law.max_yuan));
  d.attributes.credit_line_fen = CreditLineOf(c, d.principal_fen, rng);
  DrawRepayment(c, d, rng);
  DrawFate(c, d, rng);
  d.origination = DrawOrigination(c.growth, d.attributes.term_months, rng);
  DrawReclassification(c, d, rng);
  return d;
}

double TypicalPrincipalYuan(const CellSpec& c) { return PrincipalLawOf(c).median_yuan; }

}  // namespace loanledger::gen
