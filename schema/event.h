// The loan event (docs/data.md) and its validation. Every event carries the
// loan's full attributes as of that event, so each event classifies alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "schema/date.h"
#include "schema/reason.h"

namespace loanledger {

// Enum values are pinned: they are stored on disk (loan states, journal)
// and sent on the wire. Never renumber.
enum class EventKind : uint8_t { kDisburse = 1, kRepay = 2, kWriteOff = 3, kReclassify = 4 };
enum class BorrowerType : uint8_t {
  kEnterprise = 1,
  kIndividualBusiness = 2,  // 个体工商户 (business purpose)
  kSmallMicroOwner = 3,     // 小微企业主 (business purpose)
  kIndividual = 4,          // household consumer
};
enum class EnterpriseSize : uint8_t { kNa = 0, kLarge = 1, kMedium = 2, kSmall = 3, kMicro = 4 };

// The classifying attributes; every event replaces the loan's with its own.
struct LoanAttributes {
  BorrowerType borrower_type = BorrowerType::kEnterprise;
  EnterpriseSize enterprise_size = EnterpriseSize::kNa;  // kNa unless kEnterprise
  std::string industry_code;     // GB/T 4754-2017: letter + 0/2/3/4 digits; "" only for kIndividual
  std::string region_code;       // 6-digit GB/T 2260 code
  uint16_t term_months = 0;      // original contractual term, 1..600
  int64_t credit_line_fen = 0;   // borrower's total credit line at the institution, >= 0
  bool srdi = false;             // 专精特新 borrower
  bool tech_enterprise = false;  // certified technology enterprise
  bool green = false;            // green loan (by purpose)
  bool elderly_care = false;     // elderly-care industry
  bool digital_economy = false;  // digital-economy core industry

  bool operator==(const LoanAttributes&) const = default;
};

struct LoanEvent {
  std::string institution_id;  // 1..32 of A-Z 0-9 _ -
  std::string loan_id;         // 1..64 printable ASCII, no comma
  uint64_t seq = 0;            // >= 1; per loan 1, 2, 3, ...
  Day business_date = 0;       // kDayMin..kDayMax
  EventKind kind = EventKind::kDisburse;
  int64_t amount_fen = 0;  // > 0, except kReclassify: 0; <= 10^15
  LoanAttributes attributes;

  bool operator==(const LoanEvent&) const = default;
};

// A rejected field: the reason code and a readable message naming the value.
struct FieldError {
  Reason reason = Reason::kOk;
  std::string message;
};

// Checks every docs/data.md rule that one event can break on its own (not seq
// order, balance or date order: those need the loan's state). Returns
// nullopt when the event is valid. REQUIRES: enum fields hold declared values
// or the check reports them (decoders may pass any byte through).
std::optional<FieldError> ValidateEvent(const LoanEvent& event);

// Single-field checks, shared by the CSV reader and the validator.
bool IsValidInstitutionId(std::string_view id);
bool IsValidLoanId(std::string_view id);
bool IsValidIndustryCode(std::string_view code);
// True when the first two digits name one of the 31 provinces (docs/categories.md).
bool IsValidRegionCode(std::string_view code);

// Names as in docs/data.md (CSV and JSON): DISBURSE, ENTERPRISE, SMALL, NA, ...
std::string_view EventKindName(EventKind k);
std::string_view BorrowerTypeName(BorrowerType t);
std::string_view EnterpriseSizeName(EnterpriseSize s);
std::optional<EventKind> ParseEventKind(std::string_view s);
std::optional<BorrowerType> ParseBorrowerType(std::string_view s);
std::optional<EnterpriseSize> ParseEnterpriseSize(std::string_view s);

}  // namespace loanledger
