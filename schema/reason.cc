#include "schema/reason.h"

namespace loanledger {

std::string_view ReasonName(Reason r) {
  switch (r) {
    case Reason::kOk:
      return "OK";
    case Reason::kBadInstitutionId:
      return "BAD_INSTITUTION_ID";
    case Reason::kBadLoanId:
      return "BAD_LOAN_ID";
    case Reason::kBadSeq:
      return "BAD_SEQ";
    case Reason::kBadBusinessDate:
      return "BAD_BUSINESS_DATE";
    case Reason::kBadEventKind:
      return "BAD_EVENT_KIND";
    case Reason::kBadAmount:
      return "BAD_AMOUNT";
    case Reason::kBadBorrowerType:
      return "BAD_BORROWER_TYPE";
    case Reason::kBadEnterpriseSize:
      return "BAD_ENTERPRISE_SIZE";
    case Reason::kBadIndustryCode:
      return "BAD_INDUSTRY_CODE";
    case Reason::kBadRegionCode:
      return "BAD_REGION_CODE";
    case Reason::kBadTermMonths:
      return "BAD_TERM_MONTHS";
    case Reason::kBadCreditLine:
      return "BAD_CREDIT_LINE";
    case Reason::kBadFlag:
      return "BAD_FLAG";
    case Reason::kMalformedRecord:
      return "MALFORMED_RECORD";
    case Reason::kSeqGap:
      return "SEQ_GAP";
    case Reason::kDateBeforePrevious:
      return "DATE_BEFORE_PREVIOUS";
    case Reason::kOverdraw:
      return "OVERDRAW";
    case Reason::kFirstEventNotDisburse:
      return "FIRST_EVENT_NOT_DISBURSE";
    case Reason::kWrongInstitution:
      return "WRONG_INSTITUTION";
    case Reason::kBalanceLimit:
      return "BALANCE_LIMIT";
    case Reason::kLedgerCapacity:
      return "LEDGER_CAPACITY";
  }
  return "UNKNOWN";
}

std::string_view ReasonDescription(Reason r) {
  switch (r) {
    case Reason::kOk:
      return "ok";
    case Reason::kBadInstitutionId:
      return "institution_id must be 1-32 characters of A-Z 0-9 _ -";
    case Reason::kBadLoanId:
      return "loan_id must be 1-64 printable ASCII characters without comma";
    case Reason::kBadSeq:
      return "seq must be an integer >= 1";
    case Reason::kBadBusinessDate:
      return "business_date must be YYYY-MM-DD within 1990-01-01..2199-12-31";
    case Reason::kBadEventKind:
      return "event must be DISBURSE, REPAY, WRITE_OFF or RECLASSIFY";
    case Reason::kBadAmount:
      return "amount_fen must be 1..10^15 (0 for RECLASSIFY)";
    case Reason::kBadBorrowerType:
      return "borrower_type must be ENTERPRISE, INDIVIDUAL_BUSINESS, SMALL_MICRO_OWNER or "
             "INDIVIDUAL";
    case Reason::kBadEnterpriseSize:
      return "enterprise_size must be LARGE/MEDIUM/SMALL/MICRO for ENTERPRISE and NA otherwise";
    case Reason::kBadIndustryCode:
      return "industry_code must be a GB/T 4754-2017 section letter A-T with 0, 2, 3 or 4 digits "
             "(empty only for INDIVIDUAL)";
    case Reason::kBadRegionCode:
      return "region_code must be 6 digits starting with one of the 31 province codes";
    case Reason::kBadTermMonths:
      return "term_months must be 1..600";
    case Reason::kBadCreditLine:
      return "credit_line_fen must be 0..9223372036854775807";
    case Reason::kBadFlag:
      return "flags must be 0 or 1";
    case Reason::kMalformedRecord:
      return "the record is malformed (wrong number of fields or unparsable)";
    case Reason::kSeqGap:
      return "seq skips ahead of the loan's last applied seq + 1";
    case Reason::kDateBeforePrevious:
      return "business_date is earlier than the loan's previous event";
    case Reason::kOverdraw:
      return "the amount exceeds the loan's outstanding balance";
    case Reason::kFirstEventNotDisburse:
      return "a loan's first event must be DISBURSE";
    case Reason::kWrongInstitution:
      return "the event's institution is not the caller's";
    case Reason::kBalanceLimit:
      return "the loan's balance would exceed 10^16 fen";
    case Reason::kLedgerCapacity:
      return "the ledger's lifetime disbursements would exceed 2^62 fen";
  }
  return "unknown reason";
}

}  // namespace loanledger
