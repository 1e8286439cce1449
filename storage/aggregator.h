// The in-memory aggregates: for every (category, province, institution)
// series and its rollups, the per-day changes of the five measures, with
// as-of sums for any date. Rebuilt from the "cells" column family at open;
// kept current by the ledger's writer. Internal to storage/.
//
// Thread safety: none inside; the Ledger guards an Aggregator with a
// shared_mutex (the writer mutates under the exclusive lock).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <unordered_map>
#include <vector>

#include "storage/codec.h"

namespace loanledger::storage {

// One cell's change: its PackCell key (series in the high 40 bits, day in
// the low 24) and the change.
struct CellChange {
  uint64_t packed = 0;
  Measures delta;
};

// Per-day changes of one series, bucketed by year and month so that an
// as-of sum costs O(years + 12 + 31) however late an event was dated, and a
// late-dated event costs O(log) to add (no prefix array to shift).
class DaySeries {
 public:
  void Add(Day day, const Measures& delta);
  // The same as Add for each change in turn. REQUIRES: days (the low 24
  // bits of packed) strictly ascending. One year and month lookup per run
  // of the same month, and the search for a day starts after the last one.
  void AddSorted(std::span<const CellChange> changes);
  // Sum of every change dated <= day.
  Measures AsOf(Day day) const;
  // The change recorded on exactly `day`.
  Measures OnDay(Day day) const;
  // Calls fn(day, change) for every day with a recorded entry, ascending.
  void ForEachDay(const std::function<void(Day, const Measures&)>& fn) const;
  // Sum of every change (as of the end of time).
  Measures Total() const { return total_; }
  // The latest day holding a change; 0 when empty().
  Day LastDay() const;
  // True when no day holds a change: the series has no data (a group with
  // only cancelled-out changes is not reported).
  bool empty() const { return day_entries_ == 0; }

 private:
  struct DayEntry {
    uint8_t day_of_month;  // 1..31
    Measures change;
  };
  struct Year {
    Measures total;                              // sum of the year's changes
    std::array<Measures, 12> month_total{};      // sum per month
    std::array<std::vector<DayEntry>, 12> days;  // sorted by day_of_month
  };
  std::map<int32_t, Year> years_;  // by calendar year
  Measures total_;
  size_t day_entries_ = 0;  // day entries held (all non-zero)
};

// A group's cell changes at each of the four levels, each sorted by
// series then day with equal keys merged and zero changes dropped: built
// before the group's write (Aggregator::Prepare), applied after it under
// the aggregates' lock (Aggregator::Apply), which then holds it briefly.
struct PreparedCells {
  std::array<std::vector<CellChange>, 4> levels;  // (c,p,i), (c,p,0), (c,0,i), (c,0,0)
};

// Series at four levels, addressed by (category, province, institution)
// with 0 meaning "all": (c,p,i) cells, (c,0,i), (c,p,0) and (c,0,0).
class Aggregator {
 public:
  // Adds one cell's day change to the cell's series and its three rollups.
  // REQUIRES: key.province and key.institution are real (non-zero).
  void AddCell(const CellKey& key, const Measures& delta);
  // The rollups of `cells` (distinct real cells, sorted by packed key):
  // applying them equals AddCell for each cell, with one series lookup per
  // run and one Add per (series, day) at each level instead of one per cell.
  static PreparedCells Prepare(std::vector<CellChange> cells);
  void Apply(const PreparedCells& prepared);
  // The same as AddCell for each of `cells` in turn (distinct real cells
  // sorted by packed key, as the cells column family holds them): each run
  // of one cell series goes whole (DaySeries::AddSorted) into that series
  // and its three rollups, one lookup per series and month instead of four
  // per cell. The open rebuilds the aggregates from the stored cells so.
  void AddCells(std::span<const CellChange> cells);
  const DaySeries* Find(Category c, uint8_t province, uint32_t institution) const;
  // The cell's change on its day (zero if none).
  Measures CellOnDay(const CellKey& key) const;
  // Calls fn for every stored cell-level (c,p,i) series.
  void ForEachCellSeries(
      const std::function<void(Category, uint8_t, uint32_t, const DaySeries&)>& fn) const;
  size_t series_count() const { return series_.size(); }

 private:
  static uint64_t SeriesKey(Category c, uint8_t province, uint32_t institution);
  std::unordered_map<uint64_t, DaySeries> series_;
};

}  // namespace loanledger::storage
