// The apply path (docs/data.md). Data flow of one group: validate each
// batch against the in-memory loan table (slots changed in place, with an
// undo log) -> fold accepted batches' cell changes -> one WriteBatch (one
// journal record per batch, cell values, meta) written with sync -> publish
// the changes to the in-memory aggregates. Loan states reach the disk
// through snapshots (snapshot.cc); open (ledger.cc) loads the newest and
// replays the journal since with the same StepLoan.
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>

#include "schema/check.h"
#include "schema/limits.h"
#include "storage/ledger_impl.h"
#include "storage/rocks_status.h"

namespace loanledger::storage {
namespace {

int64_t SystemClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

EventStep StepLoan(const LoanEvent& e, LoanSlot* slot, SlotBefore* before, Classifier* classifier,
                   int64_t disbursed_room_fen) {
  LL_CHECK(disbursed_room_fen >= 0);
  // Slots come from StepLoan itself or from DecodeLoanSlot, which checks this.
  LL_CHECK(!slot->exists || (slot->last_seq > 0 && slot->balance_fen >= 0 &&
                             slot->balance_fen <= kLoanBalanceFenMax));
  EventStep step;
  const uint64_t last = slot->exists ? slot->last_seq : 0;
  auto reject = [&](Reason r, std::string detail) {
    step.kind = EventStep::Kind::kRejected;
    step.reason = r;
    step.message = std::string(ReasonDescription(r)) + " (" + std::move(detail) + ")";
    return step;
  };
  if (e.seq <= last) {
    step.kind = EventStep::Kind::kDuplicate;
    return step;
  }
  if (e.seq > last + 1) {
    return reject(Reason::kSeqGap,
                  "seq " + std::to_string(e.seq) + ", last applied " + std::to_string(last));
  }
  if (!slot->exists && e.kind != EventKind::kDisburse) {
    return reject(Reason::kFirstEventNotDisburse, std::string(EventKindName(e.kind)));
  }
  if (slot->exists && e.business_date < slot->last_date) {
    return reject(Reason::kDateBeforePrevious,
                  FormatDate(e.business_date) + " before " + FormatDate(slot->last_date));
  }
  const int64_t balance = slot->exists ? slot->balance_fen : 0;
  int64_t next = balance;
  switch (e.kind) {
    case EventKind::kDisburse:
      if (e.amount_fen > kLoanBalanceFenMax - balance) {
        return reject(Reason::kBalanceLimit,
                      "balance " + std::to_string(balance) + " + " + std::to_string(e.amount_fen));
      }
      if (e.amount_fen > disbursed_room_fen) {  // the reason says it all: no detail
        step.kind = EventStep::Kind::kRejected;
        step.reason = Reason::kLedgerCapacity;
        step.message = std::string(ReasonDescription(Reason::kLedgerCapacity));
        return step;
      }
      next = balance + e.amount_fen;
      break;
    case EventKind::kRepay:
    case EventKind::kWriteOff:
      if (e.amount_fen > balance) {
        return reject(Reason::kOverdraw,
                      std::to_string(e.amount_fen) + " > balance " + std::to_string(balance));
      }
      next = balance - e.amount_fen;
      break;
    case EventKind::kReclassify:
      break;
  }
  *before = SlotBefore{slot->exists, balance, 0, slot->province(), 0};
  const bool groups = classifier != nullptr && classifier->rules()->region_group_count() > 0;
  if (classifier != nullptr && slot->exists) {
    before->mask = classifier->Resolve(slot);
    if (groups) before->region_groups = classifier->GroupsOf(slot->attributes.region);
  }
  // Most events repeat the loan's attributes: then its classification stands.
  const PackedAttributes packed = PackedAttributes::From(e.attributes);
  if (!slot->exists || !(slot->attributes == packed)) {
    slot->attributes = packed;
    slot->mask = classifier != nullptr ? classifier->Intern(e.attributes) : kMaskUnresolved;
    if (classifier != nullptr) step.mask = classifier->Resolve(slot);
    if (groups) step.region_groups = classifier->GroupsOf(packed.region);
  } else {
    step.mask = before->mask;
    step.region_groups = before->region_groups;
  }
  slot->exists = true;
  slot->last_seq = e.seq;
  slot->last_date = e.business_date;
  slot->balance_fen = next;
  step.kind = EventStep::Kind::kApplied;
  LL_CHECK(next >= 0 && next <= kLoanBalanceFenMax);
  return step;
}

// The state of one ApplyGroup call. Loan slots are changed in place in
// loans_ (under loans_mu_, exclusive for the whole group) with an undo log:
// a rejected batch unwinds its own entries, a failed write unwinds all.
// Unwinding goes newest first, so loans this group inserted leave loans_ in
// the reverse order they entered it (LoanTable::PopBack).
struct LedgerImpl::Group {
  struct Undo {
    std::string_view key;  // the loan key, held by loans_ (stable while the entry exists)
    LoanSlot* slot;        // its slot in loans_ (stable address)
    LoanSlot before;       // its value before the batch first touched it
    bool inserted;         // the slot was created by this batch: erase on unwind
  };
  std::vector<Undo> undo;  // in touch order
  EventKeys keys;          // ProcessBatch's keys and hashes (reused)
  std::vector<std::pair<std::string, uint32_t>> new_institutions;  // assigned by accepted batches
  uint32_t next_institution_id = 0;
  DeltaMap deltas;                  // cell changes of accepted batches
  int64_t disbursed_total_fen = 0;  // lifetime disbursements incl. this group
  uint64_t next_batch_no = 0;
  uint64_t events_applied = 0;                            // by accepted batches
  std::vector<std::pair<uint64_t, std::string>> journal;  // (batch_no, record)
  int64_t received_ms = 0;
  uint64_t log_position = 0;  // cluster mode: of the group's last record; 0 = not replicated
};

uint32_t LedgerImpl::InstitutionIdFor(const std::string& name, Group* g,
                                      std::vector<std::pair<std::string, uint32_t>>* local_new) {
  // Only the writer mutates institution_ids_, and it holds write_mu_: no agg_mu_ needed to read.
  if (auto it = institution_ids_.find(name); it != institution_ids_.end()) return it->second;
  for (const auto& [n, id] : g->new_institutions) {
    if (n == name) return id;
  }
  for (const auto& [n, id] : *local_new) {
    if (n == name) return id;
  }
  const uint32_t id = g->next_institution_id++;
  LL_CHECK(id <= kInstitutionsMax);  // 16M institutions; far beyond any country's banks
  local_new->emplace_back(name, id);
  return id;
}

void LedgerImpl::Unwind(Group* g, size_t to) {
  LL_CHECK(to <= g->undo.size());
  while (g->undo.size() > to) {
    Group::Undo& u = g->undo.back();
    if (u.inserted) {
      loans_.PopBack(u.key);
    } else {
      *u.slot = std::move(u.before);
    }
    g->undo.pop_back();
  }
}

// The state of one ProcessBatch call: its answer so far, and what the batch
// adds to the group if it is accepted.
struct LedgerImpl::BatchWork {
  ApplyResult result;
  uint64_t stamp = 0;                        // marks slots first touched by this batch
  size_t undo_mark = 0;                      // the group's undo log before the batch
  std::unordered_set<std::string> poisoned;  // loans with a rejected event in this batch
  std::vector<std::pair<std::string, uint32_t>> local_new;  // institution ids it assigned
  DeltaMap deltas;                                          // its cell changes
  int64_t disbursed_fen = 0;                      // lifetime disbursements with its applied events
  const std::string* last_institution = nullptr;  // events of a batch mostly share one
  uint32_t last_institution_id = 0;

