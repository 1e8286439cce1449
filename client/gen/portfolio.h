// The Planner decides the portfolio loan by loan, in two phases.
//
// 1. Random loans, drawn cell by cell (cells.h) until each cell's design
//    balance at 2024-09-30 is reached. Two controls keep the random part
//    below the targets and near the designed growth:
//    - the guard: a loan that would take any calibrated quantity above
//      kCapShare of its target, at either date, is drawn again;
//    - the balance controller: a loan open on either date is chosen among
//      up to kCandidatesMax draws, the one that keeps the cell's filled
//      shares at 2023-09-30 and 2024-09-30 closest (so that the cell's
//      growth follows its design); loans that are only history (closed
//      before, or opened after, both dates) keep their natural rate.
// 2. Calibration loans: for each quantity, the gaps to the targets at both
//    dates (never negative, thanks to the guard) are filled with ordinary
//    loans whose attributes put them in exactly that one quantity: loans
//    open on both dates, new ones (disbursed after 2023-09-30) and old ones
//    (repaid between the dates). At the end the calibrated quantities equal
//    their targets to the fen (checked).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "client/gen/cells.h"
#include "client/gen/loan_model.h"
#include "client/gen/quantities.h"
#include "client/gen/random.h"
#include "schema/category.h"

namespace loanledger::gen {

struct PlannedLoan {
  uint32_t institution = 0;          // index into Institutions()
  uint64_t number = 0;               // 1, 2, ...: the loan id is L + 10 digits of it
  LoanAttributes attributes[2];      // by PlannedEvent::attributes_version
  std::vector<PlannedEvent> events;  // seq order
  LoanOutcome outcome;               // as of 2023-09-30 and 2024-09-30
  bool calibration = false;          // added by the calibration phase
};

struct QuantityStats {
  int64_t target_fen[2] = {0, 0};  // [0] 2023-09-30, [1] 2024-09-30
  int64_t random_fen[2] = {0, 0};  // reached by the random loans
  uint64_t calibration_loans = 0;  // added to close the gap
};

class Planner {
 public:
  // REQUIRES: kScaleMin <= scale <= kScaleMax (generator.h).
  Planner(double scale, uint64_t seed);

  // The next loan; false when the portfolio is complete.
  bool Next(PlannedLoan& loan);

  // Final once Next() has returned false.
  const std::array<QuantityStats, kQuantityCount>& quantities() const { return quantities_; }
  uint64_t redraws() const { return redraws_; }
  // As-of balances by category (national) of the loans planned so far.
  const int64_t (&category_balance_fen() const)[2][kCategoryCount] { return category_balance_fen_; }

  // Share of a target the random loans may reach; the rest is calibration.
  static constexpr double kCapShare = 0.995;
  // Draws compared by the balance controller.
  static constexpr int kCandidatesMax = 4;
  // Draws per attempt at a loan (history-only draws after the first are skipped).
  static constexpr int kAttemptsMax = 12;
  // A cell that fails this many times without a loan open on a reference
  // date (every such draw too big or over a cap) is closed; history-only
  // loans in between do not count as progress.
  static constexpr uint32_t kCellFailuresMax = 8;

 private:
  struct CellState {
    CellSpec spec;
    int64_t budget_fen[2] = {0, 0};  // design balance at D0, D1
    int64_t filled_fen[2] = {0, 0};
    double b1_sum_fen = 0;  // over accepted loans, for the mean
    uint64_t loans = 0;
    double positive_b1_sum_fen = 0;  // over loans open at D1
    uint64_t positive_loans = 0;
    uint32_t failures = 0;  // attempts without a loan open on a reference date, since the last one
    bool open = true;
  };
  struct Candidate {
    LoanDraw draw;
    std::vector<PlannedEvent> events;
    LoanOutcome outcome;
    std::array<std::array<int64_t, kQuantityCount>, 2> contribution{};
  };
  enum class Shape : uint8_t { kBoth, kNew, kOld };
  struct CalibrationTask {
    Quantity quantity;
    Shape shape;
    int64_t remaining_fen;  // still to place
    uint64_t loans_left;    // loans to place it in
  };

  bool NextRandom(PlannedLoan& loan);
  int PickCell();
  static double CellWeight(const CellState& cell);
  bool TryCell(CellState& cell, PlannedLoan& loan);
  // What became of a draw: a candidate, no loan at all (repaid before the
  // history), or a loan open on a reference date that cannot be taken (too
  // big for the cell's rest, or over a cap).
  enum class Draw : uint8_t { kCandidate, kNoLoan, kRejected };
  Draw MakeCandidate(const CellState& cell, Candidate& c);
  void Contribute(const LoanAttributes (&attributes)[2], const LoanOutcome& outcome,
                  std::array<std::array<int64_t, kQuantityCount>, 2>& out) const;
  bool ExceedsCaps(const Candidate& c) const;
  static double Imbalance(const CellState& cell, int64_t add0, int64_t add1);
  void Accept(CellState& cell, Candidate& c, PlannedLoan& loan);
  void Count(const PlannedLoan& loan);

  void StartCalibration();
  bool NextCalibration(PlannedLoan& loan);
  void BuildCalibrationLoan(const CalibrationTask& task, int64_t amount_fen, PlannedLoan& loan);
  void CheckTargetsMet() const;

  Rng rng_;
  Targets targets_;
  std::array<std::array<int64_t, kQuantityCount>, 2> caps_{};
  std::array<std::array<int64_t, kQuantityCount>, 2> reached_{};  // all loans so far
  std::array<QuantityStats, kQuantityCount> quantities_{};
  std::vector<CellState> cells_;
  std::vector<double> weights_;  // CellWeight of each cell, kept current
  double weights_total_ = 0;     // their sum, kept as they change
  uint32_t picks_since_sum_ = 0;
  static constexpr uint32_t kWeightResumEvery = 1024;
  std::array<Candidate, kCandidatesMax> candidates_;
  std::vector<CalibrationTask> tasks_;
  size_t task_ = 0;
  bool calibrating_ = false;
  bool done_ = false;
  uint64_t loans_ = 0;
  uint64_t redraws_ = 0;
  int64_t category_balance_fen_[2][kCategoryCount] = {};
};

}  // namespace loanledger::gen
