// Static data of the synthetic portfolio: provinces and their weights,
// institutions, industry classes. Data only; the sampling lives in
// loan_model.cc. The numbers are plausible shapes, not statistics: see
// client/gen/README.md.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "client/gen/random.h"

namespace loanledger::gen {

inline constexpr uint8_t kShanghai = 31;

// Which kind of lending a weight or a bank mix applies to.
enum class Book : uint8_t {
  kCorporate = 0,  // large and medium enterprises
  kSme = 1,        // small and micro enterprises, individual businesses, owners
  kHousehold = 2,  // mortgages and consumer loans
};
inline constexpr size_t kBookCount = 3;

struct Province {
  uint8_t code;               // GB/T 2260 province code (docs/categories.md)
  std::string_view name;      // English name, for people
  double weight[kBookCount];  // relative share of that book's balance
  uint8_t prefectures;        // prefecture-level divisions (1 for municipalities)
};
std::span<const Province> Provinces();

// Draws a province for a loan of the given book. `shanghai`: true = Shanghai
// only; false = any province but Shanghai (cells split Shanghai off, see
// portfolio.h).
uint8_t DrawProvince(Book book, bool shanghai, Rng& rng);
// Share of Shanghai in a book (its weight over the sum).
double ShanghaiShare(Book book);
// A plausible 6-digit region code in the province: PP + prefecture + county.
std::string DrawRegionCode(uint8_t province, Rng& rng);

// Institutions: a few national banks (large balances everywhere) and many
// regional ones (city commercial and rural banks, each in one province).
enum class Tier : uint8_t {
  kStateOwned = 0,
  kPolicy = 1,
  kJointStock = 2,
  kCityCommercial = 3,
  kRural = 4
};
inline constexpr size_t kTierCount = 5;
struct Institution {
  std::string id;  // B0001.. (neutral ids, no real bank is meant)
  Tier tier;
  uint8_t province;  // home province for regional banks; 0 for national ones
  double weight;     // share within its tier (national) or its province (regional)
};
// All institutions, ids ascending; index = position.
std::span<const Institution> Institutions();
// Draws the lending institution of a loan in `province` from `book`.
uint32_t DrawInstitution(Book book, uint8_t province, Rng& rng);

// Industry classes (GB/T 4754-2017) with the propensity of a loan for that
// purpose to carry each declared flag. Families group what a cell asks for.
enum class IndustryFamily : uint8_t {
  kMfgGeneral = 0,    // manufacturing, not high-tech, not typically green
  kMfgGreen,          // manufacturing, not high-tech, green purpose (NEV, PV, recycling)
  kMfgHighTech,       // in the high-tech table
  kMfgHighTechGreen,  // in the high-tech table and green (batteries, fibre)
  kCorporateGeneral,  // non-manufacturing sections for large/medium firms
  kCorporateTech,     // software, research, technology services
  kCorporateGreen,    // renewables, rail, environment, water
  kSmallBusiness,     // services, trade, farming, transport of small firms and shops
  kCount,
};
struct IndustryClass {
  std::string_view code;  // e.g. "C3670"
  double weight;          // relative frequency within its family
  double tech;            // probability of tech_enterprise when not fixed by the cell
  double green;           // probability of green when not fixed by the cell
  double digital;         // probability of digital_economy
  double elderly;         // probability of elderly_care
};
std::span<const IndustryClass> IndustryClasses(IndustryFamily family);
const IndustryClass& DrawIndustry(IndustryFamily family, Rng& rng);

// Draws an index from non-negative weights (at least one positive).
size_t DrawWeighted(std::span<const double> weights, Rng& rng);

}  // namespace loanledger::gen
