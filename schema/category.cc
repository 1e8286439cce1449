#include "schema/category.h"

#include <algorithm>
#include <array>

#include "schema/check.h"

namespace loanledger {
namespace {

// docs/categories.md, high-tech table, groups HTP01-HTP06. Kept as data so the
// table can be replaced without touching code.
constexpr std::array<std::string_view, 36> kHighTechPrefixes = {
    "C27",   "C374",  "C4343", "C3562", "C3563", "C3569", "C3832", "C3833", "C3841",
    "C392",  "C393",  "C394",  "C395",  "C3961", "C3962", "C3963", "C3969", "C397",
    "C398",  "C3990", "C391",  "C3474", "C3475", "C3581", "C3582", "C3583", "C3584",
    "C3585", "C3586", "C3589", "C401",  "C402",  "C4040", "C4090", "C2664", "C2665",
};

// docs/categories.md: the 31 mainland province-level codes.
constexpr std::array<uint8_t, 31> kProvinceCodes = {
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41,
    42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65,
};

bool IsManufacturing(const LoanAttributes& a) {
  const std::string_view code = a.industry_code;
  if (code.empty() || code[0] != 'C') return false;
  if (code.size() == 1) return true;  // the section alone
  const int division = (code[1] - '0') * 10 + (code[2] - '0');
  return division >= 13 && division <= 43;
}

bool IsInclusiveSmallMicro(const LoanAttributes& a) {
  constexpr int64_t kCreditLineFenCap = 1'000'000'000;  // 10 million yuan
  if (a.credit_line_fen > kCreditLineFenCap) return false;
  switch (a.borrower_type) {
    case BorrowerType::kEnterprise:
      return a.enterprise_size == EnterpriseSize::kSmall ||
             a.enterprise_size == EnterpriseSize::kMicro;
    case BorrowerType::kIndividualBusiness:
    case BorrowerType::kSmallMicroOwner:
      return true;
    case BorrowerType::kIndividual:
      return false;
  }
  return false;
}

constexpr std::array<CategoryRule, kCategoryCount> kCategoryRules = {{
    {Category::kTotal, "TOTAL", [](const LoanAttributes&) { return true; }},
    {Category::kManufacturing, "MANUFACTURING", IsManufacturing},
    {Category::kManufacturingMlt, "MANUFACTURING_MLT",
     [](const LoanAttributes& a) { return IsManufacturing(a) && a.term_months > 12; }},
    {Category::kHighTechManufacturing, "HIGH_TECH_MANUFACTURING",
     [](const LoanAttributes& a) { return IsHighTechManufacturing(a.industry_code); }},
    {Category::kSrdi, "SRDI", [](const LoanAttributes& a) { return a.srdi; }},
    {Category::kInclusiveSmallMicro, "INCLUSIVE_SMALL_MICRO", IsInclusiveSmallMicro},
    {Category::kGreen, "GREEN", [](const LoanAttributes& a) { return a.green; }},
    {Category::kTechEnterprise, "TECH_ENTERPRISE",
     [](const LoanAttributes& a) { return a.tech_enterprise; }},
    {Category::kTechFinance, "TECH_FINANCE",
     [](const LoanAttributes& a) {
       return a.tech_enterprise || a.srdi || IsHighTechManufacturing(a.industry_code);
     }},
    {Category::kElderlyCare, "ELDERLY_CARE",
     [](const LoanAttributes& a) { return a.elderly_care; }},
    {Category::kDigitalEconomy, "DIGITAL_ECONOMY",
     [](const LoanAttributes& a) { return a.digital_economy; }},
}};

}  // namespace

std::span<const CategoryRule> CategoryRules() { return kCategoryRules; }

CategoryMask Classify(const LoanAttributes& attributes) {
  CategoryMask mask = 0;
  for (const CategoryRule& rule : kCategoryRules) {
    if (rule.matches(attributes)) mask |= Bit(rule.category);
  }
  LL_CHECK(mask & Bit(Category::kTotal));
  return mask;
}

std::string_view CategoryName(Category c) {
  const auto i = static_cast<size_t>(c);
  LL_CHECK(i < kCategoryRules.size());
  LL_CHECK(kCategoryRules[i].category == c);  // table order == enum order
  return kCategoryRules[i].name;
}

std::optional<Category> ParseCategory(std::string_view name) {
  for (const CategoryRule& rule : kCategoryRules) {
    if (rule.name == name) return rule.category;
  }
  return std::nullopt;
}

// Every prefix is in section C (manufacturing) and has at least 3
// characters: most loans are decided by their first letter without scanning
// the table (Classify runs per loan at open and per attribute change).
constexpr bool AllPrefixesInSectionC() {
  for (std::string_view p : kHighTechPrefixes) {
    if (p.size() < 3 || p[0] != 'C') return false;
  }
  return true;
}
static_assert(AllPrefixesInSectionC(), "IsHighTechManufacturing's first-letter test");

bool IsHighTechManufacturing(std::string_view code) {
  if (code.size() < 3 || code[0] != 'C') return false;  // the shortest prefix has 3 characters
  return std::any_of(kHighTechPrefixes.begin(), kHighTechPrefixes.end(),
                     [&](std::string_view prefix) { return code.starts_with(prefix); });
}

std::span<const std::string_view> HighTechPrefixes() { return kHighTechPrefixes; }

std::span<const uint8_t> ProvinceCodes() { return kProvinceCodes; }

bool IsProvinceCode(uint8_t code) {
  return std::binary_search(kProvinceCodes.begin(), kProvinceCodes.end(), code);
}

uint8_t ProvinceOf(std::string_view region_code) {
  LL_CHECK(region_code.size() >= 2);
  return static_cast<uint8_t>((region_code[0] - '0') * 10 + (region_code[1] - '0'));
}

}  // namespace loanledger
