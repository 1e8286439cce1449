#include "client/gen/tables.h"

#include <array>
#include <cstdio>
#include <vector>

#include "schema/category.h"
#include "schema/check.h"

namespace loanledger::gen {
namespace {

// Shares of the loan book by province, per book, in percent (rough shapes of
// the published provincial figures: Guangdong, Jiangsu, Zhejiang, Shandong,
// Beijing and Shanghai large; Tibet, Qinghai, Ningxia small). Beijing's
// corporate share is high because national groups borrow at their head
// offices there.
constexpr std::array<Province, 31> kProvinces = {{
    {11, "Beijing", {7.0, 2.2, 3.0}, 1},         {12, "Tianjin", {1.9, 1.2, 1.2}, 1},
    {13, "Hebei", {2.8, 3.6, 3.5}, 11},          {14, "Shanxi", {1.6, 1.5, 1.4}, 11},
    {15, "Inner Mongolia", {1.2, 1.2, 1.0}, 12}, {21, "Liaoning", {1.9, 1.5, 1.8}, 14},
    {22, "Jilin", {1.0, 0.9, 0.9}, 9},           {23, "Heilongjiang", {0.9, 1.0, 0.9}, 13},
    {31, "Shanghai", {5.0, 3.1, 4.3}, 1},        {32, "Jiangsu", {9.8, 11.5, 9.0}, 13},
    {33, "Zhejiang", {9.0, 12.0, 9.5}, 11},      {34, "Anhui", {3.3, 3.8, 3.3}, 16},
    {35, "Fujian", {3.2, 3.5, 3.6}, 9},          {36, "Jiangxi", {2.3, 2.8, 2.3}, 11},
    {37, "Shandong", {5.8, 7.0, 5.8}, 16},       {41, "Henan", {3.5, 4.2, 4.0}, 17},
    {42, "Hubei", {3.6, 3.6, 3.3}, 13},          {43, "Hunan", {3.0, 3.3, 3.1}, 14},
    {44, "Guangdong", {10.5, 10.5, 13.0}, 21},   {45, "Guangxi", {2.0, 2.0, 2.1}, 14},
    {46, "Hainan", {0.5, 0.5, 0.7}, 4},          {50, "Chongqing", {2.5, 2.2, 2.3}, 1},
    {51, "Sichuan", {4.6, 4.3, 4.5}, 21},        {52, "Guizhou", {1.8, 1.2, 1.4}, 9},
    {53, "Yunnan", {1.9, 1.6, 1.8}, 16},         {54, "Tibet", {0.3, 0.15, 0.1}, 7},
    {61, "Shaanxi", {2.3, 1.8, 2.0}, 10},        {62, "Gansu", {1.1, 0.9, 0.8}, 14},
    {63, "Qinghai", {0.3, 0.25, 0.2}, 8},        {64, "Ningxia", {0.3, 0.3, 0.3}, 5},
    {65, "Xinjiang", {1.2, 1.0, 0.9}, 14},
}};

// Weights of each bank tier in each book (percent).
constexpr double kTierWeight[kBookCount][kTierCount] = {
    {50, 10, 24, 12, 4},  // corporate: state-owned, policy, joint-stock, city, rural
    {38, 0, 12, 20, 30},  // small business: rural and city banks matter
    {62, 0, 20, 11, 7},   // households
};

// National banks in id order (B0001..B0020): tier and weight within the tier.
struct NationalBank {
  Tier tier;
  double weight;
};
constexpr std::array<NationalBank, 20> kNationalBanks = {{
    {Tier::kStateOwned, 22}, {Tier::kStateOwned, 20}, {Tier::kStateOwned, 19},
    {Tier::kStateOwned, 16}, {Tier::kStateOwned, 8},  {Tier::kStateOwned, 15},
    {Tier::kPolicy, 70},     {Tier::kPolicy, 30},     {Tier::kJointStock, 14},
    {Tier::kJointStock, 12}, {Tier::kJointStock, 11}, {Tier::kJointStock, 10},
    {Tier::kJointStock, 9},  {Tier::kJointStock, 8},  {Tier::kJointStock, 8},
    {Tier::kJointStock, 7},  {Tier::kJointStock, 7},  {Tier::kJointStock, 6},
    {Tier::kJointStock, 4},  {Tier::kJointStock, 4},
}};
// Regional banks: one city and one rural bank per province at least, the
// rest spread by the province's weight in the corporate (city) or small
// business (rural) book.
constexpr size_t kCityBanks = 60;
constexpr size_t kRuralBanks = 80;

struct InstitutionTable {
  std::vector<Institution> all;
  std::vector<uint32_t> national_by_tier[kTierCount];
  // regional[tier - kCityCommercial][province position]: indexes into all.
  std::vector<uint32_t> regional[2][kProvinces.size()];
};

size_t ProvincePosition(uint8_t code) {
  for (size_t i = 0; i < kProvinces.size(); ++i) {
    if (kProvinces[i].code == code) return i;
  }
  LL_CHECK_MSG(false, "unknown province");
  return 0;
}

// Banks per province: 1 each, then `total - 31` by largest remainder.
std::array<size_t, 31> SpreadBanks(size_t total, Book book) {
  std::array<size_t, 31> count{};
  double sum = 0;
  for (const Province& p : kProvinces) sum += p.weight[static_cast<size_t>(book)];
  const size_t extra = total - kProvinces.size();
  std::array<double, 31> remainder{};
  size_t given = 0;
  for (size_t i = 0; i < kProvinces.size(); ++i) {
    const double share = extra * kProvinces[i].weight[static_cast<size_t>(book)] / sum;
    count[i] = 1 + static_cast<size_t>(share);
    remainder[i] = share - static_cast<size_t>(share);
    given += static_cast<size_t>(share);
  }
  for (; given < extra; ++given) {
    size_t best = 0;
    for (size_t i = 1; i < remainder.size(); ++i) {
      if (remainder[i] > remainder[best]) best = i;
    }
    ++count[best];
    remainder[best] = -1;
  }
  return count;
}

std::string BankId(unsigned number) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "B%04u", number);
  return buf;
}

