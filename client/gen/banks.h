// `loanledger gen --banks N`: the portfolio's loans lent by N institutions of
// skewed sizes instead of the model's own 160 (tables.h), as a national book
// looks to a regulator: a few national banks holding most of it and many
// small regional ones, each tied to one province.
//
// The loans and their events do not change, only the institution that
// reports each loan: a loan the model gives to a national bank goes to one
// of the K national banks here; one it gives to a regional bank of province
// P goes to one of the regional banks of P here (or a national one when P
// has none). Within each group banks are ranked and drawn with weight
// rank^-kBankZipfExponent, from a hash of (seed, loan number): the same
// loan gets the same bank in every run with the same seed and N, whatever
// else is asked (--out-dir, --day, --before).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "client/gen/tables.h"

namespace loanledger::gen {

// Bounds of GenOptions::banks (ids B0001..B9999); 0 = the model's own banks.
inline constexpr uint32_t kBanksMax = 9999;
// Below this many banks all are national (too few to give every province one).
inline constexpr uint32_t kBanksAllNationalBelow = 62;
// Zipf exponent of sizes within a group: with 200 banks the largest national
// bank holds about a quarter of the loans, the smallest regional ones < 0.1 %.
inline constexpr double kBankZipfExponent = 1.2;

class BankMap {
 public:
  // REQUIRES: 1 <= banks <= kBanksMax.
  BankMap(uint32_t banks, uint64_t seed);

  // The institution id of loan `number` that the model gives to `original`
  // (an index into Institutions()).
  const std::string& For(uint32_t original, uint64_t number) const;

  uint32_t national() const { return national_; }  // banks B0001..B<national>

 private:
  // One group of banks drawn by rank: ids in rank order, cumulative weights.
  struct Group {
    std::vector<uint32_t> banks;  // indexes into ids_
    std::vector<double> cumulative;
  };
  static void AddRanked(Group& group, uint32_t bank);
  uint32_t Draw(const Group& group, uint64_t number) const;

  uint64_t seed_;
  uint32_t national_ = 0;
  std::vector<std::string> ids_;                 // B0001.., index = bank
  Group national_group_;                         // banks 0..national_-1
  std::array<Group, 100> regional_by_province_;  // by province code (11..65)
};

}  // namespace loanledger::gen
