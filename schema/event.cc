#include "schema/event.h"

#include <string>

#include "schema/category.h"
#include "schema/limits.h"

namespace loanledger {
namespace {

FieldError Error(Reason r, std::string detail) {
  return FieldError{r, std::string(ReasonDescription(r)) + " (got " + std::move(detail) + ")"};
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  // Cap what we echo back: a hostile 16 MiB loan_id should not be quoted whole.
  constexpr size_t kEchoBytesMax = 80;
  for (char c : s.substr(0, kEchoBytesMax)) {
    if (c >= 0x20 && c < 0x7f) {
      out += c;
    } else {
      out += '?';
    }
  }
  if (s.size() > kEchoBytesMax) out += "...";
  out += '"';
  return out;
}

bool IsDigits(std::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

bool IsValidInstitutionId(std::string_view id) {
  if (id.empty() || id.size() > kInstitutionIdBytesMax) return false;
  for (char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool IsValidLoanId(std::string_view id) {
  if (id.empty() || id.size() > kLoanIdBytesMax) return false;
  for (char c : id) {
    // Printable ASCII is 0x20..0x7e; the comma would break the CSV form.
    if (c < 0x20 || c > 0x7e || c == ',') return false;
  }
  return true;
}

bool IsValidIndustryCode(std::string_view code) {
  if (code.empty()) return false;
  if (code[0] < 'A' || code[0] > 'T') return false;
  const size_t digits = code.size() - 1;
  if (digits != 0 && digits != 2 && digits != 3 && digits != 4) return false;
  return IsDigits(code.substr(1));
}

bool IsValidRegionCode(std::string_view code) {
  if (code.size() != 6 || !IsDigits(code)) return false;
  return IsProvinceCode(static_cast<uint8_t>((code[0] - '0') * 10 + (code[1] - '0')));
}

std::optional<FieldError> ValidateEvent(const LoanEvent& e) {
  if (!IsValidInstitutionId(e.institution_id)) {
    return Error(Reason::kBadInstitutionId, Quote(e.institution_id));
  }
  if (!IsValidLoanId(e.loan_id)) return Error(Reason::kBadLoanId, Quote(e.loan_id));
  if (e.seq == 0) return Error(Reason::kBadSeq, "0");
  if (e.business_date < kDayMin || e.business_date > kDayMax) {
    return Error(Reason::kBadBusinessDate, FormatDate(e.business_date));
  }
  const auto kind = static_cast<uint8_t>(e.kind);
  if (kind < 1 || kind > 4) return Error(Reason::kBadEventKind, std::to_string(kind));
  if (e.kind == EventKind::kReclassify) {
    if (e.amount_fen != 0)
      return Error(Reason::kBadAmount, std::to_string(e.amount_fen) + " on RECLASSIFY");
  } else if (e.amount_fen <= 0 || e.amount_fen > kAmountFenMax) {
    return Error(Reason::kBadAmount, std::to_string(e.amount_fen));
  }
  const LoanAttributes& a = e.attributes;
  const auto borrower = static_cast<uint8_t>(a.borrower_type);
  if (borrower < 1 || borrower > 4)
    return Error(Reason::kBadBorrowerType, std::to_string(borrower));
  const auto size = static_cast<uint8_t>(a.enterprise_size);
  if (size > 4) return Error(Reason::kBadEnterpriseSize, std::to_string(size));
  const bool is_enterprise = a.borrower_type == BorrowerType::kEnterprise;
  if (is_enterprise == (a.enterprise_size == EnterpriseSize::kNa)) {
    return Error(Reason::kBadEnterpriseSize, std::string(EnterpriseSizeName(a.enterprise_size)) +
                                                 " for " +
                                                 std::string(BorrowerTypeName(a.borrower_type)));
  }
  const bool empty_industry_ok =
      a.borrower_type == BorrowerType::kIndividual && a.industry_code.empty();
  if (!empty_industry_ok && !IsValidIndustryCode(a.industry_code)) {
    return Error(Reason::kBadIndustryCode, Quote(a.industry_code));
  }
  if (!IsValidRegionCode(a.region_code)) return Error(Reason::kBadRegionCode, Quote(a.region_code));
  if (a.term_months < 1 || a.term_months > kTermMonthsMax) {
    return Error(Reason::kBadTermMonths, std::to_string(a.term_months));
  }
  if (a.credit_line_fen < 0 || a.credit_line_fen > kCreditLineFenMax) {
    return Error(Reason::kBadCreditLine, std::to_string(a.credit_line_fen));
  }
  return std::nullopt;
}

std::string_view EventKindName(EventKind k) {
  switch (k) {
    case EventKind::kDisburse:
      return "DISBURSE";
    case EventKind::kRepay:
      return "REPAY";
    case EventKind::kWriteOff:
      return "WRITE_OFF";
    case EventKind::kReclassify:
      return "RECLASSIFY";
  }
  return "?";
}

std::string_view BorrowerTypeName(BorrowerType t) {
  switch (t) {
    case BorrowerType::kEnterprise:
      return "ENTERPRISE";
    case BorrowerType::kIndividualBusiness:
      return "INDIVIDUAL_BUSINESS";
    case BorrowerType::kSmallMicroOwner:
      return "SMALL_MICRO_OWNER";
    case BorrowerType::kIndividual:
      return "INDIVIDUAL";
  }
  return "?";
}

std::string_view EnterpriseSizeName(EnterpriseSize s) {
  switch (s) {
    case EnterpriseSize::kNa:
      return "NA";
    case EnterpriseSize::kLarge:
      return "LARGE";
    case EnterpriseSize::kMedium:
      return "MEDIUM";
    case EnterpriseSize::kSmall:
      return "SMALL";
    case EnterpriseSize::kMicro:
      return "MICRO";
  }
  return "?";
}

std::optional<EventKind> ParseEventKind(std::string_view s) {
  for (auto k :
       {EventKind::kDisburse, EventKind::kRepay, EventKind::kWriteOff, EventKind::kReclassify}) {
    if (s == EventKindName(k)) return k;
  }
  return std::nullopt;
}

std::optional<BorrowerType> ParseBorrowerType(std::string_view s) {
  for (auto t : {BorrowerType::kEnterprise, BorrowerType::kIndividualBusiness,
                 BorrowerType::kSmallMicroOwner, BorrowerType::kIndividual}) {
    if (s == BorrowerTypeName(t)) return t;
  }
  return std::nullopt;
}

std::optional<EnterpriseSize> ParseEnterpriseSize(std::string_view s) {
  for (auto z : {EnterpriseSize::kNa, EnterpriseSize::kLarge, EnterpriseSize::kMedium,
                 EnterpriseSize::kSmall, EnterpriseSize::kMicro}) {
    if (s == EnterpriseSizeName(z)) return z;
  }
  return std::nullopt;
}

}  // namespace loanledger
