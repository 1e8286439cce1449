// LoanTable: every loan's LoanSlot by loan key, in memory (internal to
// storage/). Replaces std::unordered_map<std::string, LoanSlot>, whose
// two allocations per loan (node, key) and rehashes dominated the start of a
// 10M-loan store and whose node chasing cost the writer cache misses.
//
// Layout: slots live in fixed-size chunks (addresses never move, so the
// writer's undo log keeps pointers), one 64-byte entry per loan holding the
// slot and where its key is; keys are packed in an append-only arena; an
// open-addressing index (linear probing, power-of-two capacity) maps a
// key's hash to its entry. Removal is only of the newest entry (the writer
// unwinds its insertions last-in first-out), so entries stay dense and a
// removal only clears one index position.
//
// Not thread-safe: the ledger guards it with loans_mu_.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "storage/loan_slot.h"

namespace loanledger::storage {

class LoanTable {
 public:
  LoanTable();
  LoanTable(const LoanTable&) = delete;
  LoanTable& operator=(const LoanTable&) = delete;

  size_t size() const { return size_; }

  // Makes room for n loans without growing the index again.
  void Reserve(size_t n);

  // The slot of `key`, or nullptr.
  LoanSlot* Find(std::string_view key);
  const LoanSlot* Find(std::string_view key) const {
    return const_cast<LoanTable*>(this)->Find(key);
  }

  // The slot of `key`, appended (value-initialized) when absent; *inserted
  // says which. The returned pointer stays valid until that entry is popped.
  LoanSlot* FindOrInsert(std::string_view key, bool* inserted) {
    return FindOrInsert(key, Hash(key), inserted);
  }
  // The same with the key's Hash() computed by the caller, who may have
  // Prefetch()ed its index position (bulk loading).
  LoanSlot* FindOrInsert(std::string_view key, uint64_t hash, bool* inserted);
  static uint64_t Hash(std::string_view key);
  void Prefetch(uint64_t hash) const { __builtin_prefetch(&index_[hash & mask_]); }
  // Later stages of a lookup pipeline (the writer works a batch several
  // keys ahead): once the index word is cached, fetch the entry it names;
  // once the entry is cached, fetch its key's bytes. Hints only: they read
  // the index/entry (harmless if another key is there) and never fault.
  void PrefetchEntry(uint64_t hash) const {
    const uint64_t v = index_[hash & mask_];
    if (v != kEmpty) __builtin_prefetch(&EntryAt((v & 0xffffffffu) - 1));
  }
  void PrefetchKey(uint64_t hash) const {
    const uint64_t v = index_[hash & mask_];
    if (v != kEmpty) __builtin_prefetch(KeyAt(EntryAt((v & 0xffffffffu) - 1).key_pos).data() - 1);
  }

  // Removes the newest entry. REQUIRES: size() > 0 and its key is `key`
  // (checked: the caller's undo log and the table must agree).
  void PopBack(std::string_view key);

  // The key of the entry holding `slot`; stable while the entry exists.
  std::string_view KeyOf(const LoanSlot* slot) const;

  // Calls f(key, slot) for every loan, oldest first.
  template <typename F>
  void ForEach(F&& f) {
    for (size_t i = 0; i < size_; ++i) {
      Entry& e = EntryAt(i);
      f(KeyAt(e.key_pos), e.slot);
    }
  }
  // Calls f(key, slot) for the loans in positions [begin, min(end, size()))
  // (a position is the order of insertion; a snapshot reads the table in
  // pieces).
  template <typename F>
  void ForEachIn(size_t begin, size_t end, F&& f) const {
    for (size_t i = begin; i < std::min(end, size_); ++i) {
      const Entry& e = EntryAt(i);
      f(KeyAt(e.key_pos), e.slot);
    }
  }
  // Calls f(slot) for the loans in positions [begin, min(end, size())),
  // without their keys (a key is a read elsewhere in memory).
  template <typename F>
  void ForEachSlotIn(size_t begin, size_t end, F&& f) {
    for (size_t i = begin; i < std::min(end, size_); ++i) f(EntryAt(i).slot);
  }

 private:
  struct Entry {
    LoanSlot slot;
    uint64_t key_pos;  // arena position of the key: (chunk << kArenaShift) | offset
  };
  static_assert(sizeof(Entry) == 64, "one loan, one cache line");

  static constexpr size_t kChunkShift = 16;  // 65,536 entries (4 MiB) per chunk
  static constexpr size_t kChunkEntries = size_t{1} << kChunkShift;
  static constexpr size_t kArenaShift = 20;  // 1 MiB key chunks
  static constexpr size_t kArenaChunkBytes = size_t{1} << kArenaShift;
  // Index entries: 0 = empty; else (hash high 32 bits << 32) | (entry + 1).
  static constexpr uint64_t kEmpty = 0;

  Entry& EntryAt(size_t i) { return chunks_[i >> kChunkShift][i & (kChunkEntries - 1)]; }
  const Entry& EntryAt(size_t i) const {
    return chunks_[i >> kChunkShift][i & (kChunkEntries - 1)];
  }
  std::string_view KeyAt(uint64_t pos) const;
  uint64_t AppendKey(std::string_view key);
  // Index position holding entry `i` (whose key hashes to h). REQUIRES: present.
  size_t PositionOf(size_t i, uint64_t h) const;
  void Rebuild(size_t capacity);  // re-inserts every entry into a new index

  std::vector<std::unique_ptr<Entry[]>> chunks_;
  std::vector<std::unique_ptr<char[]>> arena_;
  uint64_t arena_end_ = 0;       // next free arena position
  std::vector<uint64_t> index_;  // capacity a power of two
  size_t mask_ = 0;              // index_.size() - 1
  size_t size_ = 0;
};

}  // namespace loanledger::storage
