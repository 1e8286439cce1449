// Verify (docs/data.md, "The journal"): replays the whole journal from nothing,
// recomputing loan states and every cell, and compares with the stored
// cells, the in-memory loan states and the in-memory aggregates. Reads one RocksDB
// snapshot, so writers go on meanwhile.
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "schema/check.h"
#include "storage/ledger_impl.h"
#include "storage/rocks_status.h"

namespace loanledger::storage {
namespace {

constexpr size_t kDifferencesMax = 1000;  // enough to diagnose; bounded for a badly broken store

class Differences {
 public:
  explicit Differences(VerifyReport* report) : report_(report) {}
  void Add(std::string what, int64_t expected, int64_t actual) {
    if (report_->differences.size() < kDifferencesMax) {
      report_->differences.push_back(VerifyDifference{std::move(what), expected, actual});
    }
  }

 private:
  VerifyReport* report_;
};

std::string CellName(const CellKey& k, const std::vector<std::string>& names, const Rules& rules) {
  std::string inst =
      k.institution < names.size() ? names[k.institution] : "#" + std::to_string(k.institution);
  const auto c = static_cast<size_t>(k.category);
  const std::string category = c < rules.category_count()
                                   ? std::string(rules.CategoryName(k.category))
                                   : "#" + std::to_string(c);
  const std::string place = k.province >= kRegionGroupCellBase
                                ? "group" + std::to_string(k.province - kRegionGroupCellBase)
                                : std::to_string(k.province);
  return "cell " + category + "/" + place + "/" + inst + "/" + FormatDate(k.day);
}

void CompareMeasures(const std::string& what, const Measures& expected, const Measures& actual,
                     Differences* d) {
  if (expected.balance_fen != actual.balance_fen)
    d->Add(what + " balance_fen", expected.balance_fen, actual.balance_fen);
  if (expected.loan_count != actual.loan_count)
    d->Add(what + " loan_count", expected.loan_count, actual.loan_count);
  if (expected.disbursed_fen != actual.disbursed_fen) {
    d->Add(what + " disbursed_fen", expected.disbursed_fen, actual.disbursed_fen);
  }
  if (expected.repaid_fen != actual.repaid_fen)
    d->Add(what + " repaid_fen", expected.repaid_fen, actual.repaid_fen);
  if (expected.written_off_fen != actual.written_off_fen) {
    d->Add(what + " written_off_fen", expected.written_off_fen, actual.written_off_fen);
  }
}

// Verify's step 3: the stored cells visible to `ro` against the replay's.
Status CompareStoredCells(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf_cells,
                          const rocksdb::ReadOptions& ro, const std::map<uint64_t, Measures>& cells,
                          const std::vector<std::string>& names, const Rules& rules,
                          VerifyReport* report, Differences* diff) {
  std::map<uint64_t, Measures> stored;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf_cells));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    CellKey key;
    Measures m;
    if (!DecodeCellKey(std::string_view(it->key().data(), it->key().size()), &key) ||
        !DecodeMeasures(std::string_view(it->value().data(), it->value().size()), &m)) {
      diff->Add("cell undecodable: " + it->key().ToString(true), 0, 1);
      continue;
    }
    stored[PackCell(key)] = m;
  }
  if (!it->status().ok()) return FromRocks(it->status(), "read cells");
  for (const auto& [packed, m] : cells) {
    if (m.IsZero()) continue;
    ++report->cells_checked;
    auto s = stored.find(packed);
    CompareMeasures(CellName(UnpackCell(packed), names, rules), m,
                    s == stored.end() ? Measures{} : s->second, diff);
  }
  for (const auto& [packed, m] : stored) {
    auto c = cells.find(packed);
    if (c == cells.end() || c->second.IsZero()) {
      ++report->cells_checked;
      CompareMeasures(CellName(UnpackCell(packed), names, rules), Measures{}, m, diff);
    }
  }
  return Status::Ok();
}

