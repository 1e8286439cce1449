// Category rules (docs/categories.md): data plus small pure functions, in one place.
// Adding a category is an enum value, a predicate and a row in kCategoryRules
// (category.cc). A rule change is re-applied to all loans by rebuilding the
// aggregates from the journal (Ledger::Verify shows what would change).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "schema/event.h"

namespace loanledger {

// Values are pinned: they are the first byte of every aggregate cell key on
// disk and travel on the wire. Never renumber; append.
enum class Category : uint8_t {
  kTotal = 0,
  kManufacturing = 1,
  kManufacturingMlt = 2,
  kHighTechManufacturing = 3,
  kSrdi = 4,
  kInclusiveSmallMicro = 5,
  kGreen = 6,
  kTechEnterprise = 7,
  kTechFinance = 8,
  kElderlyCare = 9,
  kDigitalEconomy = 10,
};
inline constexpr size_t kCategoryCount = 11;

using CategoryMask = uint32_t;  // bit i set = member of Category(i)
inline constexpr CategoryMask Bit(Category c) { return CategoryMask{1} << static_cast<uint8_t>(c); }

struct CategoryRule {
  Category category;
  std::string_view name;                     // docs/categories.md name, e.g. "MANUFACTURING_MLT"
  bool (*matches)(const LoanAttributes& a);  // pure
};

// Every category in docs/categories.md order (the order of report rows).
std::span<const CategoryRule> CategoryRules();
CategoryMask Classify(const LoanAttributes& attributes);
std::string_view CategoryName(Category c);
std::optional<Category> ParseCategory(std::string_view name);

// HIGH_TECH_MANUFACTURING: the NBS 2017 table (docs/categories.md),
// matched by prefix; a code coarser than the table does not count.
bool IsHighTechManufacturing(std::string_view industry_code);
std::span<const std::string_view> HighTechPrefixes();

// Provinces (docs/categories.md): the 31 two-digit codes, ascending.
std::span<const uint8_t> ProvinceCodes();
bool IsProvinceCode(uint8_t code);
// The province of a valid region code: its first two digits as a number.
uint8_t ProvinceOf(std::string_view region_code);

}  // namespace loanledger