InstitutionTable BuildInstitutions() {
  InstitutionTable t;
  unsigned number = 1;
  for (const NationalBank& b : kNationalBanks) {
    t.national_by_tier[static_cast<size_t>(b.tier)].push_back(static_cast<uint32_t>(t.all.size()));
    t.all.push_back(Institution{BankId(number++), b.tier, 0, b.weight});
  }
  const Tier tiers[2] = {Tier::kCityCommercial, Tier::kRural};
  const size_t totals[2] = {kCityBanks, kRuralBanks};
  const Book books[2] = {Book::kCorporate, Book::kSme};
  for (size_t k = 0; k < 2; ++k) {
    number = k == 0 ? 101 : 201;
    const std::array<size_t, 31> count = SpreadBanks(totals[k], books[k]);
    for (size_t p = 0; p < kProvinces.size(); ++p) {
      for (size_t j = 0; j < count[p]; ++j) {
        t.regional[k][p].push_back(static_cast<uint32_t>(t.all.size()));
        t.all.push_back(Institution{BankId(number++), tiers[k], kProvinces[p].code, 1.0});
      }
    }
  }
  return t;
}

const InstitutionTable& Table() {
  static const InstitutionTable table = BuildInstitutions();
  return table;
}

// Industry classes by family. Columns: code, weight, tech, green, digital,
// elderly propensities (used where the cell does not fix the flag).
constexpr IndustryClass kMfgGeneral[] = {
    {"C1311", 2, .03, .02, .02, 0}, {"C1440", 2, .03, .02, .02, 0}, {"C1512", 2, .02, .01, .02, 0},
    {"C1711", 3, .03, .03, .02, 0}, {"C1810", 3, .02, .02, .03, 0}, {"C2211", 1, .03, .05, .01, 0},
    {"C2511", 4, .03, .02, .02, 0}, {"C2614", 5, .08, .04, .02, 0}, {"C2651", 3, .08, .03, .02, 0},
    {"C2822", 2, .05, .03, .02, 0}, {"C2911", 2, .05, .02, .02, 0}, {"C3011", 3, .03, .04, .01, 0},
    {"C3120", 6, .04, .05, .02, 0}, {"C3130", 5, .04, .04, .02, 0}, {"C3216", 3, .04, .05, .02, 0},
    {"C3311", 3, .05, .02, .02, 0}, {"C3412", 2, .12, .02, .03, 0}, {"C3421", 3, .15, .02, .05, 0},
    {"C3441", 2, .10, .03, .03, 0}, {"C3511", 2, .10, .02, .03, 0}, {"C3521", 2, .10, .02, .03, 0},
    {"C3611", 5, .10, .02, .05, 0}, {"C3670", 6, .10, .04, .04, 0}, {"C3731", 2, .08, .03, .02, 0},
    {"C3811", 2, .12, .05, .04, 0}, {"C3851", 3, .08, .03, .08, 0}, {"C3871", 1, .06, .10, .03, 0},
    {"C4190", 1, .03, .02, .02, 0}, {"C4320", 1, .05, .02, .02, 0},
};
constexpr IndustryClass kMfgGreen[] = {
    {"C3612", 4, .30, .90, .10, 0},  // new-energy vehicles
    {"C3825", 3, .35, .90, .05, 0},  // photovoltaic equipment
    {"C3415", 2, .30, .80, .03, 0},  // turbines (wind)
    {"C4210", 2, .05, .90, .02, 0},  // metal waste recycling
};
constexpr IndustryClass kMfgHighTech[] = {
    {"C2710", 4, .45, .02, .03, 0},   {"C2720", 4, .45, .02, .03, .02},
    {"C2740", 3, .35, .02, .02, .02}, {"C2761", 3, .60, .02, .03, 0},
    {"C2770", 1, .30, .02, .02, .05}, {"C3741", 1, .60, .02, .10, 0},
    {"C3562", 1, .70, .02, .60, 0},   {"C3921", 3, .55, .02, .90, 0},
    {"C3922", 3, .50, .02, .90, 0},   {"C3940", 1, .60, .02, .70, 0},
    {"C3951", 1, .35, .02, .80, 0},   {"C3961", 1, .45, .02, .90, 0},
    {"C3973", 4, .70, .02, .95, 0},   {"C3974", 3, .55, .03, .90, 0},
    {"C3976", 1, .55, .03, .85, 0},   {"C3982", 3, .45, .02, .85, 0},
    {"C3911", 2, .50, .02, .95, 0},   {"C3914", 1, .55, .02, .90, 0},
    {"C3581", 2, .55, .02, .10, .05}, {"C3584", 1, .50, .02, .05, .05},
    {"C4011", 2, .55, .03, .40, 0},   {"C4021", 1, .50, .10, .20, 0},
    {"C2664", 0.5, .40, .02, .10, 0},
};
constexpr IndustryClass kMfgHighTechGreen[] = {
    {"C3841", 4, .55, .85, .20, 0},  // lithium-ion batteries
    {"C4021", 1, .50, .70, .20, 0},  // environmental monitoring instruments
};
constexpr IndustryClass kCorporateGeneral[] = {
    {"B0610", 2, .01, 0, 0, 0},         {"B0711", 2, .02, 0, 0, 0},
    {"D4411", 3, .02, .05, 0, 0},       {"D4420", 4, .03, .10, .05, 0},
    {"D4511", 1, .01, .05, 0, 0},       {"D4610", 1, .01, .05, 0, 0},
    {"E4710", 4, .02, .02, 0, 0},       {"E4812", 3, .02, .02, 0, 0},
    {"E4910", 1, .03, .02, .02, 0},     {"F5164", 3, .01, 0, .01, 0},
    {"F5211", 1, .01, 0, .05, 0},       {"F5261", 1, .01, .05, .02, 0},
    {"G5430", 2, .01, .02, .03, 0},     {"G5531", 1, .01, .03, .02, 0},
    {"G5611", 1, .02, .02, .03, 0},     {"G5920", 1, .02, .02, .05, 0},
    {"H6110", 1, .01, .01, .01, .005},  {"I6312", 2, .05, .02, .90, 0},
    {"K7010", 10, .01, .02, .01, .002}, {"K7040", 2, .01, .01, .02, .002},
    {"L7211", 4, .02, .02, .05, 0},     {"L7212", 12, .02, .03, .03, 0},
    {"L7221", 3, .05, .03, .05, 0},     {"N7810", 4, .01, .05, .03, 0},
    {"N7850", 1, .01, .10, .01, 0},     {"Q8411", 1, .02, 0, .05, .03},
    {"Q8514", 0.5, 0, 0, .02, .95},     {"P8341", 0.5, .02, 0, .05, 0},
    {"R8810", 0.3, .01, 0, .10, 0},     {"R9020", 0.5, .01, 0, .05, .005},
    {"A0313", 1, .03, .02, .01, 0},     {"M7483", 0.5, .10, .02, .10, 0},
};
constexpr IndustryClass kCorporateTech[] = {
    {"I6510", 5, .60, .02, .90, .01}, {"I6520", 2, .70, .02, .95, 0},
    {"I6531", 2, .50, .02, .90, 0},   {"I6550", 2, .45, .05, .90, 0},
    {"I6429", 1, .40, .02, .90, .01}, {"M7310", 2, .70, .03, .20, 0},
    {"M7320", 3, .70, .03, .20, 0},   {"M7512", 2, .60, .03, .10, 0},
    {"M7514", 1, .60, .40, .10, 0},
};
constexpr IndustryClass kCorporateGreen[] = {
    {"D4413", 3, .05, .95, .02, 0}, {"D4415", 4, .08, .95, .03, 0}, {"D4416", 4, .10, .95, .03, 0},
    {"D4417", 1, .05, .90, .02, 0}, {"D4420", 2, .05, .60, .10, 0}, {"G5311", 3, .03, .70, .05, 0},
    {"G5411", 1, .02, .60, .03, 0}, {"G5412", 2, .03, .80, .05, 0}, {"E4811", 2, .02, .60, .02, 0},
    {"N7610", 1, .02, .70, .02, 0}, {"N7721", 2, .10, .90, .03, 0}, {"N7723", 1, .08, .90, .03, 0},
    {"N7810", 1, .02, .40, .03, 0},
};
constexpr IndustryClass kSmallBusiness[] = {
    {"A0111", 2, .01, .03, 0, 0},   {"A0141", 3, .01, .03, 0, 0},
    {"A0313", 2, .01, .02, 0, 0},   {"A0412", 1, .01, .03, 0, 0},
    {"A0511", 1, .02, .02, .02, 0}, {"E4710", 2, .01, .01, 0, 0},
    {"E5011", 3, .01, .01, .01, 0}, {"F5123", 2, .01, 0, .02, 0},
    {"F5137", 1, .01, 0, .02, 0},   {"F5211", 1, .01, 0, .03, 0},
    {"F5212", 3, .01, 0, .05, 0},   {"F5221", 2, .01, 0, .02, 0},
    {"F5232", 2, .01, 0, .05, 0},   {"F5261", 1, .01, .05, .02, 0},
    {"F5292", 3, .05, 0, .60, 0},   {"G5430", 4, .01, .03, .03, 0},
    {"G5920", 1, .01, .01, .05, 0}, {"G6020", 1, .02, .02, .20, 0},
    {"H6110", 2, .01, .01, .02, 0}, {"H6210", 6, .01, 0, .02, 0},
    {"H6220", 2, .01, 0, .03, 0},   {"I6510", 1, .30, 0, .90, 0},
    {"K7020", 1, .01, 0, .02, .02}, {"L7299", 2, .02, 0, .05, 0},
    {"L7251", 1, .02, 0, .20, 0},   {"M7491", 0.5, .20, .02, .10, 0},
    {"O8010", 2, .01, 0, .03, .03}, {"O8051", 0.5, .01, 0, 0, 0},
    {"O8060", 2, .01, 0, .02, 0},   {"O8111", 2, .01, .02, .02, 0},
    {"P8391", 1, .01, 0, .05, 0},   {"Q8431", 1, .02, 0, .02, .05},
    {"Q8514", 0.5, 0, 0, .02, .95}, {"R8930", 0.5, .01, 0, .02, .02},
    {"R9011", 0.3, .01, 0, 0, 0},
};

