// The in-memory aggregates (storage/aggregator.h): a group's cells applied
// through Prepare + Apply (sorted runs, rollups merged per level) give the
// same series, day by day, as AddCell cell by cell; DaySeries::AddSorted
// equals Add in turn, including changes that cancel a day out.
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

}  // namespace
}  // namespace loanledger::storage
