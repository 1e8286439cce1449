// The in-memory aggregates (storage/aggregator.h): a group's cells applied
// through Prepare + Apply (sorted runs, rollups merged per level) give the
// same series, day by day, as AddCell cell by cell, and so do a store's
// cells rebuilt in chunks (AddCells); DaySeries::AddSorted equals Add in
// turn, including changes that cancel a day out.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <tuple>
#include <vector>

#include "schema/date.h"
#include "storage/aggregator.h"
#include "storage/codec.h"

namespace loanledger::storage {
namespace {

// Every day entry of a series, and its total.
std::map<Day, std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>> Days(const DaySeries& s) {
  std::map<Day, std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>> out;
  s.ForEachDay([&](Day d, const Measures& m) {
    out[d] = {m.balance_fen, m.loan_count, m.disbursed_fen, m.repaid_fen, m.written_off_fen};
  });
  return out;
}

void ExpectSameSeries(const DaySeries* a, const DaySeries* b, const std::string& what) {
  const bool a_data = a != nullptr && !a->empty();
  const bool b_data = b != nullptr && !b->empty();
  ASSERT_EQ(a_data, b_data) << what;
  if (!a_data) return;
  EXPECT_EQ(Days(*a), Days(*b)) << what;
  EXPECT_EQ(a->Total(), b->Total()) << what;
  EXPECT_EQ(a->LastDay(), b->LastDay()) << what;
  for (Day d = DaysFromCivil(CivilDate{2021, 12, 20}); d < DaysFromCivil(CivilDate{2025, 1, 10});
       d += 7) {
    EXPECT_EQ(a->AsOf(d), b->AsOf(d)) << what << " as of day " << d;
  }
}

Measures RandomMeasures(std::mt19937_64& rng) {
  std::uniform_int_distribution<int64_t> amount(-5'000'000, 5'000'000);
  std::uniform_int_distribution<int64_t> count(-2, 2);
  return Measures{amount(rng), count(rng), amount(rng), amount(rng), amount(rng)};
}

TEST(StorageAggregator, AddSortedEqualsAddInTurn) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 50; ++round) {
    DaySeries one_by_one;
    DaySeries sorted;
    const Day first = DaysFromCivil(CivilDate{2022, 1, 1});
    for (int step = 0; step < 20; ++step) {
      // Distinct days, ascending, over three years; some cancel an
      // existing day out exactly.
      std::vector<Day> days;
      for (int k = 0; k < 40; ++k) days.push_back(first + static_cast<Day>(rng() % 1100));
      std::sort(days.begin(), days.end());
      days.erase(std::unique(days.begin(), days.end()), days.end());
      std::vector<CellChange> changes;
      for (Day d : days) {
        Measures m = RandomMeasures(rng);
        if (rng() % 4 == 0) m = Measures{} - one_by_one.OnDay(d);  // cancels the day out
        if (m.IsZero()) continue;
        changes.push_back(CellChange{static_cast<uint64_t>(d), m});
        one_by_one.Add(d, m);
      }
      sorted.AddSorted(changes);
      ExpectSameSeries(&one_by_one, &sorted, "round " + std::to_string(round));
      if (HasFailure()) return;
    }
  }
}

TEST(StorageAggregator, PrepareAndApplyEqualAddCellAtEveryLevel) {
  std::mt19937_64 rng(11);
  const std::vector<uint8_t> provinces = {11, 31, 32, 44, 65, 100, 101};  // 100+: region groups
  const std::vector<uint32_t> institutions = {1, 2, 3, 17};
  const std::vector<Category> categories = {Category::kTotal, static_cast<Category>(1),
                                            static_cast<Category>(5)};
  Aggregator by_cell;
  Aggregator by_group;
  const Day first = DaysFromCivil(CivilDate{2023, 11, 1});
  for (int group = 0; group < 60; ++group) {
    // A group's distinct cells, as Commit hands them: sorted by packed key.
    std::map<uint64_t, Measures> cells;
    const int n = 1 + static_cast<int>(rng() % 300);
    for (int k = 0; k < n; ++k) {
      const CellKey key{categories[rng() % categories.size()], provinces[rng() % provinces.size()],
                        institutions[rng() % institutions.size()],
                        first + static_cast<Day>(rng() % 120)};
      Measures m = RandomMeasures(rng);
      if (rng() % 5 == 0) {
        const DaySeries* s = by_cell.Find(key.category, key.province, key.institution);
        m = Measures{} - (s != nullptr ? s->OnDay(key.day) : Measures{});  // back to zero
      }
      cells[PackCell(key)] += m;
    }
    std::vector<CellChange> changes;
    for (const auto& [packed, m] : cells) {
      changes.push_back(CellChange{packed, m});
      by_cell.AddCell(UnpackCell(packed), m);
    }
    by_group.Apply(Aggregator::Prepare(std::move(changes)));
  }
  size_t compared = 0;
  for (Category c : categories) {
    for (uint8_t p : std::vector<uint8_t>{0, 11, 31, 32, 44, 65, 100, 101}) {
      for (uint32_t i : std::vector<uint32_t>{0, 1, 2, 3, 17}) {
        ExpectSameSeries(by_cell.Find(c, p, i), by_group.Find(c, p, i),
                         "series (" + std::to_string(static_cast<int>(c)) + "," +
                             std::to_string(p) + "," + std::to_string(i) + ")");
        if (by_cell.Find(c, p, i) != nullptr) ++compared;
        if (HasFailure()) return;
      }
    }
  }
  // Region-group cells roll up into (c,g,0) only, never into (c,0,*).
  EXPECT_GT(compared, 100u);
  ASSERT_NE(by_group.Find(Category::kTotal, 100, 0), nullptr);
  EXPECT_EQ(by_group.Find(Category::kTotal, 0, 0)->Total().balance_fen, [&] {
    int64_t sum = 0;
    for (uint8_t p : {11, 31, 32, 44, 65})
      sum += by_cell.Find(Category::kTotal, p, 0) != nullptr
                 ? by_cell.Find(Category::kTotal, p, 0)->Total().balance_fen
                 : 0;
    return sum;
  }());
}

