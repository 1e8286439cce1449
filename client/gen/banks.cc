#include "client/gen/banks.h"

#include <algorithm>
#include <cstdio>

#include "client/gen/random.h"
#include "schema/check.h"

namespace loanledger::gen {
namespace {

// Regional banks per province: one each, the rest by largest remainder of
// the province's small-business weight (where regional banks matter most).
std::vector<uint32_t> SpreadRegional(uint32_t regional) {
  const std::span<const Province> provinces = Provinces();
  LL_CHECK(regional >= provinces.size());
  double sum = 0;
  for (const Province& p : provinces) sum += p.weight[static_cast<size_t>(Book::kSme)];
  const uint32_t extra = regional - static_cast<uint32_t>(provinces.size());
  std::vector<uint32_t> count(provinces.size(), 1);
  std::vector<double> remainder(provinces.size());
  uint32_t given = 0;
  for (size_t i = 0; i < provinces.size(); ++i) {
    const double share = extra * provinces[i].weight[static_cast<size_t>(Book::kSme)] / sum;
    count[i] += static_cast<uint32_t>(share);
    remainder[i] = share - static_cast<uint32_t>(share);
    given += static_cast<uint32_t>(share);
  }
  for (; given < extra; ++given) {
    const size_t best = static_cast<size_t>(std::max_element(remainder.begin(), remainder.end()) -
                                            remainder.begin());
    ++count[best];
    remainder[best] = -1;
  }
  return count;
}

}  // namespace

BankMap::BankMap(uint32_t banks, uint64_t seed) : seed_(seed) {
  LL_CHECK(banks >= 1 && banks <= kBanksMax);
  national_ = banks < kBanksAllNationalBelow ? banks : banks / 10;
  LL_CHECK(national_ >= 1);
  for (uint32_t i = 0; i < banks; ++i) {
    char id[8];
    std::snprintf(id, sizeof id, "B%04u", i + 1);
    ids_.emplace_back(id);
  }
  for (uint32_t i = 0; i < national_; ++i) AddRanked(national_group_, i);
  if (banks == national_) return;
  const std::vector<uint32_t> count = SpreadRegional(banks - national_);
  uint32_t next = national_;
  for (size_t p = 0; p < count.size(); ++p) {
    Group& group = regional_by_province_[Provinces()[p].code];
    for (uint32_t j = 0; j < count[p]; ++j) AddRanked(group, next++);
  }
  LL_CHECK(next == banks);
}

void BankMap::AddRanked(Group& group, uint32_t bank) {
  const double rank = static_cast<double>(group.banks.size() + 1);
  const double weight = DetExp(-kBankZipfExponent * DetLn(rank));  // rank^-s, deterministic
  group.banks.push_back(bank);
  group.cumulative.push_back((group.cumulative.empty() ? 0.0 : group.cumulative.back()) + weight);
}

uint32_t BankMap::Draw(const Group& group, uint64_t number) const {
  LL_CHECK(!group.banks.empty());
  uint64_t state = seed_ * 0xD1B54A32D192ED03ull ^ number;
  const double u = static_cast<double>(SplitMix64(state) >> 11) * 0x1.0p-53;
  const double target = u * group.cumulative.back();
  const auto it = std::upper_bound(group.cumulative.begin(), group.cumulative.end(), target);
  const size_t i =
      std::min(static_cast<size_t>(it - group.cumulative.begin()), group.banks.size() - 1);
  return group.banks[i];
}

const std::string& BankMap::For(uint32_t original, uint64_t number) const {
  const uint8_t province = Institutions()[original].province;
  const Group& regional = regional_by_province_[province];
  const Group& group = province != 0 && !regional.banks.empty() ? regional : national_group_;
  return ids_[Draw(group, number)];
}

}  // namespace loanledger::gen
