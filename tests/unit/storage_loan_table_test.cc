// The in-memory loan table (storage/loan_table.h): lookups, key bytes,
// pointer stability across entry chunks, index growth and key-arena chunks,
// LIFO removal (checked against std::unordered_map), Reserve, and the
// PopBack contract.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "storage/loan_slot.h"
#include "storage/loan_table.h"

namespace loanledger::storage {
namespace {

using namespace std::string_literals;  // NOLINT(google-build-using-namespace): "\0" in keys

// Geometry of the implementation that the tests aim at (they stay correct
// for any other geometry, they would only aim less well).
constexpr size_t kEntriesPerChunk = size_t{1} << 16;
constexpr size_t kArenaChunkBytes = size_t{1} << 20;
constexpr size_t kKeyBytesMax = 255;

// A loan key as the ledger builds it: institution_id + NUL + loan_id. The
// loan id is padded by n % 37 characters so that key lengths vary.
std::string LoanKey(uint64_t n, std::string_view institution = "B0001") {
  std::string key(institution);
  key.push_back('\0');
  key += "L" + std::to_string(n);
  key.append(n % 37, static_cast<char>('a' + n % 26));
  return key;
}

// A key of exactly `bytes` bytes: n's low bytes (often NULs), then padding.
// Distinct for distinct n < 2^(8 * min(bytes, 4)).
std::string KeyOfLength(uint32_t n, size_t bytes) {
  std::string key(bytes, 'k');
  for (size_t i = 0; i < 4 && i < bytes; ++i) key[i] = static_cast<char>(n >> (8 * i));
  return key;
}

// Printable form of a key for failure messages (NUL shown as "\0").
std::string Show(std::string_view key) {
  std::string out;
  for (char c : key) out += c == '\0' ? "\\0"s : std::string(1, c);
  return out;
}

LoanSlot* Insert(LoanTable& table, std::string_view key) {
  bool inserted = false;
  LoanSlot* slot = table.FindOrInsert(key, &inserted);
  EXPECT_TRUE(inserted) << Show(key);
  EXPECT_NE(slot, nullptr);
  return slot;
}

std::vector<std::string> Keys(LoanTable& table) {
  std::vector<std::string> keys;
  table.ForEach([&](std::string_view key, LoanSlot&) { keys.emplace_back(key); });
  return keys;
}

// Every key of `order` (insertion order, distinct) is found with its
// value in slot->last_seq, KeyOf gives it back, size() agrees and ForEach
// visits exactly `order`, in order, with the slots Find returns.
void ExpectTableMatches(LoanTable& table, const std::vector<std::string>& order,
                        const std::unordered_map<std::string, uint64_t>& values) {
  ASSERT_EQ(order.size(), values.size());
  ASSERT_EQ(table.size(), order.size());
  for (const std::string& key : order) {
    const LoanSlot* slot = table.Find(key);
    ASSERT_NE(slot, nullptr) << Show(key);
    EXPECT_EQ(slot->last_seq, values.at(key)) << Show(key);
    ASSERT_EQ(table.KeyOf(slot), key);
  }
  size_t i = 0;
  bool ok = true;
  table.ForEach([&](std::string_view key, LoanSlot& slot) {
    if (!ok) return;
    if (i >= order.size() || key != order[i] || &slot != table.Find(key)) ok = false;
    ++i;
  });
  EXPECT_TRUE(ok) << "ForEach departs from insertion order at entry " << i - 1;
  EXPECT_EQ(i, order.size());
}

// ---------------------------------------------------------------------------
// Basics

TEST(LoanTable, EmptyTableFindsNothing) {
  LoanTable table;
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.Find(LoanKey(1)), nullptr);
  EXPECT_EQ(table.Find(""), nullptr);
  const LoanTable& const_table = table;
  EXPECT_EQ(const_table.Find(LoanKey(1)), nullptr);
  EXPECT_TRUE(Keys(table).empty());
}

TEST(LoanTable, FindOrInsertInsertsOnceThenFinds) {
  LoanTable table;
  bool inserted = false;
  LoanSlot* first = table.FindOrInsert(LoanKey(1), &inserted);
  ASSERT_NE(first, nullptr);
  EXPECT_TRUE(inserted);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(first->last_seq, 0u) << "a new slot is value-initialized";
  EXPECT_FALSE(first->exists);

  inserted = true;
  EXPECT_EQ(table.FindOrInsert(LoanKey(1), &inserted), first);
  EXPECT_FALSE(inserted);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.Find(LoanKey(1)), first);
  const LoanTable& const_table = table;
  EXPECT_EQ(const_table.Find(LoanKey(1)), first);