template <size_t N>
constexpr std::span<const IndustryClass> Span(const IndustryClass (&a)[N]) {
  return {a, N};
}

}  // namespace

std::span<const Province> Provinces() { return kProvinces; }

uint8_t DrawProvince(Book book, bool shanghai, Rng& rng) {
  if (shanghai) return kShanghai;
  const auto b = static_cast<size_t>(book);
  double sum = 0;
  for (const Province& p : kProvinces) {
    if (p.code != kShanghai) sum += p.weight[b];
  }
  double x = rng.Uniform() * sum;
  for (const Province& p : kProvinces) {
    if (p.code == kShanghai) continue;
    if (x < p.weight[b]) return p.code;
    x -= p.weight[b];
  }
  return kProvinces.back().code;  // rounding at the very end of the range
}

double ShanghaiShare(Book book) {
  const auto b = static_cast<size_t>(book);
  double sum = 0;
  for (const Province& p : kProvinces) sum += p.weight[b];
  return kProvinces[ProvincePosition(kShanghai)].weight[b] / sum;
}

std::string DrawRegionCode(uint8_t province, Rng& rng) {
  const Province& p = kProvinces[ProvincePosition(province)];
  // The capital (prefecture 01) carries about a third of the loans.
  unsigned prefecture = 1;
  if (p.prefectures > 1 && !rng.Bernoulli(0.35)) {
    prefecture = 1 + static_cast<unsigned>(rng.Below(p.prefectures));
  }
  // Municipalities number their districts directly; elsewhere 01 is the
  // city proper and counties follow.
  const unsigned county = p.prefectures == 1 ? 1 + static_cast<unsigned>(rng.Below(16))
                                             : 2 + static_cast<unsigned>(rng.Below(9));
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02u%02u%02u", static_cast<unsigned>(province) % 100u,
                prefecture % 100u, county % 100u);
  return buf;
}

