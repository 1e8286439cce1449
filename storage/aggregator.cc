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

void DaySeries::AddSorted(std::span<const CellChange> changes) {
  auto day_of = [](const CellChange& c) { return static_cast<Day>(c.packed & 0xffffff); };
  size_t i = 0;
  while (i < changes.size()) {
    const CivilDate c = CivilFromDays(day_of(changes[i]));
    const Day month_first = DaysFromCivil(CivilDate{c.year, c.month, 1});
    const Day next_month_first = month_first + static_cast<Day>(DaysInMonth(c.year, c.month));
    Year& y = years_[c.year];
    std::vector<DayEntry>& days = y.days[c.month - 1];
    Measures month_sum;
    size_t from = 0;  // entries before it are of earlier days of this run
    for (; i < changes.size() && day_of(changes[i]) < next_month_first; ++i) {
      LL_CHECK(i == 0 || day_of(changes[i - 1]) < day_of(changes[i]));
      const auto dom = static_cast<uint8_t>(day_of(changes[i]) - month_first + 1);
      const Measures& delta = changes[i].delta;
      auto it = std::lower_bound(days.begin() + static_cast<ptrdiff_t>(from), days.end(), dom,
                                 [](const DayEntry& e, uint8_t d) { return e.day_of_month < d; });
      if (it == days.end() || it->day_of_month != dom) {
        it = days.insert(it, DayEntry{dom, Measures{}});
        ++day_entries_;
      }
      it->change += delta;
      if (it->change.IsZero()) {  // as in Add
        it = days.erase(it);
        --day_entries_;
      } else {
        ++it;
      }
      from = static_cast<size_t>(it - days.begin());
      month_sum += delta;
    }
    y.month_total[c.month - 1] += month_sum;
    y.total += month_sum;
    total_ += month_sum;
  }
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

PreparedCells Aggregator::Prepare(std::vector<CellChange> cells) {
  LL_CHECK(std::is_sorted(cells.begin(), cells.end(), [](const CellChange& a, const CellChange& b) {
    return a.packed < b.packed;
  }));
  constexpr uint64_t kInstitutionBits = uint64_t{0xffffff} << 24;
  constexpr uint64_t kProvinceBits = uint64_t{0xff} << 48;
  PreparedCells out;
  // The rollups: each cell's key with the summed-over parts cleared, sorted
  // and merged. Region-group cells roll up only into (c,g,0).
  auto rollup = [&](uint64_t clear, bool provinces_only) {
    std::vector<CellChange> v;
    v.reserve(cells.size());
    for (const CellChange& c : cells) {
      const auto province = static_cast<uint8_t>((c.packed >> 48) & 0xff);
      if (provinces_only && province >= kRegionGroupCellByteMin) continue;
      v.push_back(CellChange{c.packed & ~clear, c.delta});
    }
    std::sort(v.begin(), v.end(),
              [](const CellChange& a, const CellChange& b) { return a.packed < b.packed; });
    size_t n = 0;
    for (size_t i = 0; i < v.size();) {
      CellChange merged = v[i];
      for (++i; i < v.size() && v[i].packed == merged.packed; ++i) merged.delta += v[i].delta;
      if (!merged.delta.IsZero()) v[n++] = merged;
    }
    v.resize(n);
    return v;
  };
  out.levels[1] = rollup(kInstitutionBits, false);
  out.levels[2] = rollup(kProvinceBits, true);
  out.levels[3] = rollup(kProvinceBits | kInstitutionBits, true);
  std::erase_if(cells, [](const CellChange& c) { return c.delta.IsZero(); });
  out.levels[0] = std::move(cells);
  return out;
}

void Aggregator::Apply(const PreparedCells& prepared) {
  for (const std::vector<CellChange>& level : prepared.levels) {
    for (size_t i = 0; i < level.size();) {
      const uint64_t series = level[i].packed >> 24;
      size_t j = i + 1;
      while (j < level.size() && (level[j].packed >> 24) == series) ++j;
      const CellKey k = UnpackCell(level[i].packed);
      series_[SeriesKey(k.category, k.province, k.institution)].AddSorted(
          std::span<const CellChange>(level).subspan(i, j - i));
      i = j;
    }
  }
}

void Aggregator::AddCells(std::span<const CellChange> cells) {
  for (size_t i = 0; i < cells.size();) {
    const uint64_t series = cells[i].packed >> 24;
    size_t j = i + 1;
    while (j < cells.size() && (cells[j].packed >> 24) == series) ++j;
    LL_CHECK(j == cells.size() || series < (cells[j].packed >> 24));  // sorted
    const std::span<const CellChange> run = cells.subspan(i, j - i);
    const CellKey k = UnpackCell(cells[i].packed);
    LL_CHECK(k.province != 0 && k.institution != 0);
    // The same Adds on each series, in the same order, as AddCell's.
    series_[SeriesKey(k.category, k.province, k.institution)].AddSorted(run);
    series_[SeriesKey(k.category, k.province, 0)].AddSorted(run);
    if (k.province < kRegionGroupCellByteMin) {  // as in AddCell
      series_[SeriesKey(k.category, 0, k.institution)].AddSorted(run);
      series_[SeriesKey(k.category, 0, 0)].AddSorted(run);
    }
    i = j;
  }
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