TEST(StorageAggregator, PrepareDropsZeroChangesAndMergesRollups) {
  const Day d = DaysFromCivil(CivilDate{2024, 3, 31});
  const Measures plus{100, 1, 100, 0, 0};
  const Measures minus{-100, -1, 0, 100, 0};
  std::vector<CellChange> cells = {
      {PackCell(CellKey{Category::kTotal, 11, 1, d}), plus},
      {PackCell(CellKey{Category::kTotal, 11, 2, d}), Measures{}},
      {PackCell(CellKey{Category::kTotal, 31, 1, d}), minus},
  };
  const PreparedCells p = Aggregator::Prepare(cells);
  ASSERT_EQ(p.levels[0].size(), 2u);  // the zero cell dropped
  // (c,p,0): two provinces; (c,0,i): institution 1 sums both provinces.
  EXPECT_EQ(p.levels[1].size(), 2u);
  ASSERT_EQ(p.levels[2].size(), 1u);
  EXPECT_EQ(p.levels[2][0].packed, PackCell(CellKey{Category::kTotal, 0, 1, d}));
  EXPECT_EQ(p.levels[2][0].delta, plus + minus);
  ASSERT_EQ(p.levels[3].size(), 1u);
  EXPECT_EQ(p.levels[3][0].delta, (Measures{0, 0, 100, 100, 0}));
}

// The open's rebuild: every stored cell (distinct, key order) through
// AddCells in chunks of any size (one series run, several, or a series
// split anywhere) gives the same series at every level as AddCell cell by
// cell, including which series exist (rollups whose changes cancel out
// leave an empty series).
TEST(StorageAggregator, AddCellsInChunksEqualsAddCellOnAStore) {
  std::mt19937_64 rng(23);
  const std::vector<uint8_t> provinces = {11, 12, 31, 44, 65, 100, 102};
  const std::vector<Category> categories = {Category::kTotal, static_cast<Category>(2),
                                            static_cast<Category>(9)};
  const Day first = DaysFromCivil(CivilDate{2022, 1, 1});
  std::map<uint64_t, Measures> store;  // the cells column family, in key order
  for (Category c : categories) {
    for (uint8_t p : provinces) {
      for (uint32_t i = 1; i <= 12; ++i) {
        const Day from = first + static_cast<Day>(rng() % 400);
        for (Day d = from; d < first + 1100; d += 1 + static_cast<Day>(rng() % 3)) {
          store[PackCell(CellKey{c, p, i, d})] = RandomMeasures(rng);
        }
      }
    }
  }
  // A cell (c,p,i2,d) that cancels (c,p,i1,d) out in the (c,p,0) rollup,
  // and one that cancels across provinces in (c,0,i) and (c,0,0).
  const Day lone = first - 30;
  const Measures in{700, 1, 0, 0, 0};
  store[PackCell(CellKey{Category::kTotal, 11, 3, lone})] = in;
  store[PackCell(CellKey{Category::kTotal, 11, 4, lone})] = Measures{} - in;
  const Day lone2 = first - 60;
  store[PackCell(CellKey{static_cast<Category>(9), 12, 5, lone2})] = in;
  store[PackCell(CellKey{static_cast<Category>(9), 31, 5, lone2})] = Measures{} - in;
  ASSERT_GT(store.size(), 50'000u);

  Aggregator by_cell;
  for (const auto& [packed, m] : store) by_cell.AddCell(UnpackCell(packed), m);
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{1000}, size_t{65536}, store.size()}) {
    Aggregator by_chunk;
    std::vector<CellChange> cells;
    for (const auto& [packed, m] : store) {
      cells.push_back(CellChange{packed, m});
      if (cells.size() == chunk) {
        by_chunk.AddCells(cells);
        cells.clear();
      }
    }
    by_chunk.AddCells(cells);
    const std::string what = "chunks of " + std::to_string(chunk);
    ASSERT_EQ(by_chunk.series_count(), by_cell.series_count()) << what;
    for (Category c : categories) {
      for (uint8_t p : std::vector<uint8_t>{0, 11, 12, 31, 44, 65, 100, 102}) {
        for (uint32_t i = 0; i <= 12; ++i) {
          const std::string series = what + ", series (" + std::to_string(static_cast<int>(c)) +
                                     "," + std::to_string(p) + "," + std::to_string(i) + ")";
          ASSERT_EQ(by_chunk.Find(c, p, i) != nullptr, by_cell.Find(c, p, i) != nullptr) << series;
          ExpectSameSeries(by_cell.Find(c, p, i), by_chunk.Find(c, p, i), series);
          if (HasFailure()) return;
        }
      }
    }
    // The cancelled-out day is absent from the rollup, which has no other day.
    EXPECT_EQ(by_chunk.Find(Category::kTotal, 11, 0)->OnDay(lone), Measures{});
    EXPECT_EQ(by_chunk.Find(static_cast<Category>(9), 0, 5)->OnDay(lone2), Measures{});
  }
}

}  // namespace
}  // namespace loanledger::storage