// Verify's step 4, loans: the replayed states against the in-memory table.
void CompareLoans(const std::unordered_map<std::string, LoanSlot>& loans, const LoanTable& table,
                  Classifier& replayed, Classifier& live, VerifyReport* report, Differences* diff) {
  size_t replayed_loans = 0;
  for (const auto& [key, r] : loans) {
    if (!r.exists) continue;
    ++replayed_loans;
    ++report->loans_checked;
    std::string_view inst, loan;
    SplitLoanKey(key, &inst, &loan);
    const std::string what = "loan " + std::string(inst) + "/" + std::string(loan);
    const LoanSlot* slot = table.Find(key);
    if (slot == nullptr || !slot->exists) {
      diff->Add(what + " in the journal but not in memory", 1, 0);
      continue;
    }
    if (r.balance_fen != slot->balance_fen)
      diff->Add(what + " balance_fen", r.balance_fen, slot->balance_fen);
    if (r.last_seq != slot->last_seq) {
      diff->Add(what + " last_seq", static_cast<int64_t>(r.last_seq),
                static_cast<int64_t>(slot->last_seq));
    }
    if (r.last_date != slot->last_date)
      diff->Add(what + " last_business_date", r.last_date, slot->last_date);
    if (!(r.attributes == slot->attributes)) diff->Add(what + " attributes", 0, 1);
    const RuleMask expected = replayed.MaskOf(r);
    const RuleMask actual = live.MaskOf(*slot);
    if (expected != actual) {
      diff->Add(what + " category mask", static_cast<int64_t>(expected),
                static_cast<int64_t>(actual));
    }
  }
  if (replayed_loans != table.size()) {
    diff->Add("number of loans", static_cast<int64_t>(replayed_loans),
              static_cast<int64_t>(table.size()));
  }
}

// Verify's step 4, aggregates: the in-memory cells against the replay's.
void CompareAggregates(const std::map<uint64_t, Measures>& cells, const Aggregator& agg,
                       const std::vector<std::string>& names, const Rules& rules,
                       Differences* diff) {
  std::map<uint64_t, Measures> in_memory;
  agg.ForEachCellSeries([&](Category c, uint8_t p, uint32_t inst, const DaySeries& s) {
    s.ForEachDay([&](Day d, const Measures& m) {
      if (!m.IsZero()) in_memory[PackCell(CellKey{c, p, inst, d})] = m;
    });
  });
  for (const auto& [packed, m] : cells) {
    if (m.IsZero()) continue;
    auto s = in_memory.find(packed);
    CompareMeasures("in-memory " + CellName(UnpackCell(packed), names, rules), m,
                    s == in_memory.end() ? Measures{} : s->second, diff);
  }
  for (const auto& [packed, m] : in_memory) {
    auto c = cells.find(packed);
    if (c == cells.end() || c->second.IsZero()) {
      CompareMeasures("in-memory " + CellName(UnpackCell(packed), names, rules), Measures{}, m,
                      diff);
    }
  }
}

}  // namespace

Status ReplayJournal(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf_journal,
                     const rocksdb::ReadOptions& ro,
                     const std::unordered_map<std::string, uint32_t>& ids, Classifier* classifier,
                     JournalReplay* out, const std::function<void(std::string)>& problem,
                     std::atomic<uint64_t>* progress) {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf_journal));
  uint64_t expect_no = out->next_batch_no;
  JournalRecord rec;
  for (it->Seek(EncodeJournalKey(expect_no)); it->Valid(); it->Next()) {
    uint64_t batch_no = 0;
    if (progress != nullptr) progress->fetch_add(1, std::memory_order_relaxed);
    if (!DecodeJournalKey(std::string_view(it->key().data(), it->key().size()), &batch_no) ||
        !DecodeJournalRecord(std::string_view(it->value().data(), it->value().size()), &rec)) {
      problem("journal record undecodable at batch " + std::to_string(expect_no));
      ++expect_no;
      continue;
    }
    if (batch_no != expect_no) {
      problem("journal batch number " + std::to_string(batch_no) + ", expected " +
              std::to_string(expect_no));
    }
    expect_no = batch_no + 1;
    ++out->batches;
    for (size_t i = 0; i < rec.events.size(); ++i) {
      const LoanEvent& e = rec.events[i];
      ++out->events;
      const std::string where =
          "journal batch " + std::to_string(batch_no) + " event " + std::to_string(i);
      if (auto fe = ValidateEvent(e)) {
        problem(where + " invalid: " + fe->message);
        continue;
      }
      LoanSlot& slot = out->loans[LoanKey(e.institution_id, e.loan_id)];
      SlotBefore before;
      EventStep step = StepLoan(e, &slot, &before, classifier, kDisbursedRoomUnchecked);
      if (step.kind == EventStep::Kind::kRejected) {
        problem(where + " does not apply: " + step.message);
        continue;
      }
      if (step.kind == EventStep::Kind::kDuplicate) continue;
      auto id = ids.find(e.institution_id);
      if (id == ids.end()) {
        problem(where + " institution without id: " + e.institution_id);
        continue;
      }
      EmitDeltas(before, slot, step, e,
                 [&](Category c, uint8_t province, Day day, const Measures& m) {
                   out->cells[PackCell(CellKey{c, province, id->second, day})] += m;
                 });
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "read journal");
  out->next_batch_no = expect_no;
  return Status::Ok();
}

