// Reason codes for rejected events (docs/data.md): business answers, not errors.
// Values are pinned: they are sent on the wire and printed by the CLI.
#pragma once

#include <cstdint>
#include <string_view>

namespace loanledger {

enum class Reason : uint16_t {
  kOk = 0,
  // One event on its own (docs/data.md).
  kBadInstitutionId = 1,   // not 1..32 of A-Z 0-9 _ -
  kBadLoanId = 2,          // not 1..64 printable ASCII without comma
  kBadSeq = 3,             // seq is 0 (or not a number)
  kBadBusinessDate = 4,    // not YYYY-MM-DD, or outside 1990-01-01..2199-12-31
  kBadEventKind = 5,       // not DISBURSE/REPAY/WRITE_OFF/RECLASSIFY
  kBadAmount = 6,          // <= 0 (non-RECLASSIFY), != 0 (RECLASSIFY), or > 10^15
  kBadBorrowerType = 7,    // unknown borrower type
  kBadEnterpriseSize = 8,  // unknown, or inconsistent with the borrower type
  kBadIndustryCode = 9,    // not section letter A-T + 0/2/3/4 digits, or empty for a non-INDIVIDUAL
  kBadRegionCode = 10,     // not 6 digits of one of the 31 provinces
  kBadTermMonths = 11,     // not 1..600
  kBadCreditLine = 12,     // negative or not an int64
  kBadFlag = 13,           // a boolean that is not 0 or 1
  kMalformedRecord = 14,   // a CSV line with the wrong number of fields, etc.
  // Against the loan's state (docs/data.md).
  kSeqGap = 20,                 // seq > last applied seq + 1
  kDateBeforePrevious = 21,     // business date earlier than the loan's previous event
  kOverdraw = 22,               // REPAY/WRITE_OFF above the outstanding balance
  kFirstEventNotDisburse = 23,  // a loan's first event must be DISBURSE
  kWrongInstitution = 24,       // the event's institution is not the caller's
  kBalanceLimit = 25,           // the loan's balance would exceed kLoanBalanceFenMax
  kLedgerCapacity = 26,  // the ledger's lifetime disbursements would pass kLedgerDisbursedFenMax
};

// Stable upper-snake name, e.g. "SEQ_GAP" (metric label, CLI output).
std::string_view ReasonName(Reason r);
// A short sentence for people.
std::string_view ReasonDescription(Reason r);

}  // namespace loanledger
