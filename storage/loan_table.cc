#include "storage/loan_table.h"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>
#include <functional>

#include "schema/check.h"

namespace loanledger::storage {
namespace {

constexpr size_t kMinCapacity = 1024;

// The index stays at most 3/4 full: linear probing's expected probe length
// grows quickly beyond that.
size_t CapacityFor(size_t n) { return std::bit_ceil(std::max(kMinCapacity, n + n / 3 + 1)); }

}  // namespace

LoanTable::LoanTable() { Rebuild(kMinCapacity); }

uint64_t LoanTable::Hash(std::string_view key) { return std::hash<std::string_view>{}(key); }

std::string_view LoanTable::KeyAt(uint64_t pos) const {
  const char* p = arena_[pos >> kArenaShift].get() + (pos & (kArenaChunkBytes - 1));
  return {p + 1, static_cast<uint8_t>(p[0])};
}

std::string_view LoanTable::KeyOf(const LoanSlot* slot) const {
  static_assert(offsetof(Entry, slot) == 0);
  return KeyAt(reinterpret_cast<const Entry*>(slot)->key_pos);
}

uint64_t LoanTable::AppendKey(std::string_view key) {
  // Loan keys are institution_id + NUL + loan_id: far below 255 bytes.
  LL_CHECK(key.size() <= 255);
  const size_t need = key.size() + 1;
  size_t offset = arena_end_ & (kArenaChunkBytes - 1);
  size_t chunk = arena_end_ >> kArenaShift;
  if (arena_.empty() || offset + need > kArenaChunkBytes) {
    if (!arena_.empty()) ++chunk;  // the rest of the current chunk stays unused
    offset = 0;
  }
  if (chunk == arena_.size()) arena_.push_back(std::make_unique<char[]>(kArenaChunkBytes));
  char* p = arena_[chunk].get() + offset;
  p[0] = static_cast<char>(key.size());
  std::memcpy(p + 1, key.data(), key.size());
  const uint64_t pos = (static_cast<uint64_t>(chunk) << kArenaShift) | offset;
  arena_end_ = pos + need;
  return pos;
}

void LoanTable::Reserve(size_t n) {
  if (CapacityFor(n) > index_.size()) Rebuild(CapacityFor(n));
  chunks_.reserve((n >> kChunkShift) + 1);
}

void LoanTable::Rebuild(size_t capacity) {
  std::vector<uint64_t> index(capacity, kEmpty);
  const size_t mask = capacity - 1;
  for (size_t i = 0; i < size_; ++i) {
    const uint64_t h = Hash(KeyAt(EntryAt(i).key_pos));
    size_t p = h & mask;
    while (index[p] != kEmpty) p = (p + 1) & mask;
    index[p] = (h & 0xffffffff00000000u) | (i + 1);
  }
  index_ = std::move(index);
  mask_ = mask;
}

LoanSlot* LoanTable::Find(std::string_view key) {
  const uint64_t h = Hash(key);
  const uint64_t tag = h & 0xffffffff00000000u;
  for (size_t p = h & mask_;; p = (p + 1) & mask_) {
    const uint64_t v = index_[p];
    if (v == kEmpty) return nullptr;
    if ((v & 0xffffffff00000000u) == tag) {
      Entry& e = EntryAt((v & 0xffffffffu) - 1);
      if (KeyAt(e.key_pos) == key) return &e.slot;
    }
  }
}

LoanSlot* LoanTable::FindOrInsert(std::string_view key, uint64_t h, bool* inserted) {
  const uint64_t tag = h & 0xffffffff00000000u;
  size_t p = h & mask_;
  for (;; p = (p + 1) & mask_) {
    const uint64_t v = index_[p];
    if (v == kEmpty) break;
    if ((v & 0xffffffff00000000u) == tag) {
      Entry& e = EntryAt((v & 0xffffffffu) - 1);
      if (KeyAt(e.key_pos) == key) {
        *inserted = false;
        return &e.slot;
      }
    }
  }
  // Entry numbers are 32-bit in the index: 4 billion loans per store.
  LL_CHECK(size_ < 0xffffffffu);
  const size_t i = size_;
  if ((i >> kChunkShift) == chunks_.size()) {
    chunks_.push_back(std::make_unique<Entry[]>(kChunkEntries));
  }
  Entry& e = EntryAt(i);
  e.slot = LoanSlot{};
  e.key_pos = AppendKey(key);
  ++size_;
  if (CapacityFor(size_) > index_.size()) {
    Rebuild(CapacityFor(size_));  // doubles the index; places the new entry too
  } else {
    index_[p] = tag | (i + 1);
  }
  *inserted = true;
  return &e.slot;
}

size_t LoanTable::PositionOf(size_t i, uint64_t h) const {
  for (size_t p = h & mask_;; p = (p + 1) & mask_) {
    LL_CHECK(index_[p] != kEmpty);
    if ((index_[p] & 0xffffffffu) == i + 1) return p;
  }
}

void LoanTable::PopBack(std::string_view key) {
  LL_CHECK(size_ > 0);
  const size_t last = size_ - 1;
  Entry& e = EntryAt(last);
  LL_CHECK(KeyAt(e.key_pos) == key);
  // Clearing its index position is enough: the present entries are always
  // a prefix of the insertion order (only the newest leaves), and the
  // index holds exactly what inserting that prefix in order gives (Rebuild
  // re-inserts in entry order). No older entry's probe run passed over this
  // position, which was empty when they were placed.
  index_[PositionOf(last, Hash(key))] = kEmpty;
  arena_end_ = e.key_pos;  // keys are appended in entry order: this was the newest
  e.slot = LoanSlot{};
  --size_;
}

}  // namespace loanledger::storage