// The institution dictionary visible to `ro`.
Status ReadInstitutions(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf_meta,
                        const rocksdb::ReadOptions& ro,
                        std::unordered_map<std::string, uint32_t>* ids,
                        std::vector<std::string>* names) {
  names->assign(1, std::string());
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf_meta));
  for (it->Seek(kMetaInstitutionPrefix);
       it->Valid() && it->key().starts_with(kMetaInstitutionPrefix); it->Next()) {
    std::string name;
    uint32_t id = 0;
    if (!DecodeInstitutionEntry(std::string_view(it->key().data(), it->key().size()),
                                std::string_view(it->value().data(), it->value().size()), &name,
                                &id)) {
      return Status::Corruption("bad institution entry " + it->key().ToString());
    }
    if (names->size() <= id) names->resize(id + 1);
    (*names)[id] = name;
    ids->emplace(std::move(name), id);
  }
  if (!it->status().ok()) return FromRocks(it->status(), "read institutions");
  return Status::Ok();
}

Result<VerifyReport> LedgerImpl::Verify() {
  VerifyReport report;
  Differences diff(&report);
  const rocksdb::Snapshot* snapshot = nullptr;
  uint64_t next_batch_at_snapshot = 0;
  std::shared_ptr<const Rules> rules;  // the rules the stored cells were computed under
  {
    std::lock_guard write_lock(write_mu_);  // a snapshot between two groups
    snapshot = db_->GetSnapshot();
    next_batch_at_snapshot = next_batch_no_;
    rules = rules_;
  }
  struct Release {
    rocksdb::DB* db;
    const rocksdb::Snapshot* s;
    ~Release() { db->ReleaseSnapshot(s); }
  } release{db_.get(), snapshot};
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;

  // Institutions as of the snapshot.
  std::unordered_map<std::string, uint32_t> ids;
  std::vector<std::string> names;
  if (Status st = ReadInstitutions(db_.get(), cf_meta_, ro, &ids, &names); !st.ok()) return st;

  // 1. Replay the journal from nothing.
  JournalReplay replay;
  Classifier classifier(rules);
  if (Status st = ReplayJournal(
          db_.get(), cf_journal_, ro, ids, &classifier, &replay,
          [&](std::string what) { diff.Add(std::move(what), 0, 1); }, nullptr);
      !st.ok())
    return st;
  report.batches_replayed = replay.batches;
  report.events_replayed = replay.events;
  if (replay.next_batch_no != next_batch_at_snapshot) {
    diff.Add("journal end vs next batch number", static_cast<int64_t>(next_batch_at_snapshot),
             static_cast<int64_t>(replay.next_batch_no));
  }
  auto& loans = replay.loans;
  auto& cells = replay.cells;

  // 2. Loan states: compared with the in-memory table in step 4 (their
  //    durable form is a snapshot plus the journal, which open replays).

  // 3. Stored cells against the replay.
  if (Status st =
          CompareStoredCells(db_.get(), cf_cells_, ro, cells, names, *rules, &report, &diff);
      !st.ok())
    return st;

  // 4. The in-memory loan states and aggregates, when no batch landed
  //    since the snapshot. (Lock order as the writer's: loans, then aggregates.)
  std::shared_lock loans_lock(loans_mu_);
  std::shared_lock lock(agg_mu_);
  if (next_batch_no_ == next_batch_at_snapshot && rules_ == rules) {
    CompareLoans(loans, loans_, classifier, *classifier_, &report, &diff);
    CompareAggregates(cells, agg_, names, *rules, &diff);
  }
  return report;
}

Result<uint64_t> LedgerImpl::RebuildAggregates() {
  std::lock_guard apply_lock(rules_apply_mu_);
  std::shared_ptr<const Rules> rules;
  {
    std::lock_guard write_lock(write_mu_);
    rules = rules_;
  }
  return RecomputeAndSwitch(std::move(rules), false, nullptr);
}

}  // namespace loanledger::storage
