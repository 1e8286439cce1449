// The portfolio as strata ("cells"). A cell fixes everything that decides
// whether a loan counts in a calibrated quantity (manufacturing or not,
// high-tech, term over a year, SRDI, inclusive credit line, Shanghai and,
// where it matters, the technology and green flags) and has a design balance
// at 2024-09-30. Loans are drawn within a cell until its balance is reached,
// so each quantity's random part lands near its design without luck; the
// calibration loans (portfolio.h) then close the last few percent exactly.
#pragma once

#include <cstdint>
#include <vector>

#include "client/gen/loan_model.h"
#include "client/gen/random.h"
#include "client/gen/tables.h"

namespace loanledger::gen {

enum class Family : uint8_t {
  kManufacturingEnterprise = 0,  // ENTERPRISE, industry section C
  kOtherEnterprise = 1,          // ENTERPRISE, other sections
  kIndividualBusiness = 2,       // 个体工商户, business purpose
  kSmallMicroOwner = 3,          // 小微企业主, business purpose
  kMortgage = 4,                 // INDIVIDUAL, housing
  kConsumer = 5,                 // INDIVIDUAL, consumption
};

struct CellSpec {
  Family family = Family::kManufacturingEnterprise;
  EnterpriseSize size = EnterpriseSize::kNa;  // for enterprises
  bool manufacturing = false;                 // purpose in section C (enterprises and owners)
  bool high_tech = false;                     // class in the high-tech table
  bool mlt = false;                           // term_months > 12
  bool srdi = false;                          // 专精特新 borrower
  bool inclusive_line = false;                // credit line <= 10 million yuan
  bool flags_fixed = false;                   // tech and green below are the cell's; else drawn
  bool tech = false;                          // tech_enterprise when flags_fixed
  bool green = false;                         // green when flags_fixed
  bool shanghai = false;                      // province 31; else any other province
  double balance_trillion = 0;                // design balance at 2024-09-30, at scale 1
  double growth = 0;                          // yearly growth of originations (and of the balance)
  double typical_principal_yuan = 0;          // median principal, for sizing
};

// Every cell with a positive design balance, in a fixed order.
std::vector<CellSpec> BuildCells();

// Draws one loan of the cell (attributes, institution, schedule, fate).
LoanDraw DrawLoan(const CellSpec& cell, Rng& rng);

// Median principal of the cell's loans, in yuan.
double TypicalPrincipalYuan(const CellSpec& cell);

// Book of a cell (province weights, bank mix).
Book BookOf(const CellSpec& cell);

// Rounds a principal to what a bank would grant: 10,000 yuan steps from one
// million yuan up, else 1,000 yuan; at least 1,000 yuan.
int64_t RoundPrincipalFen(double yuan);

}  // namespace loanledger::gen
