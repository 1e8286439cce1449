// Planner, phase 1: the random loans (portfolio.h). Phase 2 is in
// calibration.cc.
#include "client/gen/portfolio.h"

#include <cmath>
#include <utility>

#include "schema/check.h"

namespace loanledger::gen {
namespace {

constexpr double kFenPerTrillionYuan = 1e14;
// A cell opens only if its budget is worth at least this share of a typical
// loan balance (below, it would hold a fraction of one loan).
constexpr double kCellMinLoanShare = 0.25;
// The balance controller takes the first draw that keeps the difference of
// the cell's filled shares (2023-09-30 vs 2024-09-30) within this.
constexpr double kBalanceTolerance = 0.01;
// Typical balance at 2024-09-30 of a loan relative to its principal (before
// the cell has loans to measure it).
constexpr double kTypicalBalanceShare = 0.5;
// A cell stops after this many history-only loans beyond kClosedPerOpenMax
// per loan open on 2024-09-30 (a safety net, see Accept).
constexpr uint64_t kClosedLoansMin = 200;
constexpr uint64_t kClosedPerOpenMax = 40;

}  // namespace

Planner::Planner(double scale, uint64_t seed) : rng_(seed), targets_(TargetsAt(scale)) {
  for (size_t d = 0; d < 2; ++d) {
    for (size_t q = 0; q < kQuantityCount; ++q) {
      caps_[d][q] =
          static_cast<int64_t>(std::floor(static_cast<double>(targets_.fen[d][q]) * kCapShare));
      quantities_[q].target_fen[d] = targets_.fen[d][q];
    }
  }
  for (const CellSpec& spec : BuildCells()) {
    CellState c;
    c.spec = spec;
    c.budget_fen[1] =
        static_cast<int64_t>(std::llround(spec.balance_trillion * kFenPerTrillionYuan * scale));
    c.budget_fen[0] = static_cast<int64_t>(std::llround(c.budget_fen[1] / (1.0 + spec.growth)));
    const double typical_fen = spec.typical_principal_yuan * 100 * kTypicalBalanceShare;
    c.open = c.budget_fen[1] > 0 && c.budget_fen[0] > 0 &&
             c.budget_fen[1] >= kCellMinLoanShare * typical_fen;
    cells_.push_back(c);
    weights_.push_back(CellWeight(c));
  }
}

bool Planner::Next(PlannedLoan& loan) {
  if (done_) return false;
  if (!calibrating_) {
    if (NextRandom(loan)) return true;
    StartCalibration();
  }
  if (NextCalibration(loan)) return true;
  CheckTargetsMet();
  done_ = true;
  return false;
}

bool Planner::NextRandom(PlannedLoan& loan) {
  for (;;) {
    const int cell = PickCell();
    if (cell < 0) return false;
    const auto i = static_cast<size_t>(cell);
    const bool made = TryCell(cells_[i], loan);
    const double weight = CellWeight(cells_[i]);
    weights_total_ += weight - weights_[i];
    weights_[i] = weight;
    if (made) return true;
  }
}

// A cell's chance to give the next loan: the loans it still needs, i.e. its
// remaining budget over its mean balance per loan, so that cells of large
// and small loans progress together and blocks mix all kinds of loans.
double Planner::CellWeight(const CellState& c) {
  if (!c.open) return 0;
  const double typical = c.spec.typical_principal_yuan * 100 * kTypicalBalanceShare;
  const double mean =
      c.loans > 0 && c.b1_sum_fen > 0 ? c.b1_sum_fen / static_cast<double>(c.loans) : typical;
  return std::max(0.0,
                  static_cast<double>(c.budget_fen[1] - c.filled_fen[1]) / std::max(mean, 1.0));
}

int Planner::PickCell() {
  // The total is kept as weights change and summed afresh now and then, so
  // that rounding drift stays negligible (the result is deterministic either way).
  if (++picks_since_sum_ >= kWeightResumEvery || weights_total_ <= 0) {
    weights_total_ = 0;
    for (double w : weights_) weights_total_ += w;
    picks_since_sum_ = 0;
  }
  if (weights_total_ <= 0) return -1;
  double x = rng_.Uniform() * weights_total_;
  int last = -1;
  for (size_t i = 0; i < weights_.size(); ++i) {
    if (weights_[i] <= 0) continue;
    last = static_cast<int>(i);
    if (x < weights_[i]) return last;
    x -= weights_[i];
  }
  return last;
}

// The first draw decides, at its natural rate, whether the loan is only
// history (closed before 2023-09-30 or opened after 2024-09-30); such a loan
// is taken as drawn. A loan open on a reference date goes through the
// balance controller: of up to kCandidatesMax such draws, the first that
// keeps the cell's filled shares within kBalanceTolerance, else the closest.
bool Planner::TryCell(CellState& cell, PlannedLoan& loan) {
  int best = -1;
  double best_score = 0;
  int relevant = 0;
  bool first = true;
  for (int attempt = 0; attempt < kAttemptsMax && relevant < kCandidatesMax; ++attempt) {
    Candidate& c = candidates_[static_cast<size_t>(relevant)];
    const Draw draw = MakeCandidate(cell, c);
    if (draw != Draw::kCandidate) {
      ++redraws_;
      // A rejected draw was a loan open on a reference date: it decides the
      // kind of loan as well as an accepted one would. Otherwise a cell held
      // back by a cap would turn out history-only loans well above their
      // natural rate (every open draw rejected, the next history one taken).
      if (draw == Draw::kRejected) first = false;
      continue;
    }
    const bool history_only = c.outcome.balance_fen[0] == 0 && c.outcome.balance_fen[1] == 0;
    if (history_only) {
      if (first) {
        best = relevant;
        break;
      }
      continue;  // the natural rate of history loans was decided by the first draw
    }
    first = false;
    const double score = Imbalance(cell, c.outcome.balance_fen[0], c.outcome.balance_fen[1]);
    if (best < 0 || score < best_score) {
      best = relevant;
      best_score = score;
    }
    ++relevant;
    if (score <= kBalanceTolerance) break;
  }
  if (best < 0) {
    if (++cell.failures >= kCellFailuresMax) cell.open = false;
    return false;
  }
  Accept(cell, candidates_[static_cast<size_t>(best)], loan);
  return true;
}

Planner::Draw Planner::MakeCandidate(const CellState& cell, Candidate& c) {
  c.draw = DrawLoan(cell.spec, rng_);
  if (!BuildEvents(c.draw, c.events, c.outcome)) return Draw::kNoLoan;
  const int64_t remaining = cell.budget_fen[1] - cell.filled_fen[1];
  const int64_t b1 = c.outcome.balance_fen[1];
  if (b1 > remaining) {
    // The cell's last loan: granted smaller when the rest is still a fair
    // share of a loan, else drawn again.
    if (remaining < b1 * kCellMinLoanShare) return Draw::kRejected;
    const double yuan = static_cast<double>(c.draw.principal_fen) / 100.0 * remaining / b1;
    const int64_t principal = RoundPrincipalFen(yuan);
    if (principal >= c.draw.principal_fen) return Draw::kRejected;
    c.draw.principal_fen = principal;
    if (!BuildEvents(c.draw, c.events, c.outcome)) return Draw::kRejected;
  }
  const LoanAttributes attributes[2] = {
      c.draw.attributes, c.draw.reclassified ? c.draw.attributes_after : c.draw.attributes};
  Contribute(attributes, c.outcome, c.contribution);
  return ExceedsCaps(c) ? Draw::kRejected : Draw::kCandidate;
}

void Planner::Contribute(const LoanAttributes (&attributes)[2], const LoanOutcome& outcome,
                         std::array<std::array<int64_t, kQuantityCount>, 2>& out) const {
  QuantityMask masks[2] = {0, 0};
  bool known[2] = {false, false};
  for (size_t d = 0; d < 2; ++d) {
    out[d].fill(0);
    const int v = outcome.version[d];
    if (v < 0 || outcome.balance_fen[d] == 0) continue;
    if (!known[v]) {
      masks[v] = QuantitiesOf(attributes[v]);
      known[v] = true;
    }
    for (size_t q = 0; q < kQuantityCount; ++q) {
      if (masks[v] & QBit(static_cast<Quantity>(q))) out[d][q] = outcome.balance_fen[d];
    }
  }
}

bool Planner::ExceedsCaps(const Candidate& c) const {
  for (size_t d = 0; d < 2; ++d) {
    for (size_t q = 0; q < kQuantityCount; ++q) {
      if (c.contribution[d][q] > 0 && reached_[d][q] + c.contribution[d][q] > caps_[d][q])
        return true;
    }
  }
  return false;
}

double Planner::Imbalance(const CellState& cell, int64_t add0, int64_t add1) {
  const double f0 =
      static_cast<double>(cell.filled_fen[0] + add0) / static_cast<double>(cell.budget_fen[0]);
  const double f1 =
      static_cast<double>(cell.filled_fen[1] + add1) / static_cast<double>(cell.budget_fen[1]);
  return std::fabs(f0 - f1);
}

void Planner::Accept(CellState& cell, Candidate& c, PlannedLoan& loan) {
  const int64_t b1 = c.outcome.balance_fen[1];
  cell.filled_fen[0] += c.outcome.balance_fen[0];
  cell.filled_fen[1] += b1;
  cell.b1_sum_fen += static_cast<double>(b1);
  ++cell.loans;
  if (b1 > 0) {
    cell.positive_b1_sum_fen += static_cast<double>(b1);
    ++cell.positive_loans;
  }
  if (c.outcome.balance_fen[0] > 0 || b1 > 0) cell.failures = 0;
  const int64_t remaining = cell.budget_fen[1] - cell.filled_fen[1];
  const double mean_positive =
      cell.positive_loans > 0 ? cell.positive_b1_sum_fen / static_cast<double>(cell.positive_loans)
                              : 0;
  if (remaining <= 0 || remaining < kCellMinLoanShare * mean_positive) cell.open = false;
  // Safety net: a cell whose draws stopped reaching 2024-09-30 would only
  // add history; short-term cells have about six closed loans per open one.
  if (cell.loans - cell.positive_loans >
      kClosedLoansMin + kClosedPerOpenMax * cell.positive_loans) {
    cell.open = false;
  }

  for (size_t d = 0; d < 2; ++d) {
    for (size_t q = 0; q < kQuantityCount; ++q) {
      reached_[d][q] += c.contribution[d][q];
      quantities_[q].random_fen[d] += c.contribution[d][q];
    }
  }
  loan.institution = c.draw.institution;
  loan.number = ++loans_;
  loan.attributes[0] = c.draw.attributes;
  loan.attributes[1] = c.draw.reclassified ? c.draw.attributes_after : c.draw.attributes;
  loan.events.swap(c.events);
  loan.outcome = c.outcome;
  loan.calibration = false;
  Count(loan);
}

// Category balances of the whole portfolio (GenStats), by as-of attributes.
void Planner::Count(const PlannedLoan& loan) {
  for (size_t d = 0; d < 2; ++d) {
    const int v = loan.outcome.version[d];
    if (v < 0 || loan.outcome.balance_fen[d] == 0) continue;
    const CategoryMask mask = Classify(loan.attributes[v]);
    for (size_t k = 0; k < kCategoryCount; ++k) {
      if (mask & Bit(static_cast<Category>(k)))
        category_balance_fen_[d][k] += loan.outcome.balance_fen[d];
    }
  }
}

}  // namespace loanledger::gen
