// The loan event's field rules (docs/data.md, schema/event.h) and reason codes
// (schema/reason.h).
#include <gtest/gtest.h>

#include <cstdio>
#include <iterator>
#include <set>
#include <string>

#include "schema/category.h"
#include "schema/event.h"
#include "schema/limits.h"
#include "schema/reason.h"

namespace loanledger {
namespace {

LoanEvent ValidEvent() {
  LoanEvent e;
  e.institution_id = "B0001";
  e.loan_id = "L000000001";
  e.seq = 1;
  e.business_date = *ParseDate("2023-01-05");
  e.kind = EventKind::kDisburse;
  e.amount_fen = 5'000'000'000;
  e.attributes.borrower_type = BorrowerType::kEnterprise;
  e.attributes.enterprise_size = EnterpriseSize::kSmall;
  e.attributes.industry_code = "C3911";
  e.attributes.region_code = "310115";
  e.attributes.term_months = 36;
  e.attributes.credit_line_fen = 8'000'000'000;
  e.attributes.srdi = true;
  e.attributes.tech_enterprise = true;
  e.attributes.digital_economy = true;
  return e;
}

// The reason ValidateEvent gives, or kOk for a valid event.
Reason ReasonOf(const LoanEvent& e) {
  const std::optional<FieldError> error = ValidateEvent(e);
  if (!error) return Reason::kOk;
  EXPECT_NE(error->reason, Reason::kOk) << "an error must carry a reason";
  EXPECT_FALSE(error->message.empty()) << "an error must carry a message";
  return error->reason;
}

TEST(SchemaEvent, TheSpecExampleEventIsValid) { EXPECT_EQ(ReasonOf(ValidEvent()), Reason::kOk); }

TEST(SchemaEvent, InstitutionIdAcceptsOneTo32OfTheCharset) {
  for (std::string id : {std::string("A"), std::string("B0001"), std::string("Z9_-"),
                         std::string("0"), std::string("_"), std::string("-"), std::string(32, 'X'),
                         std::string("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345")}) {
    EXPECT_TRUE(IsValidInstitutionId(id)) << id;
    LoanEvent e = ValidEvent();
    e.institution_id = id;
    EXPECT_EQ(ReasonOf(e), Reason::kOk) << id;
  }
}

TEST(SchemaEvent, InstitutionIdRejectsEmptyTooLongAndOtherCharacters) {
  for (std::string id : {std::string(""), std::string(33, 'X'), std::string("b0001"),
                         std::string("B 0001"), std::string("B.0001"), std::string("B/1"),
                         std::string("B,1"), std::string("B\t1"), std::string("B0001\n"),
                         std::string("B\xC3\x96"
                                     "1"),
                         std::string("B0001", 6)}) {
    EXPECT_FALSE(IsValidInstitutionId(id)) << id;
    LoanEvent e = ValidEvent();
    e.institution_id = id;
    EXPECT_EQ(ReasonOf(e), Reason::kBadInstitutionId) << id;
  }
}

TEST(SchemaEvent, LoanIdAcceptsOneTo64PrintableAscii) {
  for (std::string id : {std::string("L"), std::string("loan 1/a.b-c_d"), std::string(64, 'z'),
                         std::string(" "), std::string("~!@#$%^&*()\"'<>?;:[]{}|\\")}) {
    EXPECT_TRUE(IsValidLoanId(id)) << id;
    LoanEvent e = ValidEvent();
    e.loan_id = id;
    EXPECT_EQ(ReasonOf(e), Reason::kOk) << id;
  }
}

TEST(SchemaEvent, LoanIdRejectsEmptyTooLongCommaAndNonPrintable) {
  for (std::string id :
       {std::string(""), std::string(65, 'z'), std::string("L,1"), std::string(","),
        std::string("L\t1"), std::string("L\n"), std::string("L\x7f"), std::string("L\x80"),
        std::string("\xE4\xB8\xAD"), std::string("L\0", 2)}) {
    EXPECT_FALSE(IsValidLoanId(id)) << id;
    LoanEvent e = ValidEvent();
    e.loan_id = id;
    EXPECT_EQ(ReasonOf(e), Reason::kBadLoanId) << id;
  }
}

TEST(SchemaEvent, SeqZeroIsRejectedAndAnyPositiveSeqAccepted) {
  LoanEvent e = ValidEvent();
  e.seq = 0;
  EXPECT_EQ(ReasonOf(e), Reason::kBadSeq);
  for (uint64_t seq : {uint64_t{1}, uint64_t{2}, uint64_t{1'000'000}, UINT64_MAX}) {
    e.seq = seq;
    EXPECT_EQ(ReasonOf(e), Reason::kOk) << seq;
  }
}

TEST(SchemaEvent, BusinessDateMustLieIn1990To2199) {
  LoanEvent e = ValidEvent();
  e.business_date = kDayMin;
  EXPECT_EQ(ReasonOf(e), Reason::kOk);
  e.business_date = kDayMax;
  EXPECT_EQ(ReasonOf(e), Reason::kOk);
  e.business_date = kDayMin - 1;  // 1989-12-31
  EXPECT_EQ(ReasonOf(e), Reason::kBadBusinessDate);
  e.business_date = kDayMax + 1;  // 2200-01-01
  EXPECT_EQ(ReasonOf(e), Reason::kBadBusinessDate);
  e.business_date = 0;
  EXPECT_EQ(ReasonOf(e), Reason::kBadBusinessDate);
  e.business_date = -1'000'000;
  EXPECT_EQ(ReasonOf(e), Reason::kBadBusinessDate);
}

TEST(SchemaEvent, UndeclaredEventKindIsRejected) {
  for (uint8_t raw : {0, 5, 255}) {
    LoanEvent e = ValidEvent();
    e.kind = static_cast<EventKind>(raw);
    EXPECT_EQ(ReasonOf(e), Reason::kBadEventKind) << int{raw};
  }
}

TEST(SchemaEvent, MoneyEventAmountsMustBeOneTo10To15) {
  for (EventKind k : {EventKind::kDisburse, EventKind::kRepay, EventKind::kWriteOff}) {
    LoanEvent e = ValidEvent();
    e.kind = k;
    for (int64_t ok : {int64_t{1}, int64_t{100}, kAmountFenMax}) {
      e.amount_fen = ok;
      EXPECT_EQ(ReasonOf(e), Reason::kOk) << EventKindName(k) << " " << ok;
    }
    for (int64_t bad : {int64_t{0}, int64_t{-1}, kAmountFenMax + 1, INT64_MIN, INT64_MAX}) {
      e.amount_fen = bad;
      EXPECT_EQ(ReasonOf(e), Reason::kBadAmount) << EventKindName(k) << " " << bad;
    }
  }
  EXPECT_EQ(kAmountFenMax, 1'000'000'000'000'000);
}

TEST(SchemaEvent, ReclassifyMustCarryZeroAmount) {
  LoanEvent e = ValidEvent();
  e.kind = EventKind::kReclassify;
  e.amount_fen = 0;
  EXPECT_EQ(ReasonOf(e), Reason::kOk);
  for (int64_t bad : {int64_t{1}, int64_t{-1}, int64_t{100}, kAmountFenMax}) {
    e.amount_fen = bad;
    EXPECT_EQ(ReasonOf(e), Reason::kBadAmount) << bad;
  }
}

TEST(SchemaEvent, UndeclaredBorrowerTypeIsRejected) {
  for (uint8_t raw : {0, 5, 200}) {
    LoanEvent e = ValidEvent();
    e.attributes.borrower_type = static_cast<BorrowerType>(raw);
    EXPECT_EQ(ReasonOf(e), Reason::kBadBorrowerType) << int{raw};
  }
}

TEST(SchemaEvent, EnterpriseNeedsASizeAndOthersNeedNa) {
  const EnterpriseSize sizes[] = {EnterpriseSize::kLarge, EnterpriseSize::kMedium,
                                  EnterpriseSize::kSmall, EnterpriseSize::kMicro};
  LoanEvent e = ValidEvent();
  for (EnterpriseSize s : sizes) {
    e.attributes.enterprise_size = s;
    EXPECT_EQ(ReasonOf(e), Reason::kOk) << EnterpriseSizeName(s);
  }
  e.attributes.enterprise_size = EnterpriseSize::kNa;
  EXPECT_EQ(ReasonOf(e), Reason::kBadEnterpriseSize);

  for (BorrowerType t : {BorrowerType::kIndividualBusiness, BorrowerType::kSmallMicroOwner,
                         BorrowerType::kIndividual}) {
    e.attributes.borrower_type = t;
    e.attributes.enterprise_size = EnterpriseSize::kNa;
    EXPECT_EQ(ReasonOf(e), Reason::kOk) << BorrowerTypeName(t);
    for (EnterpriseSize s : sizes) {
      e.attributes.enterprise_size = s;
      EXPECT_EQ(ReasonOf(e), Reason::kBadEnterpriseSize)
          << BorrowerTypeName(t) << " " << EnterpriseSizeName(s);
    }
  }
}

TEST(SchemaEvent, UndeclaredEnterpriseSizeIsRejected) {
  for (uint8_t raw : {5, 9, 255}) {
    LoanEvent e = ValidEvent();
    e.attributes.enterprise_size = static_cast<EnterpriseSize>(raw);
    EXPECT_EQ(ReasonOf(e), Reason::kBadEnterpriseSize) << int{raw};
    e.attributes.borrower_type = BorrowerType::kIndividual;
    EXPECT_EQ(ReasonOf(e), Reason::kBadEnterpriseSize) << int{raw};
  }
}

TEST(SchemaEvent, IndustryCodeIsASectionLetterWithZeroTwoThreeOrFourDigits) {
  for (const char* code : {"C3911", "C391", "C39", "C", "A", "T", "A0111", "T9600", "K66", "B06"}) {
    EXPECT_TRUE(IsValidIndustryCode(code)) << code;
    LoanEvent e = ValidEvent();
    e.attributes.industry_code = code;
    EXPECT_EQ(ReasonOf(e), Reason::kOk) << code;
  }
}

TEST(SchemaEvent, IndustryCodeRejectsOtherForms) {
  for (const char* code : {"C1", "U12", "c39", "C39a", "C39111", "CC39", "1C39", "U", "Z", "@",
                           "C 39", "C39 ", " C39", "C-39", "39", "C3.9"}) {
    EXPECT_FALSE(IsValidIndustryCode(code)) << code;
    LoanEvent e = ValidEvent();
    e.attributes.industry_code = code;
    EXPECT_EQ(ReasonOf(e), Reason::kBadIndustryCode) << code;
  }
  EXPECT_FALSE(IsValidIndustryCode(""));
}

TEST(SchemaEvent, EmptyIndustryCodeOnlyForIndividual) {
  LoanEvent e = ValidEvent();
  e.attributes.industry_code = "";
  e.attributes.borrower_type = BorrowerType::kIndividual;
  e.attributes.enterprise_size = EnterpriseSize::kNa;
  EXPECT_EQ(ReasonOf(e), Reason::kOk);
  for (BorrowerType t : {BorrowerType::kIndividualBusiness, BorrowerType::kSmallMicroOwner}) {
    e.attributes.borrower_type = t;
    EXPECT_EQ(ReasonOf(e), Reason::kBadIndustryCode) << BorrowerTypeName(t);
  }
  e.attributes.borrower_type = BorrowerType::kEnterprise;
  e.attributes.enterprise_size = EnterpriseSize::kMicro;
  EXPECT_EQ(ReasonOf(e), Reason::kBadIndustryCode);
  // An INDIVIDUAL with a code must still give a well-formed one.
  e.attributes.borrower_type = BorrowerType::kIndividual;
  e.attributes.enterprise_size = EnterpriseSize::kNa;
  e.attributes.industry_code = "c39";
  EXPECT_EQ(ReasonOf(e), Reason::kBadIndustryCode);
  e.attributes.industry_code = "F52";
  EXPECT_EQ(ReasonOf(e), Reason::kOk);
}

TEST(SchemaEvent, RegionCodeMustBeSixDigitsOfAProvince) {
  for (const char* code : {"310115", "110101", "650000", "540000", "440300", "500000"}) {
    EXPECT_TRUE(IsValidRegionCode(code)) << code;
    LoanEvent e = ValidEvent();
    e.attributes.region_code = code;
    EXPECT_EQ(ReasonOf(e), Reason::kOk) << code;
  }
  for (const char* code :
       {"710000", "810000", "820000", "990000", "000000", "100000", "160000", "300000", "660000",
        "31011", "3101150", "31011a", "", "31-115", " 10115", "31 115", "+31011"}) {
    EXPECT_FALSE(IsValidRegionCode(code)) << code;
    LoanEvent e = ValidEvent();
    e.attributes.region_code = code;
    EXPECT_EQ(ReasonOf(e), Reason::kBadRegionCode) << code;
  }
}

TEST(SchemaEvent, RegionCodeOfEveryProvinceIsValidAndNoOther) {
  std::set<int> provinces;
  for (uint8_t p : ProvinceCodes()) provinces.insert(p);
  ASSERT_EQ(provinces.size(), 31u);
  for (int p = 0; p <= 99; ++p) {
    char code[8];
    std::snprintf(code, sizeof code, "%02d0101", p);
    EXPECT_EQ(IsValidRegionCode(code), provinces.count(p) == 1) << code;
  }
}

TEST(SchemaEvent, TermMonthsMustBeOneTo600) {
  LoanEvent e = ValidEvent();
  for (uint16_t ok : {1, 12, 13, 360, 600}) {
    e.attributes.term_months = ok;
    EXPECT_EQ(ReasonOf(e), Reason::kOk) << ok;
  }
  for (uint16_t bad : {0, 601, 1000, 65535}) {
    e.attributes.term_months = bad;
    EXPECT_EQ(ReasonOf(e), Reason::kBadTermMonths) << bad;
  }
}

TEST(SchemaEvent, CreditLineMustBeNonNegative) {
  LoanEvent e = ValidEvent();
  for (int64_t ok : {int64_t{0}, int64_t{1}, int64_t{1'000'000'000}, INT64_MAX}) {
    e.attributes.credit_line_fen = ok;
    EXPECT_EQ(ReasonOf(e), Reason::kOk) << ok;
  }
  for (int64_t bad : {int64_t{-1}, INT64_MIN}) {
    e.attributes.credit_line_fen = bad;
    EXPECT_EQ(ReasonOf(e), Reason::kBadCreditLine) << bad;
  }
}

TEST(SchemaEvent, EveryBorrowerAndFlagCombinationThatIsWellFormedIsValid) {
  LoanEvent e = ValidEvent();
  for (int flags = 0; flags < 32; ++flags) {
    e.attributes.srdi = flags & 1;
    e.attributes.tech_enterprise = flags & 2;
    e.attributes.green = flags & 4;
    e.attributes.elderly_care = flags & 8;
    e.attributes.digital_economy = flags & 16;
    EXPECT_EQ(ReasonOf(e), Reason::kOk) << flags;
  }
}

TEST(SchemaEvent, MessageNamesTheOffendingValue) {
  LoanEvent e = ValidEvent();
  e.amount_fen = -12345;
  std::optional<FieldError> error = ValidateEvent(e);
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->message.find("-12345"), std::string::npos) << error->message;

  e = ValidEvent();
  e.attributes.region_code = "990000";
  error = ValidateEvent(e);
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->message.find("990000"), std::string::npos) << error->message;

  e = ValidEvent();
  e.attributes.term_months = 601;
  error = ValidateEvent(e);
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->message.find("601"), std::string::npos) << error->message;
}

TEST(SchemaEvent, MessageEchoOfAHugeIdIsBounded) {
  LoanEvent e = ValidEvent();
  e.loan_id = std::string(1 << 20, ',');
  const std::optional<FieldError> error = ValidateEvent(e);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->reason, Reason::kBadLoanId);
  EXPECT_LT(error->message.size(), 1000u);
}

TEST(SchemaEvent, EnumNamesRoundTrip) {
  for (EventKind k :
       {EventKind::kDisburse, EventKind::kRepay, EventKind::kWriteOff, EventKind::kReclassify}) {
    EXPECT_EQ(ParseEventKind(EventKindName(k)), k);
  }
  for (BorrowerType t : {BorrowerType::kEnterprise, BorrowerType::kIndividualBusiness,
                         BorrowerType::kSmallMicroOwner, BorrowerType::kIndividual}) {
    EXPECT_EQ(ParseBorrowerType(BorrowerTypeName(t)), t);
  }
  for (EnterpriseSize s : {EnterpriseSize::kNa, EnterpriseSize::kLarge, EnterpriseSize::kMedium,
                           EnterpriseSize::kSmall, EnterpriseSize::kMicro}) {
    EXPECT_EQ(ParseEnterpriseSize(EnterpriseSizeName(s)), s);
  }
  EXPECT_EQ(EventKindName(EventKind::kWriteOff), "WRITE_OFF");
  EXPECT_EQ(BorrowerTypeName(BorrowerType::kIndividualBusiness), "INDIVIDUAL_BUSINESS");
  EXPECT_EQ(BorrowerTypeName(BorrowerType::kSmallMicroOwner), "SMALL_MICRO_OWNER");
  EXPECT_EQ(EnterpriseSizeName(EnterpriseSize::kNa), "NA");
  EXPECT_FALSE(ParseEventKind("disburse").has_value());
  EXPECT_FALSE(ParseEventKind("").has_value());
  EXPECT_FALSE(ParseBorrowerType("HOUSEHOLD").has_value());
  EXPECT_FALSE(ParseEnterpriseSize("small").has_value());
}

TEST(SchemaEvent, EnumValuesArePinned) {
  EXPECT_EQ(static_cast<int>(EventKind::kDisburse), 1);
  EXPECT_EQ(static_cast<int>(EventKind::kRepay), 2);
  EXPECT_EQ(static_cast<int>(EventKind::kWriteOff), 3);
  EXPECT_EQ(static_cast<int>(EventKind::kReclassify), 4);
  EXPECT_EQ(static_cast<int>(BorrowerType::kEnterprise), 1);
  EXPECT_EQ(static_cast<int>(BorrowerType::kIndividual), 4);
  EXPECT_EQ(static_cast<int>(EnterpriseSize::kNa), 0);
  EXPECT_EQ(static_cast<int>(EnterpriseSize::kMicro), 4);
}

// Every declared reason, listed by hand so that a new one must be added here.
constexpr Reason kAllReasons[] = {
    Reason::kOk,
    Reason::kBadInstitutionId,
    Reason::kBadLoanId,
    Reason::kBadSeq,
    Reason::kBadBusinessDate,
    Reason::kBadEventKind,
    Reason::kBadAmount,
    Reason::kBadBorrowerType,
    Reason::kBadEnterpriseSize,
    Reason::kBadIndustryCode,
    Reason::kBadRegionCode,
    Reason::kBadTermMonths,
    Reason::kBadCreditLine,
    Reason::kBadFlag,
    Reason::kMalformedRecord,
    Reason::kSeqGap,
    Reason::kDateBeforePrevious,
    Reason::kOverdraw,
    Reason::kFirstEventNotDisburse,
    Reason::kWrongInstitution,
    Reason::kBalanceLimit,
    Reason::kLedgerCapacity,
};

TEST(SchemaReason, EveryReasonHasAUniqueUpperSnakeName) {
  std::set<std::string_view> names;
  for (Reason r : kAllReasons) {
    const std::string_view name = ReasonName(r);
    EXPECT_NE(name, "UNKNOWN") << static_cast<int>(r);
    EXPECT_FALSE(name.empty()) << static_cast<int>(r);
    for (char c : name) {
      EXPECT_TRUE((c >= 'A' && c <= 'Z') || c == '_') << name;
    }
    EXPECT_TRUE(names.insert(name).second) << "duplicate name " << name;
    EXPECT_FALSE(ReasonDescription(r).empty()) << name;
    EXPECT_NE(ReasonDescription(r), "unknown reason") << name;
  }
  EXPECT_EQ(names.size(), std::size(kAllReasons));
}

TEST(SchemaReason, NamesAndValuesArePinned) {
  EXPECT_EQ(ReasonName(Reason::kOk), "OK");
  EXPECT_EQ(ReasonName(Reason::kSeqGap), "SEQ_GAP");
  EXPECT_EQ(ReasonName(Reason::kOverdraw), "OVERDRAW");
  EXPECT_EQ(ReasonName(Reason::kWrongInstitution), "WRONG_INSTITUTION");
  EXPECT_EQ(ReasonName(Reason::kBadAmount), "BAD_AMOUNT");
  EXPECT_EQ(static_cast<int>(Reason::kBadInstitutionId), 1);
  EXPECT_EQ(static_cast<int>(Reason::kMalformedRecord), 14);
  EXPECT_EQ(static_cast<int>(Reason::kSeqGap), 20);
  EXPECT_EQ(static_cast<int>(Reason::kLedgerCapacity), 26);
}

TEST(SchemaReason, UndeclaredValueIsNamedUnknown) {
  EXPECT_EQ(ReasonName(static_cast<Reason>(999)), "UNKNOWN");
}

}  // namespace
}  // namespace loanledger
