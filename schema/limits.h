// Protocol and domain bounds (STYLE.md "Limits"): every bound named, with
// the reason for its value. Operational bounds (timeouts, connection caps)
// live in the server's config instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

namespace loanledger {

// docs/data.md: a batch is at most 65,536 events or 16 MiB.
inline constexpr size_t kBatchEventsMax = 65536;
inline constexpr size_t kBatchBytesMax = 16u << 20;
// A frame carries one batch plus envelope; 17 MiB leaves room for the envelope.
inline constexpr size_t kFrameBytesMaxDefault = 17u << 20;

// Field bounds (docs/data.md).
inline constexpr size_t kInstitutionIdBytesMax = 32;
inline constexpr size_t kLoanIdBytesMax = 64;
inline constexpr int64_t kAmountFenMax = 1'000'000'000'000'000;  // 10^15 fen
inline constexpr uint16_t kTermMonthsMax = 600;
// A credit line is a declared figure, compared, never summed: docs/data.md allows
// any int64 >= 0.
inline constexpr int64_t kCreditLineFenMax = std::numeric_limits<int64_t>::max();

// A loan's outstanding balance may not exceed this (10^16 fen = 100 billion
// yuan, beyond any single loan in the world); a DISBURSE past it is rejected
// with kBalanceLimit.
inline constexpr int64_t kLoanBalanceFenMax = 10'000'000'000'000'000;

// Ledger capacity: the sum of every DISBURSE ever applied (all loans) stays
// at or below 2^62 fen (46 quadrillion yuan, ~180x China's loan book). Every
// aggregate (a balance, a flow, a cumulative sum, the delta of a batch) is
// bounded by that sum, so int64 arithmetic on aggregates cannot overflow;
// a batch that would pass the cap is rejected with kLedgerCapacity.
inline constexpr int64_t kLedgerDisbursedFenMax = int64_t{1} << 62;

// Series queries return at most this many points (a daily series over the
// whole valid date range is ~76,700).
inline constexpr size_t kSeriesPointsMax = 100'000;

}  // namespace loanledger
