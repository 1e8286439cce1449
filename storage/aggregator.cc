#include "storage/aggregator.h"

#include <algorithm>

#include "schema/check.h"

namespace loanledger::storage {

void DaySeries::Add(Day day, const Measures& delta) {
  const CivilDate c = CivilFromDays(day);
  Year& y = years_[c.year];
  y.total += delta;
  y.month_total[c.month - 1] += delta;
  std::vector<DayEntry>& days = y.days[c.month - 1];
  const auto dom = static_cast<uint8_t>(c.day);
  auto it = std::lower_bound(days.begin(), days.end(), dom,
                             [](const DayEntry& e, uint8_t d) { return e.day_of_month < d; });
  if (it == days.end() || it->day_of_month != dom) {
    it = days.insert(it, DayEntry{dom, Measures{}});
    ++day_entries_;
  }
  it->change += delta;
  if (it->change.IsZero()) {
    // A day whose changes cancel out holds nothing, exactly as after a
    // reopen (its cell is deleted on disk): keep the two views identical.
    days.erase(it);
    --day_entries_;
  }
  total_ += delta;
}

Measures DaySeries::AsOf(Day day) const {
  const CivilDate c = CivilFromDays(day);
  Measures sum;
  for (auto it = years_.begin(); it != years_.end() && it->first <= c.year; ++it) {
    if (it->first < c.year) {
      sum += it->second.total;
      continue;
    }
    const Year& y = it->second;
    for (uint32_t m = 0; m + 1 < c.month; ++m) sum += y.month_total[m];
    for (const DayEntry& e : y.days[c.month - 1]) {
      if (e.day_of_month > c.day) break;
      sum += e.change;
    }
  }
  return sum;
}

Measures DaySeries::OnDay(Day day) const {
  const CivilDate c = CivilFromDays(day);
  auto it = years_.find(c.year);
  if (it == years_.end()) return Measures{};
  for (const DayEntry& e : it->second.days[c.month - 1]) {
    if (e.day_of_month == c.day) return e.change;
  }
  return Measures{};
}

Day DaySeries::LastDay() const {
  // A year whose changes all cancelled out keeps its (empty) entry: skip it.
  for (auto it = years_.rbegin(); it != years_.rend(); ++it) {
    for (uint32_t m = 12; m > 0; --m) {
      const std::vector<DayEntry>& days = it->second.days[m - 1];
      if (!days.empty()) return DaysFromCivil(CivilDate{it->first, m, days.back().day_of_month});
    }
  }
  return 0;
}

void DaySeries::ForEachDay(const std::function<void(Day, const Measures&)>& fn) const {
  for (const auto& [year, y] : years_) {
    for (uint32_t m = 0; m < 12; ++m) {
      for (const DayEntry& e : y.days[m])
        fn(DaysFromCivil(CivilDate{year, m + 1, e.day_of_month}), e.change);
    }
  }
}

uint64_t Aggregator::SeriesKey(Category c, uint8_t province, uint32_t institution) {
  return (uint64_t{static_cast<uint8_t>(c)} << 40) | (uint64_t{province} << 32) | institution;
}

void Aggregator::AddCell(const CellKey& key, const Measures& delta) {
  LL_CHECK(key.province != 0 && key.institution != 0);
  series_[SeriesKey(key.category, key.province, key.institution)].Add(key.day, delta);
  series_[SeriesKey(key.category, key.province, 0)].Add(key.day, delta);
  // A region group's cell (province byte >= 100, ledger_impl.h) overlaps
  // the provinces' cells: it never rolls up into the all-provinces series.
  if (key.province >= kRegionGroupCellByteMin) return;
  series_[SeriesKey(key.category, 0, key.institution)].Add(key.day, delta);
  series_[SeriesKey(key.category, 0, 0)].Add(key.day, delta);
}

const DaySeries* Aggregator::Find(Category c, uint8_t province, uint32_t institution) const {
  auto it = series_.find(SeriesKey(c, province, institution));
  return it == series_.end() ? nullptr : &it->second;
}

Measures Aggregator::CellOnDay(const CellKey& key) const {
  const DaySeries* s = Find(key.category, key.province, key.institution);
  return s == nullptr ? Measures{} : s->OnDay(key.day);
}

void Aggregator::ForEachCellSeries(
    const std::function<void(Category, uint8_t, uint32_t, const DaySeries&)>& fn) const {
  for (const auto& [k, s] : series_) {
    const auto province = static_cast<uint8_t>((k >> 32) & 0xff);
    const auto institution = static_cast<uint32_t>(k & 0xffffffff);
    if (province == 0 || institution == 0) continue;
    fn(static_cast<Category>(k >> 40), province, institution, s);
  }
}

}  // namespace loanledger::storage
