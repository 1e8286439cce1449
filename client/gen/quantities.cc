#include "client/gen/quantities.h"

#include <cmath>

#include "client/gen/tables.h"
#include "schema/category.h"
#include "schema/check.h"

namespace loanledger::gen {
namespace {

constexpr double kFenPerTrillionYuan = 1e14;

int64_t Fen(double trillion_yuan, double scale) {
  const double fen = trillion_yuan * kFenPerTrillionYuan * scale;
  LL_CHECK(fen >= 0 && fen < 9e18);
  return static_cast<int64_t>(std::llround(fen));
}

int64_t YearAgo(int64_t balance_fen, double yoy_pct) {
  return static_cast<int64_t>(
      std::llround(static_cast<double>(balance_fen) / (1.0 + yoy_pct / 100.0)));
}

}  // namespace

std::string_view QuantityName(Quantity q) {
  switch (q) {
    case Quantity::kMlt:
      return "MANUFACTURING_MLT";
    case Quantity::kHighTech:
      return "HIGH_TECH_MANUFACTURING";
    case Quantity::kSrdi:
      return "SRDI";
    case Quantity::kInclusiveExShanghai:
      return "INCLUSIVE_SMALL_MICRO outside Shanghai";
    case Quantity::kShanghaiInclusive:
      return "Shanghai INCLUSIVE_SMALL_MICRO";
    case Quantity::kShanghaiTech:
      return "Shanghai TECH_ENTERPRISE";
    case Quantity::kShanghaiGreen:
      return "Shanghai GREEN";
  }
  return "?";
}

QuantityMask QuantitiesOf(const LoanAttributes& a) {
  const CategoryMask c = Classify(a);
  const bool shanghai = ProvinceOf(a.region_code) == kShanghai;
  QuantityMask m = 0;
  if (c & Bit(Category::kManufacturingMlt)) m |= QBit(Quantity::kMlt);
  if (c & Bit(Category::kHighTechManufacturing)) m |= QBit(Quantity::kHighTech);
  if (c & Bit(Category::kSrdi)) m |= QBit(Quantity::kSrdi);
  if (c & Bit(Category::kInclusiveSmallMicro)) {
    m |= QBit(shanghai ? Quantity::kShanghaiInclusive : Quantity::kInclusiveExShanghai);
  }
  if (shanghai && (c & Bit(Category::kTechEnterprise))) m |= QBit(Quantity::kShanghaiTech);
  if (shanghai && (c & Bit(Category::kGreen))) m |= QBit(Quantity::kShanghaiGreen);
  return m;
}

QuantityDesign Design(Quantity q) {
  switch (q) {
    case Quantity::kMlt:
      return {13.88, 14.8};
    // Not published: about a seventh of manufacturing lending.
    case Quantity::kHighTech:
      return {3.90, 12.0};
    case Quantity::kSrdi:
      return {4.26, 13.5};
    case Quantity::kInclusiveExShanghai: {
      const QuantityDesign sh = Design(Quantity::kShanghaiInclusive);
      return {kNationalInclusiveTrillion - sh.balance_trillion, kNationalInclusiveYoyPct};
    }
    // Shanghai published "above one trillion, double-digit growth" for all three.
    case Quantity::kShanghaiInclusive:
      return {1.08, 12.5};
    case Quantity::kShanghaiTech:
      return {1.15, 16.0};
    case Quantity::kShanghaiGreen:
      return {1.45, 22.0};
  }
  LL_CHECK(false);
  return {};
}

Targets TargetsAt(double scale) {
  Targets t;
  for (size_t i = 0; i < kQuantityCount; ++i) {
    const auto q = static_cast<Quantity>(i);
    const QuantityDesign d = Design(q);
    t.fen[1][i] = Fen(d.balance_trillion, scale);
    t.fen[0][i] = YearAgo(t.fen[1][i], d.yoy_pct);
  }
  // National inclusive lending: exact national figures, Shanghai's part
  // subtracted, so that their sum is the published balance and growth.
  const auto ex = static_cast<size_t>(Quantity::kInclusiveExShanghai);
  const auto sh = static_cast<size_t>(Quantity::kShanghaiInclusive);
  const int64_t national1 = Fen(kNationalInclusiveTrillion, scale);
  const int64_t national0 = YearAgo(national1, kNationalInclusiveYoyPct);
  t.fen[1][ex] = national1 - t.fen[1][sh];
  t.fen[0][ex] = national0 - t.fen[0][sh];
  LL_CHECK(t.fen[1][ex] >= 0 && t.fen[0][ex] >= 0);
  return t;
}

}  // namespace loanledger::gen