  LoanSlot* second = table.FindOrInsert(LoanKey(2), &inserted);
  EXPECT_TRUE(inserted);
  EXPECT_NE(second, first);
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.Find(LoanKey(1)), first);
  EXPECT_EQ(table.Find(LoanKey(2)), second);
  EXPECT_EQ(table.Find(LoanKey(3)), nullptr);
}

TEST(LoanTable, KeyOfReturnsTheExactKeyBytes) {
  const std::vector<std::string> keys = {
      "B0001\0L1"s,  // institution + NUL + loan
      "B0001\0L2"s,  // differs only after the NUL
      "B0002\0L1"s,  // differs only before the NUL
      "B0001"s,      // the prefix up to the NUL, alone
      "B0001\0"s,    // the prefix with the NUL
      "\0"s,         // a lone NUL
      "x"s,          // one byte
      ""s,           // empty
      std::string(kKeyBytesMax, 'z'),
      std::string(kKeyBytesMax - 1, 'z'),
      "B9\0"s + std::string(kKeyBytesMax - 3, '\xff'),  // 255 bytes, high bytes
  };
  LoanTable table;
  std::vector<LoanSlot*> slots;
  for (const std::string& key : keys) slots.push_back(Insert(table, key));
  ASSERT_EQ(table.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(table.Find(keys[i]), slots[i]) << Show(keys[i]);
    const std::string_view back = table.KeyOf(slots[i]);
    EXPECT_EQ(back.size(), keys[i].size()) << Show(keys[i]);
    EXPECT_EQ(back, keys[i]) << Show(back) << " vs " << Show(keys[i]);
  }
  EXPECT_EQ(table.KeyOf(slots.back()).size(), kKeyBytesMax);
  EXPECT_EQ(Keys(table), keys);
  EXPECT_EQ(table.Find("B0001\0L3"s), nullptr);
  EXPECT_EQ(table.Find("B0001\0L"s), nullptr);
  EXPECT_EQ(table.Find("y"), nullptr);
}

