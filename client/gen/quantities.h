// The calibrated quantities: the published figures, restated as seven
// balances that do not overlap where a calibration loan is added. National
// inclusive lending is split into Shanghai and the rest so that one
// calibration loan moves exactly one quantity.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "schema/event.h"

namespace loanledger::gen {

enum class Quantity : uint8_t {
  kMlt = 0,                  // MANUFACTURING_MLT, national
  kHighTech = 1,             // HIGH_TECH_MANUFACTURING, national
  kSrdi = 2,                 // SRDI, national
  kInclusiveExShanghai = 3,  // INCLUSIVE_SMALL_MICRO outside Shanghai
  kShanghaiInclusive = 4,    // INCLUSIVE_SMALL_MICRO in province 31
  kShanghaiTech = 5,         // TECH_ENTERPRISE in province 31
  kShanghaiGreen = 6,        // GREEN in province 31
};
inline constexpr size_t kQuantityCount = 7;
using QuantityMask = uint8_t;
inline constexpr QuantityMask QBit(Quantity q) {
  return QuantityMask(1u << static_cast<unsigned>(q));
}

std::string_view QuantityName(Quantity q);

// The quantities a loan with these attributes counts in.
QuantityMask QuantitiesOf(const LoanAttributes& attributes);

// Design targets at scale 1 (trillion yuan at 2024-09-30, yoy percent).
// National ones are the published figures; HIGH_TECH's balance and
// Shanghai's are design choices consistent with what was published
// (README.md).
struct QuantityDesign {
  double balance_trillion;
  double yoy_pct;
};
QuantityDesign Design(Quantity q);
inline constexpr double kNationalInclusiveTrillion = 32.90;
inline constexpr double kNationalInclusiveYoyPct = 14.5;

// Targets in fen at a scale, for [0] 2023-09-30 and [1] 2024-09-30. The
// year-ago targets are balance / (1 + yoy), rounded to the fen; for
// inclusive lending outside Shanghai they are the national target minus
// Shanghai's, so that the national figures hold exactly.
struct Targets {
  std::array<std::array<int64_t, kQuantityCount>, 2> fen{};
};
Targets TargetsAt(double scale);

}  // namespace loanledger::gen