std::span<const Institution> Institutions() { return Table().all; }

uint32_t DrawInstitution(Book book, uint8_t province, Rng& rng) {
  const InstitutionTable& t = Table();
  const size_t tier = DrawWeighted(kTierWeight[static_cast<size_t>(book)], rng);
  if (tier >= static_cast<size_t>(Tier::kCityCommercial)) {
    const auto& banks =
        t.regional[tier - static_cast<size_t>(Tier::kCityCommercial)][ProvincePosition(province)];
    LL_CHECK(!banks.empty());
    return banks[rng.Below(banks.size())];
  }
  const std::vector<uint32_t>& banks = t.national_by_tier[tier];
  double weights[16];
  LL_CHECK(banks.size() <= 16);
  for (size_t i = 0; i < banks.size(); ++i) weights[i] = t.all[banks[i]].weight;
  return banks[DrawWeighted({weights, banks.size()}, rng)];
}

std::span<const IndustryClass> IndustryClasses(IndustryFamily family) {
  switch (family) {
    case IndustryFamily::kMfgGeneral:
      return Span(kMfgGeneral);
    case IndustryFamily::kMfgGreen:
      return Span(kMfgGreen);
    case IndustryFamily::kMfgHighTech:
      return Span(kMfgHighTech);
    case IndustryFamily::kMfgHighTechGreen:
      return Span(kMfgHighTechGreen);
    case IndustryFamily::kCorporateGeneral:
      return Span(kCorporateGeneral);
    case IndustryFamily::kCorporateTech:
      return Span(kCorporateTech);
    case IndustryFamily::kCorporateGreen:
      return Span(kCorporateGreen);
    case IndustryFamily::kSmallBusiness:
      return Span(kSmallBusiness);
    case IndustryFamily::kCount:
      break;
  }
  LL_CHECK_MSG(false, "unknown industry family");
  return {};
}

const IndustryClass& DrawIndustry(IndustryFamily family, Rng& rng) {
  const std::span<const IndustryClass> classes = IndustryClasses(family);
  double sum = 0;
  for (const IndustryClass& c : classes) sum += c.weight;
  double x = rng.Uniform() * sum;
  for (const IndustryClass& c : classes) {
    if (x < c.weight) return c;
    x -= c.weight;
  }
  return classes.back();
}

size_t DrawWeighted(std::span<const double> weights, Rng& rng) {
  double sum = 0;
  for (double w : weights) sum += w;
  LL_CHECK(sum > 0);
  double x = rng.Uniform() * sum;
  size_t last_positive = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (weights[i] <= 0) continue;
    if (x < weights[i]) return i;
    x -= weights[i];
    last_positive = i;
  }
  return last_positive;
}

}  // namespace loanledger::gen