  void Reject(size_t i, Reason r, std::string message) {
    result.rejections.push_back(EventRejection{static_cast<uint32_t>(i), r, std::move(message)});
  }
};

ApplyResult LedgerImpl::ProcessBatch(const Batch& batch, Group* g) {
  BatchWork w;
  w.stamp = ++touch_stamp_;
  w.undo_mark = g->undo.size();
  w.disbursed_fen = g->disbursed_total_fen;
  if (batch.events.empty() || batch.events.size() > kBatchEventsMax) {
    // The protocol layer bounds batches; an empty or oversize one here is a caller's bug.
    w.Reject(0, Reason::kMalformedRecord,
             "a batch holds 1.." + std::to_string(kBatchEventsMax) + " events");
    return std::move(w.result);
  }
  // Loan lookups are cache misses in a large table (index word, entry, key
  // bytes): hash every key first, then fetch each stage a few events ahead.
  // Each event changes a few cells (TOTAL and its categories): sized once,
  // the map is not rehashed as it grows (perf on workload b).
  w.deltas.reserve(batch.events.size() * 4);
  g->keys.Build(batch.events);
  const std::vector<uint64_t>& hashes = g->keys.hashes;
  constexpr size_t kAhead = 8;
  for (size_t i = 0; i < batch.events.size(); ++i) {
    if (i + 3 * kAhead < hashes.size()) loans_.Prefetch(hashes[i + 3 * kAhead]);
    if (i + 2 * kAhead < hashes.size()) loans_.PrefetchEntry(hashes[i + 2 * kAhead]);
    if (i + kAhead < hashes.size()) loans_.PrefetchKey(hashes[i + kAhead]);
    ProcessEvent(batch, i, g, &w);
  }
  if (!w.result.rejections.empty()) return RejectBatch(g, &w);
  return AcceptBatch(batch, g, &w);
}

// One event of ProcessBatch: checked, applied to its loan's slot (the rules
// of StepLoan) and, while the batch has no rejection, folded into its cells.
void LedgerImpl::ProcessEvent(const Batch& batch, size_t i, Group* g, BatchWork* w) {
  const LoanEvent& e = batch.events[i];
  if (auto fe = ValidateEvent(e)) {
    w->Reject(i, fe->reason, std::move(fe->message));
    if (IsValidInstitutionId(e.institution_id) && IsValidLoanId(e.loan_id)) {
      w->poisoned.insert(LoanKey(e.institution_id, e.loan_id));
    }
    return;
  }
  if (!batch.caller_institution.empty() && e.institution_id != batch.caller_institution) {
    w->Reject(i, Reason::kWrongInstitution,
              "event for " + e.institution_id + ", caller is " + batch.caller_institution);
    return;
  }
  const std::string_view key = g->keys.Key(i);
  if (!w->poisoned.empty() && w->poisoned.contains(std::string(key)))
    return;  // its earlier event is already reported
  LoanSlot& slot = TouchSlot(key, g->keys.hashes[i], w->stamp, g);
  SlotBefore before;
  EventStep step =
      StepLoan(e, &slot, &before, classifier_.get(), kLedgerDisbursedFenMax - w->disbursed_fen);
  if (step.kind == EventStep::Kind::kDuplicate) {
    ++w->result.events_duplicate;
    return;
  }
  if (step.kind == EventStep::Kind::kRejected) {
    w->Reject(i, step.reason, std::move(step.message));
    w->poisoned.emplace(key);
    return;
  }
  ++w->result.events_applied;
  if (e.kind == EventKind::kDisburse) w->disbursed_fen += e.amount_fen;
  if (!w->result.rejections.empty()) return;  // the batch is lost anyway; keep validating only
  if (w->last_institution == nullptr || *w->last_institution != e.institution_id) {
    w->last_institution_id = InstitutionIdFor(e.institution_id, g, &w->local_new);
    w->last_institution = &e.institution_id;
  }
  const uint32_t institution = w->last_institution_id;
  DeltaMap& deltas = w->deltas;
  EmitDeltas(before, slot, step, e, [&](Category c, uint8_t province, Day day, const Measures& m) {
    deltas[PackCell(CellKey{c, province, institution, day})] += m;
  });
}

// The slot of loan `key` (inserted if new), recorded in the group's undo
// log when this batch (stamp) first touches it.
LoanSlot& LedgerImpl::TouchSlot(std::string_view key, uint64_t hash, uint64_t stamp, Group* g) {
  bool inserted = false;
  LoanSlot& slot = *loans_.FindOrInsert(key, hash, &inserted);
  if (inserted) {
    g->undo.push_back(Group::Undo{loans_.KeyOf(&slot), &slot, LoanSlot{}, true});
    slot.stamp = stamp;
  } else if (slot.stamp != stamp) {
    g->undo.push_back(Group::Undo{loans_.KeyOf(&slot), &slot, slot, false});
    slot.stamp = stamp;
  }
  return slot;
}

// A batch with a rejected event is dropped whole: its slot changes are
// unwound and the institution ids it took are given back.
ApplyResult LedgerImpl::RejectBatch(Group* g, BatchWork* w) {
  LL_CHECK(!w->result.rejections.empty() && !w->result.applied);
  Unwind(g, w->undo_mark);
  g->next_institution_id -= static_cast<uint32_t>(w->local_new.size());  // ids were taken last-in
  w->result.events_applied = 0;
  w->result.events_duplicate = 0;
  return std::move(w->result);
}

// An accepted batch joins the group: its new institutions, its cell
// changes, its disbursements and, unless every event was a duplicate, its
// journal record.
ApplyResult LedgerImpl::AcceptBatch(const Batch& batch, Group* g, BatchWork* w) {
  ApplyResult& result = w->result;
  // Every event of an accepted batch is applied or a duplicate.
  LL_CHECK(result.rejections.empty() &&
           result.events_applied + result.events_duplicate == batch.events.size());
  result.applied = true;
  for (auto& entry : w->local_new) g->new_institutions.push_back(std::move(entry));
  if (g->deltas.empty()) {
    g->deltas.swap(w->deltas);
  } else {
    for (const auto& [cell, m] : w->deltas) g->deltas[cell] += m;
  }
  g->disbursed_total_fen = w->disbursed_fen;
  g->events_applied += result.events_applied;
  if (result.events_applied > 0) {
    result.batch_no = g->next_batch_no++;
    std::string record;
    EncodeJournalRecord(g->received_ms, batch.submitter, batch.events, &record);
    g->journal.emplace_back(result.batch_no, std::move(record));
  }
  return std::move(result);
}

Status LedgerImpl::Commit(Group* g) {
  // Loan states are not written: the journal records are their durable
  // form until the next snapshot (loan_snapshot.h).
  // The journal goes on from next_batch_no_ without a gap: open refuses a
  // store whose journal does not end just before meta next_batch.
  LL_CHECK(g->next_batch_no == next_batch_no_ + g->journal.size());
  for (size_t k = 0; k < g->journal.size(); ++k)
    LL_CHECK(g->journal[k].first == next_batch_no_ + k);
  // Reserved whole: grown by appends, the batch's buffer was copied and
  // page-faulted again at every doubling (perf on workload b).
  size_t bytes = 256 + g->new_institutions.size() * 64 + g->deltas.size() * 72;
  for (const auto& [batch_no, record] : g->journal) bytes += record.size() + 32;
  rocksdb::WriteBatch wb(bytes);
  uint64_t new_loans = 0;
  for (const Group::Undo& u : g->undo)
    new_loans += u.inserted ? 1 : 0;  // every one left was applied
  for (const auto& [batch_no, record] : g->journal)
    wb.Put(cf_journal_, EncodeJournalKey(batch_no), record);
  // The cells in key order: one series lookup per run of a series' days,
  // and the rollups prepared before the write (PreparedCells).
  std::vector<CellChange> cells;
  cells.reserve(g->deltas.size());
  for (const auto& [packed, delta] : g->deltas) cells.push_back(CellChange{packed, delta});
  std::sort(cells.begin(), cells.end(),
            [](const CellChange& a, const CellChange& b) { return a.packed < b.packed; });
  const DaySeries* series = nullptr;  // writer-only data; see InstitutionIdFor
  for (size_t i = 0; i < cells.size(); ++i) {
    const CellKey key = UnpackCell(cells[i].packed);
    if (i == 0 || (cells[i].packed >> 24) != (cells[i - 1].packed >> 24))
      series = agg_.Find(key.category, key.province, key.institution);
    const Measures now = (series != nullptr ? series->OnDay(key.day) : Measures{}) + cells[i].delta;
    if (now.IsZero()) {
      wb.Delete(cf_cells_, EncodeCellKey(key));
    } else {
      wb.Put(cf_cells_, EncodeCellKey(key), EncodeMeasures(now));
    }
  }
  const PreparedCells prepared = Aggregator::Prepare(std::move(cells));
  for (const auto& [name, id] : g->new_institutions) {
    wb.Put(cf_meta_, InstitutionKey(name), EncodeU32(id));
  }
  wb.Put(cf_meta_, kMetaNextBatch, EncodeU64(g->next_batch_no));
  if (g->log_position != 0) wb.Put(cf_meta_, kMetaLogPosition, EncodeU64(g->log_position));
  wb.Put(cf_meta_, kMetaLoans, EncodeU64(loan_count_ + new_loans));

  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;  // docs/data.md: acknowledged only once the WAL is synced
  rocksdb::Status s = db_->Write(wo, &wb);
  if (!s.ok()) {
    Unwind(g, 0);
    return FromRocks(s, "write batch group");
  }

  std::unique_lock lock(agg_mu_);
  agg_.Apply(prepared);
  for (const auto& [name, id] : g->new_institutions) {
    if (institution_names_.size() <= id) institution_names_.resize(id + 1);
    institution_names_[id] = name;
    institution_ids_.emplace(name, id);
  }
  next_batch_no_ = g->next_batch_no;
  if (g->log_position != 0) log_position_ = g->log_position;
  loan_count_ += new_loans;
  LL_CHECK(loans_.size() == loan_count_);
  lock.unlock();
  const uint64_t total = events_total_.fetch_add(g->events_applied) + g->events_applied;
  if (total - events_at_attempt_.load() >= SnapshotThreshold() && !snapshot_busy_.exchange(true)) {
    {
      std::lock_guard snap_lock(snap_mu_);
      snap_wanted_ = true;
    }
    snap_cv_.notify_one();
  }
  return Status::Ok();
}

void LedgerImpl::StartGroup(Group* g) {
  g->next_batch_no = next_batch_no_;
  g->next_institution_id = static_cast<uint32_t>(institution_names_.size());
  g->received_ms = options_.clock_ms ? options_.clock_ms() : SystemClockMs();
  if (const DaySeries* total = agg_.Find(Category::kTotal, 0, 0)) {
    g->disbursed_total_fen = total->Total().disbursed_fen;
  }
}

Result<std::vector<ApplyResult>> LedgerImpl::ApplyGroup(std::span<const Batch* const> batches) {
  return ApplyGroupWith(batches, nullptr);
}

// The leader's records, handed to the replicated log before they are
// written here: a failure leaves nothing of the group.
Status LedgerImpl::PublishGroup(const PublishRecords& publish, Group* g) {
  std::vector<std::string> records;
  records.reserve(g->journal.size());
  for (auto& [batch_no, record] : g->journal) records.push_back(std::move(record));
  Result<uint64_t> position = publish(records);
  for (size_t i = 0; i < records.size(); ++i) g->journal[i].second = std::move(records[i]);
  if (!position.ok()) {
    Unwind(g, 0);
    return position.status();
  }
  LL_CHECK(*position > log_position_);  // the log only grows
  g->log_position = *position;
  return Status::Ok();
}

// A follower applies the leader's records through the same ProcessBatch as
// the leader did, from the same state, so it reaches the same state and
// writes byte-identical journal records (the record's own receive time).
Status LedgerImpl::ApplyPublished(std::span<const std::string_view> records,
                                  uint64_t first_position) {
  std::lock_guard write_lock(write_mu_);
  std::unique_lock loans_lock(loans_mu_);
  if (first_position == 0 || first_position > log_position_ + 1) {
    return Status::InvalidArgument("replicated records from position " +
                                   std::to_string(first_position) + " but " +
                                   std::to_string(log_position_) + " is applied");
  }
  const size_t skip = log_position_ + 1 - first_position;
  if (skip >= records.size()) return Status::Ok();
  Group g;
  StartGroup(&g);
  JournalRecord rec;
  Batch batch;
  for (size_t i = skip; i < records.size(); ++i) {
    const uint64_t position = first_position + i;
    if (!DecodeJournalRecord(records[i], &rec)) {
      Unwind(&g, 0);
      return Status::Corruption("undecodable replicated record at position " +
                                std::to_string(position));
    }
    batch.submitter = std::move(rec.submitter);
    batch.events = std::move(rec.events);
    g.received_ms = rec.received_ms;
    const ApplyResult r = ProcessBatch(batch, &g);
    if (!r.applied || r.events_applied == 0) {
      Unwind(&g, 0);
      return Status::Corruption("replicated record at position " + std::to_string(position) +
                                " does not apply to this store: " +
                                (r.rejections.empty() ? std::string("every event is a duplicate")
                                                      : r.rejections.front().message));
    }
  }
  g.log_position = first_position + records.size() - 1;
  return Commit(&g);
}

Result<std::vector<ApplyResult>> LedgerImpl::ApplyGroupPublished(
    std::span<const Batch* const> batches, const PublishRecords& publish) {
  return ApplyGroupWith(batches, &publish);
}

Result<std::vector<ApplyResult>> LedgerImpl::ApplyGroupWith(std::span<const Batch* const> batches,
                                                            const PublishRecords* publish) {
  std::lock_guard write_lock(write_mu_);
  // Loan slots change in place until the group is durable or unwound;
  // QueryLoan waits meanwhile so that it never sees an unacknowledged state.
  std::unique_lock loans_lock(loans_mu_);
  LL_CHECK(loans_.size() == loan_count_);  // between groups every slot is durable
  Group g;
  StartGroup(&g);
  std::vector<ApplyResult> results;
  results.reserve(batches.size());
  for (const Batch* b : batches) {
    if (rejected_streams_.Skips(*b)) {
      ApplyResult skipped;
      skipped.skipped = true;
      results.push_back(std::move(skipped));
      continue;
    }
    results.push_back(ProcessBatch(*b, &g));
    rejected_streams_.OnJudged(*b, results.back().applied);
  }
  if (!g.journal.empty()) {
    Status s = publish != nullptr ? PublishGroup(*publish, &g) : Status::Ok();
    if (s.ok()) s = Commit(&g);
    if (!s.ok()) {
      LL_CHECK(loans_.size() == loan_count_);  // unwound whole
      rejected_streams_.Rollback();            // nothing of the group happened
      return s;
    }
  } else {
    Unwind(&g, 0);  // only duplicates or rejections: nothing changed, but stamps/keys were touched
  }
  rejected_streams_.Commit();
  LL_CHECK(results.size() == batches.size() && loans_.size() == loan_count_);
  return results;
}

Result<ApplyResult> LedgerImpl::Apply(const Batch& batch) {
  const Batch* one[] = {&batch};
  auto results = ApplyGroup(one);
  if (!results.ok()) return results.status();
  LL_CHECK(results->size() == 1);
  return std::move(results->front());
}

}  // namespace loanledger::storage
