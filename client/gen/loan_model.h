// One synthetic loan: the random decisions that define it (LoanDraw) and the
// pure function that turns them into its events (BuildEvents). Kept apart so
// that a drawn loan can be rebuilt with a smaller principal (the last loan of
// a cell, see portfolio.h) without drawing again.
#pragma once

#include <cstdint>
#include <vector>

#include "schema/date.h"
#include "schema/event.h"

namespace loanledger::gen {

// The history window and the two dates the calibration is about.
inline constexpr Day kHistoryFirst = 18993;  // 2022-01-01
inline constexpr Day kHistoryLast = 20088;   // 2024-12-31
inline constexpr Day kYearAgoDate = 19630;   // 2023-09-30 (D0)
inline constexpr Day kReferenceDay = 19996;  // 2024-09-30 (D1)

enum class Repayment : uint8_t {
  kBullet = 0,          // interest only, principal at maturity
  kEqualPrincipal = 1,  // equal principal instalments every period_months
  kAnnuity = 2,         // monthly equal payments (mortgage style)
};

struct LoanDraw {
  uint32_t institution = 0;         // index into Institutions()
  LoanAttributes attributes;        // at the loan's first event
  bool reclassified = false;        // a RECLASSIFY event changes the attributes
  LoanAttributes attributes_after;  // from the RECLASSIFY on (when reclassified)
  double reclassify_at = 0;         // position of the RECLASSIFY in the visible life, 0..1
  int64_t principal_fen = 0;        // total to disburse, > 0
  Day origination = 0;              // first disbursement; may precede kHistoryFirst
  Repayment repayment = Repayment::kBullet;
  uint8_t period_months = 1;     // instalment period for kEqualPrincipal
  uint8_t grace_months = 0;      // no principal due before (tranches fall inside)
  uint8_t tranches = 1;          // disbursements, two months apart
  double annual_rate = 0.04;     // for kAnnuity
  double prepay_at = -1;         // full prepayment at this fraction of the term; < 0: none
  double default_at = -1;        // stops paying at this fraction of the term; < 0: never
  double recovery_share = 0;     // after a default, share of the balance recovered (REPAY)
  uint8_t recovery_months = 0;   // default to recovery
  uint8_t write_off_months = 0;  // default to WRITE_OFF of the rest
};

// An event of a planned loan; seq is its position + 1 in the loan's list.
struct PlannedEvent {
  Day business_date = 0;
  EventKind kind = EventKind::kDisburse;
  uint8_t attributes_version = 0;  // 0: LoanDraw::attributes, 1: attributes_after
  int64_t amount_fen = 0;
};

// The loan as of D0 and D1 (docs/figures.md as-of: events dated <= the date).
struct LoanOutcome {
  int64_t balance_fen[2] = {0, 0};  // [0] at kYearAgoDate, [1] at kReferenceDay
  int8_t version[2] = {-1, -1};     // attributes version then; -1: no event yet
};

// Turns a draw into events dated kHistoryFirst..kHistoryLast. What happened
// before kHistoryFirst is summed into one opening DISBURSE on kHistoryFirst
// (the book as migrated at the start of the history). Returns false when the
// loan has no event in the window (repaid before it). The events satisfy
// docs/data.md: the first is a DISBURSE, dates never decrease, no REPAY or
// WRITE_OFF exceeds the balance, amounts are in 1..10^15 (0 for RECLASSIFY).
bool BuildEvents(const LoanDraw& draw, std::vector<PlannedEvent>& events, LoanOutcome& outcome);

// Calendar helpers.
Day AddMonths(Day day, int months);  // same day of month, clamped to the month's end
Day NextWeekday(Day day);            // day itself, or the Monday after a weekend

}  // namespace loanledger::gen