TEST(LoanTable, SlotFieldsWrittenThroughThePointerAreReadBack) {
  LoanTable table;
  LoanSlot* a = Insert(table, LoanKey(1));
  LoanSlot* b = Insert(table, LoanKey(2));
  a->last_seq = 0xfedcba9876543210u;
  a->balance_fen = -123'456'789'012;
  a->stamp = 77;
  a->attributes.credit_line_fen = 9'000'000;
  a->attributes.region = 110105;
  a->attributes.industry[0] = 'C';
  a->attributes.industry[1] = '1';
  a->attributes.industry_len = 2;
  a->attributes.term_months = 36;
  a->attributes.borrower_type = 2;
  a->attributes.enterprise_size = 3;
  a->attributes.flags = 1 | 4;
  a->last_date = 19'800;
  a->mask = 0x8421;
  a->exists = true;
  b->last_seq = 5;

  const LoanSlot* found = table.Find(LoanKey(1));
  ASSERT_EQ(found, a);
  EXPECT_EQ(found->last_seq, 0xfedcba9876543210u);
  EXPECT_EQ(found->balance_fen, -123'456'789'012);
  EXPECT_EQ(found->stamp, 77u);
  EXPECT_EQ(found->attributes.credit_line_fen, 9'000'000);
  EXPECT_EQ(found->attributes.region, 110105u);
  EXPECT_EQ(std::string_view(found->attributes.industry, found->attributes.industry_len), "C1");
  EXPECT_EQ(found->attributes.term_months, 36);
  EXPECT_EQ(found->attributes.borrower_type, 2);
  EXPECT_EQ(found->attributes.enterprise_size, 3);
  EXPECT_EQ(found->attributes.flags, 1 | 4);
  EXPECT_EQ(found->province(), 11);
  EXPECT_EQ(found->last_date, 19'800);
  EXPECT_EQ(found->mask, 0x8421);
  EXPECT_TRUE(found->exists);
  EXPECT_EQ(table.Find(LoanKey(2))->last_seq, 5u) << "neighbouring entry untouched";
  EXPECT_EQ(table.Find(LoanKey(2))->balance_fen, 0);
  // Writing a slot does not disturb its key (the key position shares the entry).
  EXPECT_EQ(table.KeyOf(a), LoanKey(1));
  EXPECT_EQ(table.KeyOf(b), LoanKey(2));

  bool inserted = true;
  EXPECT_EQ(table.FindOrInsert(LoanKey(1), &inserted)->last_seq, 0xfedcba9876543210u)
      << "finding an existing key does not reset its slot";
  EXPECT_FALSE(inserted);
}

TEST(LoanTable, KeysWithTheSameHashTagAndHomeStayDistinct) {
  // The index keeps the hash's high 32 bits as a tag; these two loan keys
  // (same length) share that tag and the low 10 bits (the home position in
  // the initial 1,024-position index) under libstdc++'s std::hash, so only
  // the key comparison tells them apart.
  const std::string k1 = "B0001\0L16006026"s;
  const std::string k2 = "B0001\0L17889705"s;
  const uint64_t h1 = std::hash<std::string_view>{}(k1);
  const uint64_t h2 = std::hash<std::string_view>{}(k2);
  if ((h1 >> 32) != (h2 >> 32) || (h1 & 1023) != (h2 & 1023)) {
    GTEST_SKIP() << "this standard library hashes differently; the pair does not collide";
  }
  ASSERT_NE(h1, h2);
  LoanTable table;
  LoanSlot* s1 = Insert(table, k1);
  s1->last_seq = 1;
  EXPECT_EQ(table.Find(k2), nullptr) << "a tag match is not a key match";
  LoanSlot* s2 = Insert(table, k2);
  ASSERT_NE(s2, s1);
  s2->last_seq = 2;
  EXPECT_EQ(table.Find(k1), s1);
  EXPECT_EQ(table.Find(k2), s2);
  EXPECT_EQ(table.KeyOf(s2), k2);
  table.PopBack(k2);
  EXPECT_EQ(table.Find(k2), nullptr);
  EXPECT_EQ(table.Find(k1), s1);
  table.PopBack(k1);
  // The other order: the later key's run now starts with k2.
  s2 = Insert(table, k2);
  s1 = Insert(table, k1);
  EXPECT_NE(s1, s2);
  EXPECT_EQ(table.Find(k1), s1);
  EXPECT_EQ(table.Find(k2), s2);
  bool inserted = true;
  EXPECT_EQ(table.FindOrInsert(k2, &inserted), s2);
  EXPECT_FALSE(inserted);
  table.PopBack(k1);
  EXPECT_EQ(table.Find(k1), nullptr);
  EXPECT_EQ(table.Find(k2), s2);
}

// ---------------------------------------------------------------------------
// Pointer stability

TEST(LoanTable, PointersSurviveChunksIndexGrowthAndArenaChunks) {
  // 300,000 entries: 5 entry chunks, index growth from 1,024 to 524,288
  // positions, and ~9 MiB of keys (several 1 MiB arena chunks).
  constexpr size_t kLoans = 300'000;
  static_assert(kLoans > 4 * kEntriesPerChunk);
  LoanTable table;
  std::vector<LoanSlot*> slots;
  slots.reserve(kLoans);
  size_t key_bytes = 0;
  for (size_t i = 0; i < kLoans; ++i) {
    const std::string key = LoanKey(i, i % 2 ? "B0001" : "B0002");
    key_bytes += key.size() + 1;
    LoanSlot* slot = Insert(table, key);
    slot->last_seq = i;
    slot->balance_fen = -static_cast<int64_t>(i);
    slots.push_back(slot);
    if (::testing::Test::HasFailure()) return;
  }
  ASSERT_GT(key_bytes, 4 * kArenaChunkBytes);
  ASSERT_EQ(table.size(), kLoans);
  for (size_t i = 0; i < kLoans; ++i) {
    const std::string key = LoanKey(i, i % 2 ? "B0001" : "B0002");
    ASSERT_EQ(table.Find(key), slots[i]) << i;
    ASSERT_EQ(table.KeyOf(slots[i]), key) << i;
    ASSERT_EQ(slots[i]->last_seq, i);
    ASSERT_EQ(slots[i]->balance_fen, -static_cast<int64_t>(i));
  }
  size_t i = 0;
  table.ForEach([&](std::string_view, LoanSlot& slot) {
    if (i < kLoans) {
      EXPECT_EQ(&slot, slots[i]) << i;
    }
    ++i;
  });
  EXPECT_EQ(i, kLoans);
  EXPECT_EQ(table.Find(LoanKey(kLoans)), nullptr);
}

// ---------------------------------------------------------------------------
// Differential test against std::unordered_map

// Percentages of the operations of LoanTableModel::Step (the rest unwind
// up to unwind_max entries), and of fresh keys among the inserts.
struct Mix {
  uint64_t upsert;
  uint64_t find_present;
  uint64_t find_absent;
  uint64_t pop;
  uint64_t unwind_max;
  uint64_t new_key;
};
// Churn at a steady size: as many pops as inserts, some of them in runs.
constexpr Mix kChurn = {45, 20, 15, 15, 63, 5};
// Net growth: mostly fresh keys, fewer and shorter pops.
constexpr Mix kGrowth = {55, 15, 15, 12, 7, 70};

class LoanTableModel {
 public:
  explicit LoanTableModel(uint64_t seed) : rng_(seed) {}

  LoanTable& table() { return table_; }
  size_t size() const { return order_.size(); }
  const std::vector<std::string>& order() const { return order_; }
  const std::unordered_map<std::string, uint64_t>& values() const { return values_; }
  uint64_t Next() { return rng_(); }
  uint64_t Below(uint64_t n) { return rng_() % n; }

  // A key from a small space (2,048 loans of 4 institutions): hits existing
  // entries often and brings popped keys back.
  std::string SmallKey() {
    const uint64_t n = Below(2048);
    return LoanKey(n, n % 4 == 0 ? "B01" : n % 4 == 1 ? "B02" : n % 4 == 2 ? "B0003" : "B4");
  }
  // A key never drawn before.
  std::string FreshKey() { return LoanKey(fresh_++, "F"); }
  // A key popped recently, if any: pop-then-reinsert.
  std::string RecentlyPoppedKey() {
    if (popped_.empty()) return FreshKey();
    return popped_[Below(popped_.size())];
  }

  // FindOrInsert, checked against the reference; stores a new value.
  void Upsert(const std::string& key) {
    bool inserted = false;
    LoanSlot* slot = table_.FindOrInsert(key, &inserted);
    ASSERT_NE(slot, nullptr);
    auto it = values_.find(key);
    ASSERT_EQ(inserted, it == values_.end()) << Show(key) << " at size " << size();
    if (inserted) {
      EXPECT_EQ(slot->last_seq, 0u) << "a reinserted slot starts value-initialized";
      order_.push_back(key);
      it = values_.emplace(key, 0).first;
    } else {
      ASSERT_EQ(slot->last_seq, it->second) << Show(key);
    }
    ASSERT_EQ(table_.KeyOf(slot), key);
    const uint64_t value = Next() | 1;
    slot->last_seq = value;
    it->second = value;
    ASSERT_EQ(table_.size(), order_.size());
  }

  void FindPresent() {
    if (order_.empty()) return;
    const std::string& key = order_[Below(order_.size())];
    const LoanSlot* slot = table_.Find(key);
    ASSERT_NE(slot, nullptr) << Show(key) << " at size " << size();
    ASSERT_EQ(slot->last_seq, values_.at(key));
  }

  void FindMaybeAbsent(const std::string& key) {
    const LoanSlot* slot = table_.Find(key);
    auto it = values_.find(key);
    if (it == values_.end()) {
      ASSERT_EQ(slot, nullptr) << Show(key) << " was never inserted or was popped";
    } else {
      ASSERT_NE(slot, nullptr) << Show(key);
      ASSERT_EQ(slot->last_seq, it->second);
    }
  }

  // PopBack of the newest entry; the popped key must be gone and the
  // entries just before it (the ones most likely to share its probe run
  // after a batch) still found.
  void Pop() {
    ASSERT_FALSE(order_.empty());
    const std::string key = order_.back();
    table_.PopBack(key);
    order_.pop_back();
    values_.erase(key);
    ASSERT_EQ(table_.size(), order_.size());
    ASSERT_EQ(table_.Find(key), nullptr) << Show(key) << " found after PopBack";
    for (size_t k = order_.size(), n = 0; k > 0 && n < 4; --k, ++n) {
      const LoanSlot* slot = table_.Find(order_[k - 1]);
      ASSERT_NE(slot, nullptr) << Show(order_[k - 1]) << " lost by PopBack of " << Show(key);
      ASSERT_EQ(slot->last_seq, values_.at(order_[k - 1]));
    }
    if (popped_.size() < 4096) {
      popped_.push_back(key);
    } else {
      popped_[Below(popped_.size())] = key;
    }
  }

  void PopTo(size_t target) {
    while (order_.size() > target) {
      Pop();
      if (::testing::Test::HasFatalFailure()) return;
    }
  }

  // One random operation, drawn from `mix`.
  void Step(const Mix& mix) {
    uint64_t r = Below(100);
    if (r < mix.upsert) {
      const uint64_t k = Below(100);
      Upsert(k < mix.new_key ? FreshKey() : k < 90 ? SmallKey() : RecentlyPoppedKey());
    } else if ((r -= mix.upsert) < mix.find_present) {
      FindPresent();
    } else if ((r -= mix.find_present) < mix.find_absent) {
      const uint64_t k = Below(3);
      FindMaybeAbsent(k == 0 ? SmallKey() : k == 1 ? RecentlyPoppedKey() : LoanKey(Next(), "NONE"));
    } else if ((r -= mix.find_absent) < mix.pop) {
      if (!order_.empty()) Pop();
    } else {
      // Unwind a small batch.
      PopTo(order_.size() - std::min<size_t>(order_.size(), Below(mix.unwind_max + 1)));
    }
  }

  void Check() { ExpectTableMatches(table_, order_, values_); }

 private:
  std::mt19937_64 rng_;
  LoanTable table_;
  std::vector<std::string> order_;  // insertion order = entry order
  std::unordered_map<std::string, uint64_t> values_;
  std::vector<std::string> popped_;
  uint64_t fresh_ = 0;
};

TEST(LoanTable, MatchesUnorderedMapUnderRandomInsertFindAndPopBack) {
  LoanTableModel m(0x4c6f616e5461626cu);  // fixed seed: "LoanTabl"
  uint64_t operations = 0;

  // Phase 1: churn near the first index's 3/4 load (size ~700-767 of 1,024
  // positions, where probe runs are long and wrap around the end) with the
  // small key space, so that pops land inside long runs and keys come back.
  while (m.size() < 700) {
    m.Upsert(m.SmallKey());
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
  }
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < 400; ++i, ++operations) {
      if (m.size() < 690) {
        m.Upsert(m.Below(4) ? m.SmallKey() : m.RecentlyPoppedKey());
      } else if (m.size() > 766) {
        m.Pop();
      } else {
        m.Step(kChurn);
      }
      ASSERT_FALSE(::testing::Test::HasFatalFailure()) << "phase 1, round " << round;
    }
    m.Check();
    ASSERT_FALSE(::testing::Test::HasFailure()) << "phase 1, round " << round;
  }

  // Phase 2: batches that grow the table (index growths inside a batch),
  // each either committed or unwound LIFO to where it began; unwinding
  // after a growth leaves the bigger index behind.
  for (int batch = 0; batch < 120; ++batch) {
    const size_t mark = m.size();
    const uint64_t length = 1 + m.Below(4000);
    for (uint64_t i = 0; i < length; ++i, ++operations) {
      m.Step(kGrowth);
      ASSERT_FALSE(::testing::Test::HasFatalFailure()) << "phase 2, batch " << batch;
    }
    if (m.Below(3) == 0 && m.size() > mark) {
      m.PopTo(mark);  // the whole batch failed: unwind every insertion of it
      operations += length;
      ASSERT_FALSE(::testing::Test::HasFatalFailure()) << "phase 2, unwinding " << batch;
    }
    if (batch % 10 == 9) {
      m.Check();
      ASSERT_FALSE(::testing::Test::HasFailure()) << "phase 2, batch " << batch;
    }
  }
  m.Check();
  ASSERT_FALSE(::testing::Test::HasFailure());

  // Phase 3: unwind most of the table in one LIFO run, grow it back with
  // pop-then-reinsert of the same keys, and unwind again.
  const size_t peak = m.size();
  ASSERT_GT(peak, 20'000u) << "phase 2 should have grown the index several times";
  m.PopTo(peak / 8);
  operations += peak - peak / 8;
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  m.Check();
  ASSERT_FALSE(::testing::Test::HasFailure());
  while (m.size() < peak) {
    m.Upsert(m.Below(2) ? m.RecentlyPoppedKey() : m.Below(4) ? m.FreshKey() : m.SmallKey());
    ++operations;
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
  }
  m.Check();
  ASSERT_FALSE(::testing::Test::HasFailure());
  m.PopTo(0);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  m.Check();
  EXPECT_TRUE(Keys(m.table()).empty());
  for (int i = 0; i < 1000; ++i) m.FindMaybeAbsent(m.SmallKey());
  EXPECT_GT(operations, 300'000u);
}

TEST(LoanTable, PopBackAndReinsertAcrossAnEntryChunkBoundary) {
  // Unwind below the first 65,536-entry chunk's end and grow past it again
  // twice: entries of the second chunk are reused, not appended elsewhere.
  LoanTableModel m(7);
  while (m.size() < kEntriesPerChunk + 50) m.Upsert(m.FreshKey());
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  for (int round = 0; round < 2; ++round) {
    m.PopTo(kEntriesPerChunk - 50);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    m.Check();
    while (m.size() < kEntriesPerChunk + 50) {
      m.Upsert(m.Below(2) ? m.RecentlyPoppedKey() : m.FreshKey());
      ASSERT_FALSE(::testing::Test::HasFatalFailure());
    }
    m.Check();
    ASSERT_FALSE(::testing::Test::HasFailure()) << "round " << round;
  }
}

// ---------------------------------------------------------------------------
// Reserve

TEST(LoanTable, ReserveThenInsertsFindsAllInInsertionOrder) {
  constexpr size_t kLoans = 100'000;
  LoanTable table;
  table.Reserve(kLoans);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.Find(LoanKey(0)), nullptr);
  std::vector<std::string> order;
  std::unordered_map<std::string, uint64_t> values;
  std::vector<LoanSlot*> slots;
  for (size_t i = 0; i < kLoans; ++i) {
    order.push_back(LoanKey(i * 7919));
    LoanSlot* slot = Insert(table, order.back());
    slot->last_seq = i + 1;
    values.emplace(order.back(), i + 1);
    slots.push_back(slot);
  }
  ExpectTableMatches(table, order, values);
  for (size_t i = 0; i < kLoans; i += 997) EXPECT_EQ(table.Find(order[i]), slots[i]);
}

TEST(LoanTable, ReserveOnAFilledTableKeepsEveryEntry) {
  // Reserve rebuilds the index around existing entries; growing past the
  // reservation afterwards still works.
  LoanTable table;
  std::vector<std::string> order;
  std::unordered_map<std::string, uint64_t> values;
  std::vector<LoanSlot*> slots;
  auto add = [&](size_t count) {
    for (size_t i = 0; i < count; ++i) {
      order.push_back(LoanKey(order.size(), "R"));
      LoanSlot* slot = Insert(table, order.back());
      slot->last_seq = order.size();
      values.emplace(order.back(), order.size());
      slots.push_back(slot);
    }
  };
  add(1000);
  table.Reserve(10);  // smaller than size(): nothing to do
  ExpectTableMatches(table, order, values);
  table.Reserve(50'000);
  ExpectTableMatches(table, order, values);
  add(60'000);
  ExpectTableMatches(table, order, values);
  for (size_t i = 0; i < slots.size(); i += 101) EXPECT_EQ(table.Find(order[i]), slots[i]);
}

// ---------------------------------------------------------------------------
// Arena reuse after PopBack

TEST(LoanTable, PopBackThenInsertOfAnotherLengthKeepsEveryKey) {
  LoanTable table;
  const std::string a = "B0001\0short"s;
  const std::string b = "B0001\0a-somewhat-longer-loan-id"s;
  const std::string c = "B0001\0" + std::string(100, 'c');
  LoanSlot* sa = Insert(table, a);
  LoanSlot* sb = Insert(table, b);
  LoanSlot* sc = Insert(table, c);
  sa->last_seq = 1;
  sb->last_seq = 2;
  sc->last_seq = 3;

  table.PopBack(c);
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.Find(c), nullptr);
  const std::string d = "B2\0d"s;  // shorter than c
  LoanSlot* sd = Insert(table, d);
  EXPECT_EQ(sd->last_seq, 0u) << "the reused entry is value-initialized";
  EXPECT_EQ(table.KeyOf(sa), a);
  EXPECT_EQ(table.KeyOf(sb), b);
  EXPECT_EQ(table.KeyOf(sd), d);
  EXPECT_EQ(table.Find(c), nullptr);

  table.PopBack(d);
  table.PopBack(b);
  const std::string e = "B3\0"s + std::string(kKeyBytesMax - 3, 'e');  // longer than b
  const std::string f = "f"s;
  LoanSlot* se = Insert(table, e);
  LoanSlot* sf = Insert(table, f);
  EXPECT_EQ(table.size(), 3u);
  EXPECT_EQ(table.KeyOf(sa), a);
  EXPECT_EQ(table.KeyOf(se), e);
  EXPECT_EQ(table.KeyOf(sf), f);
  EXPECT_EQ(table.Find(a), sa);
  EXPECT_EQ(table.Find(a)->last_seq, 1u);
  EXPECT_EQ(table.Find(e), se);
  EXPECT_EQ(table.Find(f), sf);
  EXPECT_EQ(table.Find(b), nullptr);
  EXPECT_EQ(table.Find(d), nullptr);
  EXPECT_EQ(Keys(table), (std::vector<std::string>{a, e, f}));

  // Popping down to empty and starting over.
  table.PopBack(f);
  table.PopBack(e);
  table.PopBack(a);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.Find(a), nullptr);
  LoanSlot* sg = Insert(table, c);
  LoanSlot* sh = Insert(table, a);
  EXPECT_EQ(table.KeyOf(sg), c);
  EXPECT_EQ(table.KeyOf(sh), a);
  EXPECT_EQ(Keys(table), (std::vector<std::string>{c, a}));
}

TEST(LoanTable, PopBackThenInsertAtAnArenaChunkBoundaryKeepsEveryKey) {
  // Each key takes its length + 1 arena bytes. 4,095 keys of 255 bytes fill
  // 1 MiB - 256 bytes; one of 254 leaves a single byte; the next key does
  // not fit and opens the second arena chunk. Popping around that boundary
  // and inserting keys of other lengths must leave every key intact.
  LoanTable table;
  std::vector<std::string> order;
  std::unordered_map<std::string, uint64_t> values;
  auto add = [&](std::string key) {
    LoanSlot* slot = Insert(table, key);
    slot->last_seq = order.size() + 1;
    values.emplace(key, order.size() + 1);
    order.push_back(std::move(key));
  };
  auto pop = [&] {
    table.PopBack(order.back());
    values.erase(order.back());
    order.pop_back();
  };
  const size_t full_keys = kArenaChunkBytes / (kKeyBytesMax + 1) - 1;
  for (size_t i = 0; i < full_keys; ++i) add(KeyOfLength(i, kKeyBytesMax));
  add(KeyOfLength(90'000'001, kKeyBytesMax - 1));  // 1 byte left in the first chunk
  add(KeyOfLength(90'000'010, 0));                 // needs 1 byte: fits exactly
  ExpectTableMatches(table, order, values);
  pop();                            // 1 byte left again
  add(KeyOfLength(90'000'011, 1));  // needs 2: opens the second chunk
  ExpectTableMatches(table, order, values);
  pop();
  add(KeyOfLength(90'000'002, 5));  // needs 6: second chunk
  ExpectTableMatches(table, order, values);

  pop();                             // back to the first chunk's end
  add(KeyOfLength(90'000'003, 12));  // second chunk again
  ExpectTableMatches(table, order, values);

  pop();
  pop();                                       // 256 bytes free in the first chunk
  add(KeyOfLength(90'000'004, kKeyBytesMax));  // fills the first chunk exactly
  add(KeyOfLength(90'000'005, 9));             // second chunk, offset 0
  add(KeyOfLength(90'000'006, 200));
  ExpectTableMatches(table, order, values);

  pop();
  pop();
  pop();                              // 256 bytes free again
  add(KeyOfLength(90'000'007, 100));  // fits in the first chunk
  add(KeyOfLength(90'000'008, 154));  // fits: 1 byte left
  add(KeyOfLength(90'000'009, 1));    // needs 2: second chunk
  ExpectTableMatches(table, order, values);

  // Keep going through a few more arena chunks with pops in between.
  for (uint32_t i = 0; i < 3 * full_keys; ++i) {
    add(KeyOfLength(100'000 + i, 4 + i % (kKeyBytesMax - 3)));
    if (i % 7 == 3) pop();
  }
  ExpectTableMatches(table, order, values);
}

// ---------------------------------------------------------------------------
// Contract checks (LL_CHECK prints "file:line: invariant failed: cond" and
// aborts)

TEST(LoanTableDeathTest, PopBackOfAKeyThatIsNotTheNewestAborts) {
  LoanTable table;
  Insert(table, LoanKey(1));
  Insert(table, LoanKey(2));
  EXPECT_DEATH(table.PopBack(LoanKey(1)),
               "loan_table\\.cc:[0-9]+: invariant failed: KeyAt\\(e\\.key_pos\\) == key");
  EXPECT_DEATH(table.PopBack(LoanKey(3)),
               "loan_table\\.cc:[0-9]+: invariant failed: KeyAt\\(e\\.key_pos\\) == key");
  // The death tests ran in child processes: this table is unchanged.
  EXPECT_EQ(table.size(), 2u);
  table.PopBack(LoanKey(2));
  EXPECT_EQ(table.Find(LoanKey(2)), nullptr);
  EXPECT_NE(table.Find(LoanKey(1)), nullptr);
}

TEST(LoanTableDeathTest, PopBackOfAnEmptyTableAborts) {
  LoanTable table;
  EXPECT_DEATH(table.PopBack(LoanKey(1)), "loan_table\\.cc:[0-9]+: invariant failed: size_ > 0");
  Insert(table, LoanKey(1));
  table.PopBack(LoanKey(1));
  EXPECT_DEATH(table.PopBack(LoanKey(1)), "loan_table\\.cc:[0-9]+: invariant failed: size_ > 0");
}

TEST(LoanTableDeathTest, KeyLongerThan255BytesAborts) {
  LoanTable table;
  bool inserted = false;
  EXPECT_DEATH(table.FindOrInsert(std::string(kKeyBytesMax + 1, 'k'), &inserted),
               "loan_table\\.cc:[0-9]+: invariant failed: key\\.size\\(\\) <= 255");
}

}  // namespace
}  // namespace loanledger::storage
