#include "client/gen/cells.h"

#include <algorithm>
#include <cmath>

#include "schema/category.h"
#include "schema/check.h"

namespace loanledger::gen {
namespace {

constexpr int64_t kFenPerYuan = 100;

constexpr EnterpriseSize kSizes[4] = {EnterpriseSize::kLarge, EnterpriseSize::kMedium,
                                      EnterpriseSize::kSmall, EnterpriseSize::kMicro};

// ---- Design of the book (trillion yuan at 2024-09-30, national) ----------
// Manufacturing enterprises by size and the shares that split them.
constexpr double kMfgBalance[4] = {9.5, 6.5, 6.0, 3.0};
constexpr double kMfgHighTechShare[4] = {.16, .18, .14, .08};
constexpr double kMfgMltShare[4] = {.57, .55, .45, .35};
constexpr double kMfgSrdiShare[4] = {0, .25, .16, .03};
constexpr double kInclusiveLineShare[4] = {0, 0, .55, .92};  // small and micro only
// Other enterprises.
constexpr double kOtherBalance[4] = {95, 28, 12, 4.5};
constexpr double kOtherSrdiShare[4] = {0, .035, .03, .01};
constexpr double kOtherInclusiveLineShare[4] = {0, 0, .55, .90};
constexpr double kOtherTechShare[4] = {.03, .06, .05, .03};
constexpr double kOtherTechShareShanghai[4] = {.115, .16, .09, .045};
constexpr double kOtherGreenShare[4] = {.19, .12, .05, .02};
constexpr double kOtherGreenShareShanghai[4] = {.21, .15, .05, .025};
constexpr double kSrdiTechShare = .6;
constexpr double kSrdiTechShareShanghai = .7;
// Individuals.
constexpr double kIndividualBusinessBalance = 9.0;
constexpr double kOwnerBalance = 6.0;
constexpr double kOwnerManufacturingShare = .25;
constexpr double kOwnerMltShare = .40;
constexpr double kIndividualInclusiveLineShare = .985;
constexpr double kOwnerInclusiveLineShare = .97;
constexpr double kMortgageBalance = 20;
constexpr double kConsumerBalance = 1.5;
// Shanghai's manufacturing loans: technology and green shares (the cells fix
// those flags there because Shanghai's figures are calibrated).
constexpr double kShanghaiMfgTechShareHighTech = .5;
constexpr double kShanghaiMfgTechShareSrdi = .45;
constexpr double kShanghaiMfgTechShare = .09;
constexpr double kShanghaiMfgGreenShare = .10;

// Growth of the calibrated quantities, used as the growth of their cells.
double QuantityGrowth(const CellSpec& c) {
  double sum = 0;
  int n = 0;
  auto add = [&](bool member, double pct) {
    if (member) {
      sum += pct / 100.0;
      ++n;
    }
  };
  const bool enterprise =
      c.family == Family::kManufacturingEnterprise || c.family == Family::kOtherEnterprise;
  const bool inclusive = c.inclusive_line && (!enterprise || c.size == EnterpriseSize::kSmall ||
                                              c.size == EnterpriseSize::kMicro);
  add(c.manufacturing && c.mlt, 14.8);
  add(c.high_tech, 12.0);
  add(c.srdi, 13.5);
  add(inclusive && !c.shanghai, 14.5);
  add(inclusive && c.shanghai, 12.5);
  add(c.shanghai && c.flags_fixed && c.tech, 16.0);
  add(c.shanghai && c.flags_fixed && c.green, 22.0);
  // Not calibrated, but known to grow fast: green and technology lending.
  add(!c.shanghai && c.flags_fixed && c.green, 20.0);
  add(!c.shanghai && c.flags_fixed && c.tech, 15.0);
  if (n > 0) return sum / n;
  switch (c.family) {
    case Family::kManufacturingEnterprise:
      return .09;
    case Family::kOtherEnterprise:
      return c.size == EnterpriseSize::kLarge ? .07 : .08;
    case Family::kIndividualBusiness:
    case Family::kSmallMicroOwner:
      return .08;
    case Family::kMortgage:
      return .06;
    case Family::kConsumer:
      return .05;
  }
  return 0;
}

Book BookOfSize(EnterpriseSize s) {
  return s == EnterpriseSize::kLarge || s == EnterpriseSize::kMedium ? Book::kCorporate
                                                                     : Book::kSme;
}

// Adds the cell, split into Shanghai and the rest. `shanghai_split` adds the
// Shanghai part's own splits (tech and green flags) through the callback.
template <typename ShanghaiSplit>
void AddWithShanghai(CellSpec c, std::vector<CellSpec>& out, ShanghaiSplit shanghai_split) {
  const double sh = ShanghaiShare(BookOf(c));
  CellSpec rest = c;
  rest.balance_trillion = c.balance_trillion * (1 - sh);
  rest.shanghai = false;
  out.push_back(rest);
  CellSpec in = c;
  in.balance_trillion = c.balance_trillion * sh;
  in.shanghai = true;
  shanghai_split(in, out);
}

// Calls f(value, share) for the two sides of a binary split (skipping empty ones).
template <typename F>
void Split(double share, F f) {
  if (share > 0) f(true, share);
  if (share < 1) f(false, 1 - share);
}

void AddFlagSplits(CellSpec c, double tech_share, double green_share, std::vector<CellSpec>& out) {
  Split(tech_share, [&](bool tech, double ts) {
    Split(green_share, [&](bool green, double gs) {
      CellSpec x = c;
      x.flags_fixed = true;
      x.tech = tech;
      x.green = green;
      x.balance_trillion = c.balance_trillion * ts * gs;
      out.push_back(x);
    });
  });
}

void AddManufacturingCells(std::vector<CellSpec>& out) {
  for (size_t s = 0; s < 4; ++s) {
    Split(kMfgHighTechShare[s], [&](bool ht, double hs) {
      Split(kMfgMltShare[s], [&](bool mlt, double ms) {
        Split(kMfgSrdiShare[s], [&](bool srdi, double ss) {
          Split(kInclusiveLineShare[s], [&](bool incl, double is) {
            CellSpec c;
            c.family = Family::kManufacturingEnterprise;
            c.size = kSizes[s];
            c.manufacturing = true;
            c.high_tech = ht;
            c.mlt = mlt;
            c.srdi = srdi;
            c.inclusive_line = incl;
            c.balance_trillion = kMfgBalance[s] * hs * ms * ss * is;
            const double tech = ht ? kShanghaiMfgTechShareHighTech
                                   : (srdi ? kShanghaiMfgTechShareSrdi : kShanghaiMfgTechShare);
            AddWithShanghai(c, out, [&](const CellSpec& in, std::vector<CellSpec>& o) {
              AddFlagSplits(in, tech, kShanghaiMfgGreenShare, o);
            });
          });
        });
      });
    });
  }
}

void AddOtherEnterpriseCells(std::vector<CellSpec>& out) {
  for (size_t s = 0; s < 4; ++s) {
    Split(kOtherSrdiShare[s], [&](bool srdi, double ss) {
      Split(kOtherInclusiveLineShare[s], [&](bool incl, double is) {
        CellSpec c;
        c.family = Family::kOtherEnterprise;
        c.size = kSizes[s];
        c.srdi = srdi;
        c.inclusive_line = incl;
        c.balance_trillion = kOtherBalance[s] * ss * is;
        const double sh = ShanghaiShare(BookOf(c));
        CellSpec rest = c;
        rest.balance_trillion *= 1 - sh;
        AddFlagSplits(rest, srdi ? kSrdiTechShare : kOtherTechShare[s], kOtherGreenShare[s], out);
        CellSpec in = c;
        in.balance_trillion *= sh;
        in.shanghai = true;
        AddFlagSplits(in, srdi ? kSrdiTechShareShanghai : kOtherTechShareShanghai[s],
                      kOtherGreenShareShanghai[s], out);
      });
    });
  }
}

// Individuals: Shanghai's flags are fixed to 0 (calibrated figures there).
void AddIndividualCells(std::vector<CellSpec>& out) {
  auto no_flags = [](CellSpec in, std::vector<CellSpec>& o) {
    in.flags_fixed = true;
    o.push_back(in);
  };
  Split(kIndividualInclusiveLineShare, [&](bool incl, double is) {
    CellSpec c;
    c.family = Family::kIndividualBusiness;
    c.inclusive_line = incl;
    c.balance_trillion = kIndividualBusinessBalance * is;
    AddWithShanghai(c, out, no_flags);
  });
  Split(kOwnerManufacturingShare, [&](bool mfg, double fs) {
    Split(kOwnerMltShare, [&](bool mlt, double ms) {
      Split(kOwnerInclusiveLineShare, [&](bool incl, double is) {
        CellSpec c;
        c.family = Family::kSmallMicroOwner;
        c.manufacturing = mfg;
        c.mlt = mlt;
        c.inclusive_line = incl;
        c.balance_trillion = kOwnerBalance * fs * ms * is;
        AddWithShanghai(c, out, no_flags);
      });
    });
  });
  for (Family f : {Family::kMortgage, Family::kConsumer}) {
    CellSpec c;
    c.family = f;
    c.balance_trillion = f == Family::kMortgage ? kMortgageBalance : kConsumerBalance;
    AddWithShanghai(c, out, no_flags);
  }
}

}  // namespace

Book BookOf(const CellSpec& c) {
  switch (c.family) {
    case Family::kManufacturingEnterprise:
    case Family::kOtherEnterprise:
      return BookOfSize(c.size);
    case Family::kIndividualBusiness:
    case Family::kSmallMicroOwner:
      return Book::kSme;
    case Family::kMortgage:
    case Family::kConsumer:
      return Book::kHousehold;
  }
  return Book::kCorporate;
}

std::vector<CellSpec> BuildCells() {
  std::vector<CellSpec> cells;
  AddManufacturingCells(cells);
  AddOtherEnterpriseCells(cells);
  AddIndividualCells(cells);
  std::erase_if(cells, [](const CellSpec& c) { return c.balance_trillion <= 0; });
  for (CellSpec& c : cells) {
    c.growth = QuantityGrowth(c);
    c.typical_principal_yuan = TypicalPrincipalYuan(c);
  }
  return cells;
}

int64_t RoundPrincipalFen(double yuan) {
  const double step = yuan >= 1e6 ? 1e4 : 1e3;
  const double rounded = std::max(1e3, std::floor(yuan / step + 0.5) * step);
  return static_cast<int64_t>(rounded) * kFenPerYuan;
}

}  // namespace loanledger::gen
