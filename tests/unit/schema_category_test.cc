// Category rules (docs/categories.md, schema/category.h) and the high-tech
// table (docs/categories.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "schema/category.h"

namespace loanledger {
namespace {

// A loan that belongs to TOTAL only: a large enterprise in retail, short
// term, no flags.
LoanAttributes Plain() {
  LoanAttributes a;
  a.borrower_type = BorrowerType::kEnterprise;
  a.enterprise_size = EnterpriseSize::kLarge;
  a.industry_code = "F5211";
  a.region_code = "310115";
  a.term_months = 12;
  a.credit_line_fen = 50'000'000'000;
  return a;
}

bool In(const LoanAttributes& a, Category c) { return (Classify(a) & Bit(c)) != 0; }

LoanAttributes WithIndustry(std::string code, uint16_t term_months = 12) {
  LoanAttributes a = Plain();
  a.industry_code = std::move(code);
  a.term_months = term_months;
  return a;
}

constexpr Category kAll[] = {
    Category::kTotal,
    Category::kManufacturing,
    Category::kManufacturingMlt,
    Category::kHighTechManufacturing,
    Category::kSrdi,
    Category::kInclusiveSmallMicro,
    Category::kGreen,
    Category::kTechEnterprise,
    Category::kTechFinance,
    Category::kElderlyCare,
    Category::kDigitalEconomy,
};

TEST(SchemaCategory, PlainLoanIsInTotalOnly) {
  EXPECT_EQ(Classify(Plain()), Bit(Category::kTotal));
}

TEST(SchemaCategory, TotalContainsEveryLoan) {
  LoanAttributes a = Plain();
  a.borrower_type = BorrowerType::kIndividual;
  a.enterprise_size = EnterpriseSize::kNa;
  a.industry_code = "";
  EXPECT_EQ(Classify(a), Bit(Category::kTotal));
  a = WithIndustry("C2710", 60);
  a.srdi = a.green = a.tech_enterprise = a.elderly_care = a.digital_economy = true;
  EXPECT_TRUE(In(a, Category::kTotal));
}

TEST(SchemaCategory, ManufacturingIsSectionC) {
  for (const char* code : {"C", "C13", "C1311", "C27", "C39", "C3911", "C43", "C4343", "C4390"}) {
    EXPECT_TRUE(In(WithIndustry(code), Category::kManufacturing)) << code;
  }
  for (const char* code : {"A", "B06", "D4411", "F5211", "K66", "T9600", "E47"}) {
    EXPECT_FALSE(In(WithIndustry(code), Category::kManufacturing)) << code;
  }
  LoanAttributes individual = Plain();
  individual.borrower_type = BorrowerType::kIndividual;
  individual.enterprise_size = EnterpriseSize::kNa;
  individual.industry_code = "";
  EXPECT_FALSE(In(individual, Category::kManufacturing));
}

TEST(SchemaCategory, ManufacturingIsDivisions13To43Only) {
  // Well-formed codes with a division outside section C's 13..43 are not
  // real manufacturing codes (docs/categories.md: "divisions 13-43").
  for (const char* code : {"C12", "C1211", "C00", "C44", "C4411", "C99"}) {
    EXPECT_FALSE(In(WithIndustry(code), Category::kManufacturing)) << code;
  }
}

TEST(SchemaCategory, MediumLongTermManufacturingNeedsTermAbove12Months) {
  EXPECT_FALSE(In(WithIndustry("C3911", 12), Category::kManufacturingMlt));
  EXPECT_TRUE(In(WithIndustry("C3911", 13), Category::kManufacturingMlt));
  EXPECT_FALSE(In(WithIndustry("C3911", 1), Category::kManufacturingMlt));
  EXPECT_TRUE(In(WithIndustry("C3911", 600), Category::kManufacturingMlt));
  EXPECT_TRUE(In(WithIndustry("C", 13), Category::kManufacturingMlt));
  // Long term but not manufacturing.
  EXPECT_FALSE(In(WithIndustry("F5211", 60), Category::kManufacturingMlt));
  EXPECT_FALSE(In(WithIndustry("C12", 60), Category::kManufacturingMlt));
  // Short-term manufacturing is still manufacturing.
  EXPECT_TRUE(In(WithIndustry("C3911", 12), Category::kManufacturing));
}

TEST(SchemaCategory, HighTechMatchesTablePrefixes) {
  for (const char* code :
       {"C2710", "C27",   "C2761", "C392",  "C3921", "C3922", "C3581", "C3589",
        "C374",  "C3741", "C3749", "C4343", "C391",  "C3911", "C2664", "C2665",
        "C401",  "C4011", "C4040", "C4090", "C3990", "C3841", "C398",  "C3981"}) {
    EXPECT_TRUE(IsHighTechManufacturing(code)) << code;
    EXPECT_TRUE(In(WithIndustry(code), Category::kHighTechManufacturing)) << code;
  }
}

TEST(SchemaCategory, HighTechDoesNotMatchCoarserOrExcludedCodes) {
  for (const char* code :
       {"C39",   "C3",    "C",     "C3587", "C358", "C37",   "C3751", "C434",  "C43",
        "C4341", "C266",  "C2661", "C26",   "C35",  "C356",  "C3561", "C396",  "C3964",
        "C399",  "C3991", "C40",   "C403",  "C404", "C4041", "C409",  "C3842", "C383",
        "C3831", "C347",  "C3476", "F2710", "D27",  ""}) {
    EXPECT_FALSE(IsHighTechManufacturing(code)) << code;
    EXPECT_FALSE(In(WithIndustry(code), Category::kHighTechManufacturing)) << code;
  }
}

TEST(SchemaCategory, HighTechTableIsTheDocumentedTable) {
  // docs/categories.md, high-tech table, groups HTP01-HTP06.
  const std::set<std::string_view> documented = {
      "C27",   "C374",  "C4343", "C3562", "C3563", "C3569", "C3832", "C3833", "C3841",
      "C392",  "C393",  "C394",  "C395",  "C3961", "C3962", "C3963", "C3969", "C397",
      "C398",  "C3990", "C391",  "C3474", "C3475", "C3581", "C3582", "C3583", "C3584",
      "C3585", "C3586", "C3589", "C401",  "C402",  "C4040", "C4090", "C2664", "C2665",
  };
  const std::span<const std::string_view> table = HighTechPrefixes();
  const std::set<std::string_view> actual(table.begin(), table.end());
  EXPECT_EQ(actual.size(), table.size()) << "duplicate prefix in the table";
  EXPECT_EQ(actual, documented);
}

TEST(SchemaCategory, EveryHighTechPrefixAndItsFinerCodesMatchAndAreManufacturing) {
  for (std::string_view prefix : HighTechPrefixes()) {
    std::vector<std::string> codes = {std::string(prefix)};
    while (codes.back().size() < 5) codes.push_back(codes.back() + "9");
    for (const std::string& code : codes) {
      const LoanAttributes a = WithIndustry(code, 24);
      EXPECT_TRUE(In(a, Category::kHighTechManufacturing)) << code;
      EXPECT_TRUE(In(a, Category::kManufacturing)) << code;
      EXPECT_TRUE(In(a, Category::kManufacturingMlt)) << code;
      EXPECT_TRUE(In(a, Category::kTechFinance)) << code;
    }
    // One digit coarser does not match (unless it is itself a table prefix).
    const std::string coarser(prefix.substr(0, prefix.size() - 1));
    if (coarser.size() >= 3) {
      bool coarser_listed = false;
      for (std::string_view p : HighTechPrefixes()) coarser_listed |= coarser.starts_with(p);
      EXPECT_EQ(IsHighTechManufacturing(coarser), coarser_listed) << coarser;
    }
  }
}

TEST(SchemaCategory, SrdiFollowsTheFlag) {
  LoanAttributes a = Plain();
  a.srdi = true;
  EXPECT_EQ(Classify(a),
            Bit(Category::kTotal) | Bit(Category::kSrdi) | Bit(Category::kTechFinance));
}

TEST(SchemaCategory, TechEnterpriseFollowsTheFlag) {
  LoanAttributes a = Plain();
  a.tech_enterprise = true;
  EXPECT_EQ(Classify(a),
            Bit(Category::kTotal) | Bit(Category::kTechEnterprise) | Bit(Category::kTechFinance));
}

TEST(SchemaCategory, GreenElderlyAndDigitalFollowTheirFlagsAlone) {
  LoanAttributes a = Plain();
  a.green = true;
  EXPECT_EQ(Classify(a), Bit(Category::kTotal) | Bit(Category::kGreen));
  a = Plain();
  a.elderly_care = true;
  EXPECT_EQ(Classify(a), Bit(Category::kTotal) | Bit(Category::kElderlyCare));
  a = Plain();
  a.digital_economy = true;
  EXPECT_EQ(Classify(a), Bit(Category::kTotal) | Bit(Category::kDigitalEconomy));
}

TEST(SchemaCategory, TechFinanceIsTheUnionOfTechSrdiAndHighTech) {
  for (int mask = 0; mask < 8; ++mask) {
    LoanAttributes a = Plain();
    a.tech_enterprise = mask & 1;
    a.srdi = mask & 2;
    if (mask & 4) a.industry_code = "C2710";
    const CategoryMask m = Classify(a);
    EXPECT_EQ((m & Bit(Category::kTechFinance)) != 0, mask != 0) << mask;
    EXPECT_EQ((m & Bit(Category::kTechEnterprise)) != 0, (mask & 1) != 0) << mask;
    EXPECT_EQ((m & Bit(Category::kSrdi)) != 0, (mask & 2) != 0) << mask;
    EXPECT_EQ((m & Bit(Category::kHighTechManufacturing)) != 0, (mask & 4) != 0) << mask;
  }
  // A high-tech code alone makes tech finance; manufacturing alone does not.
  EXPECT_TRUE(In(WithIndustry("C3911"), Category::kTechFinance));
  EXPECT_FALSE(In(WithIndustry("C1311"), Category::kTechFinance));
  EXPECT_FALSE(In(WithIndustry("C39"), Category::kTechFinance));
}

LoanAttributes Borrower(BorrowerType t, EnterpriseSize s, int64_t credit_line_fen) {
  LoanAttributes a = Plain();
  a.borrower_type = t;
  a.enterprise_size = s;
  a.credit_line_fen = credit_line_fen;
  return a;
}

TEST(SchemaCategory, InclusiveSmallMicroBorrowers) {
  constexpr int64_t kLine = 500'000'000;  // 5 million yuan
  EXPECT_TRUE(In(Borrower(BorrowerType::kEnterprise, EnterpriseSize::kSmall, kLine),
                 Category::kInclusiveSmallMicro));
  EXPECT_TRUE(In(Borrower(BorrowerType::kEnterprise, EnterpriseSize::kMicro, kLine),
                 Category::kInclusiveSmallMicro));
  EXPECT_FALSE(In(Borrower(BorrowerType::kEnterprise, EnterpriseSize::kMedium, kLine),
                  Category::kInclusiveSmallMicro));
  EXPECT_FALSE(In(Borrower(BorrowerType::kEnterprise, EnterpriseSize::kLarge, kLine),
                  Category::kInclusiveSmallMicro));
  EXPECT_TRUE(In(Borrower(BorrowerType::kIndividualBusiness, EnterpriseSize::kNa, kLine),
                 Category::kInclusiveSmallMicro));
  EXPECT_TRUE(In(Borrower(BorrowerType::kSmallMicroOwner, EnterpriseSize::kNa, kLine),
                 Category::kInclusiveSmallMicro));
}

TEST(SchemaCategory, InclusiveCreditLineCapIsInclusiveAt10MillionYuan) {
  for (BorrowerType t : {BorrowerType::kIndividualBusiness, BorrowerType::kSmallMicroOwner}) {
    EXPECT_TRUE(In(Borrower(t, EnterpriseSize::kNa, 0), Category::kInclusiveSmallMicro));
    EXPECT_TRUE(
        In(Borrower(t, EnterpriseSize::kNa, 1'000'000'000), Category::kInclusiveSmallMicro));
    EXPECT_FALSE(
        In(Borrower(t, EnterpriseSize::kNa, 1'000'000'001), Category::kInclusiveSmallMicro));
  }
  for (EnterpriseSize s : {EnterpriseSize::kSmall, EnterpriseSize::kMicro}) {
    EXPECT_TRUE(
        In(Borrower(BorrowerType::kEnterprise, s, 1'000'000'000), Category::kInclusiveSmallMicro));
    EXPECT_FALSE(
        In(Borrower(BorrowerType::kEnterprise, s, 1'000'000'001), Category::kInclusiveSmallMicro));
  }
}

TEST(SchemaCategory, IndividualIsNeverInclusive) {
  for (int64_t line : {int64_t{0}, int64_t{1}, int64_t{1'000'000'000}, int64_t{5'000'000'000}}) {
    LoanAttributes a = Borrower(BorrowerType::kIndividual, EnterpriseSize::kNa, line);
    a.industry_code = "";
    EXPECT_FALSE(In(a, Category::kInclusiveSmallMicro)) << line;
    a.industry_code = "F5211";
    EXPECT_FALSE(In(a, Category::kInclusiveSmallMicro)) << line;
  }
}

TEST(SchemaCategory, AllRulesAtOnce) {
  LoanAttributes a = Borrower(BorrowerType::kEnterprise, EnterpriseSize::kMicro, 1'000'000'000);
  a.industry_code = "C3921";
  a.term_months = 13;
  a.srdi = a.tech_enterprise = a.green = a.elderly_care = a.digital_economy = true;
  CategoryMask all = 0;
  for (Category c : kAll) all |= Bit(c);
  EXPECT_EQ(Classify(a), all);
}

TEST(SchemaCategory, RulesAreInSpecOrderWithSpecNames) {
  const std::vector<std::string_view> spec_names = {"TOTAL",
                                                    "MANUFACTURING",
                                                    "MANUFACTURING_MLT",
                                                    "HIGH_TECH_MANUFACTURING",
                                                    "SRDI",
                                                    "INCLUSIVE_SMALL_MICRO",
                                                    "GREEN",
                                                    "TECH_ENTERPRISE",
                                                    "TECH_FINANCE",
                                                    "ELDERLY_CARE",
                                                    "DIGITAL_ECONOMY"};
  const std::span<const CategoryRule> rules = CategoryRules();
  ASSERT_EQ(rules.size(), kCategoryCount);
  ASSERT_EQ(rules.size(), spec_names.size());
  for (size_t i = 0; i < rules.size(); ++i) {
    EXPECT_EQ(static_cast<size_t>(rules[i].category), i);
    EXPECT_EQ(rules[i].category, kAll[i]);
    EXPECT_EQ(rules[i].name, spec_names[i]);
    EXPECT_EQ(CategoryName(kAll[i]), spec_names[i]);
    EXPECT_NE(rules[i].matches, nullptr);
  }
}

TEST(SchemaCategory, ParseCategoryRoundTripsNames) {
  for (Category c : kAll) {
    const std::optional<Category> back = ParseCategory(CategoryName(c));
    ASSERT_TRUE(back.has_value()) << CategoryName(c);
    EXPECT_EQ(*back, c);
  }
  for (const char* bad : {"", "total", "Total", "MANUFACTURING ", "TECH", "INCLUSIVE", "UNKNOWN"}) {
    EXPECT_FALSE(ParseCategory(bad).has_value()) << bad;
  }
}

TEST(SchemaCategory, BitsArePinned) {
  EXPECT_EQ(Bit(Category::kTotal), 1u);
  EXPECT_EQ(Bit(Category::kManufacturing), 2u);
  EXPECT_EQ(Bit(Category::kTechFinance), 1u << 8);
  EXPECT_EQ(Bit(Category::kDigitalEconomy), 1u << 10);
}

TEST(SchemaCategory, ClassifyAgreesWithEachRulePredicate) {
  std::vector<LoanAttributes> samples = {
      Plain(), WithIndustry("C2710", 24), WithIndustry("C39", 6),
      Borrower(BorrowerType::kSmallMicroOwner, EnterpriseSize::kNa, 7)};
  samples.back().green = true;
  samples[1].srdi = true;
  for (const LoanAttributes& a : samples) {
    CategoryMask expected = 0;
    for (const CategoryRule& rule : CategoryRules()) {
      if (rule.matches(a)) expected |= Bit(rule.category);
    }
    EXPECT_EQ(Classify(a), expected);
  }
}

TEST(SchemaProvince, The31ProvinceCodesAscending) {
  const std::vector<uint8_t> expected = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33,
                                         34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50,
                                         51, 52, 53, 54, 61, 62, 63, 64, 65};
  const std::span<const uint8_t> codes = ProvinceCodes();
  EXPECT_EQ(std::vector<uint8_t>(codes.begin(), codes.end()), expected);
  for (int p = 0; p < 256; ++p) {
    const bool listed = std::find(expected.begin(), expected.end(), p) != expected.end();
    EXPECT_EQ(IsProvinceCode(static_cast<uint8_t>(p)), listed) << p;
  }
  EXPECT_FALSE(IsProvinceCode(71));  // Taiwan
  EXPECT_FALSE(IsProvinceCode(81));  // Hong Kong
  EXPECT_FALSE(IsProvinceCode(82));  // Macao
}

TEST(SchemaProvince, ProvinceOfIsTheFirstTwoDigits) {
  EXPECT_EQ(ProvinceOf("310115"), 31);
  EXPECT_EQ(ProvinceOf("110101"), 11);
  EXPECT_EQ(ProvinceOf("650102"), 65);
  EXPECT_EQ(ProvinceOf("500000"), 50);
}

}  // namespace
}  // namespace loanledger
