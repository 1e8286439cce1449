// Open and recovery (docs/data.md): the store opened with its RocksDB
// options (rocks_options.cc), the meta counters checked, the loan table
// loaded from the newest snapshot (or, format 1, the "loans" column family,
// then migrated) and the journal since it replayed, the cells into the
// aggregator. The apply path is ledger_apply.cc; loan snapshots snapshot.cc.
#include <openssl/crypto.h>
#include <rocksdb/convenience.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "schema/check.h"
#include "schema/limits.h"
#include "storage/ledger_impl.h"
#include "storage/rocks_options.h"
#include "storage/rocks_status.h"

namespace loanledger::storage {
namespace {

// Reads a u64 meta value. Present and well formed: *out holds it. Absent
// (NotFound, the only status that means absent): *out is empty. Anything
// else, a failed read or a value of the wrong size, is an error that stops
// the open: guessing a default would, for next_batch, write journal batch 1
// again over the audit trail.
Status ReadMetaU64(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, std::string_view key,
                   std::optional<uint64_t>* out) {
  out->reset();
  std::string value;
  const rocksdb::Status s =
      db->Get(rocksdb::ReadOptions(), cf, rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return Status::Ok();
  if (!s.ok()) return FromRocks(s, "read meta " + std::string(key));
  uint64_t v = 0;
  if (!DecodeU64(value, &v)) {
    return Status::Corruption("meta " + std::string(key) + " is " + std::to_string(value.size()) +
                              " bytes, not a u64");
  }
  *out = v;
  return Status::Ok();
}

// The number of the journal's last record; 0 when the journal is empty.
Status LastJournalBatch(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, uint64_t* last) {
  *last = 0;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf));
  it->SeekToLast();
  if (!it->status().ok()) return FromRocks(it->status(), "read the journal's end");
  if (!it->Valid()) return Status::Ok();
  if (!DecodeJournalKey(std::string_view(it->key().data(), it->key().size()), last) || *last == 0) {
    return Status::Corruption("undecodable journal key " + it->key().ToString(true));
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Ledger>> Ledger::Open(const LedgerOptions& options) {
  // Closing writes a loan snapshot whose header holds a SHA-256 of the rules
  // (OpenSSL). Initialising OpenSSL now registers its atexit cleanup before
  // a static that holds a Ledger finishes constructing, so the cleanup runs
  // after that Ledger is closed, not before (a static Ledger used to crash
  // at exit in the fuzz harness). Options 0 would return at once without
  // initialising; loading the config is what the first digest does anyway.
  LL_CHECK(OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, nullptr) == 1);
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) return Status::IoError("cannot create " + options.path + ": " + ec.message());

  RocksOptions rocks = MakeRocksOptions(options);
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s =
      rocksdb::DB::Open(rocks.db, options.path, rocks.column_families, &handles, &raw);
  if (!s.ok()) return FromRocks(s, "open " + options.path);
  auto impl =
      std::make_unique<LedgerImpl>(options, std::unique_ptr<rocksdb::DB>(raw), std::move(handles));
  if (Status st = impl->LoadRules(); !st.ok()) return st;
  Status loaded = impl->Load();
  if (!loaded.ok()) return loaded;
  if (Status st = impl->EnableCompactions(); !st.ok()) return st;
  if (Status st = impl->InitRules(options.rules_text); !st.ok()) return st;
  impl->StartSnapshots();
  return std::unique_ptr<Ledger>(std::move(impl));
}

LedgerImpl::LedgerImpl(LedgerOptions options, std::unique_ptr<rocksdb::DB> db,
                       std::vector<rocksdb::ColumnFamilyHandle*> handles)
    : options_(std::move(options)), db_(std::move(db)), handles_(std::move(handles)) {
  LL_CHECK(handles_.size() == 4);
  cf_meta_ = handles_[0];
  cf_loans_ = handles_[1];
  cf_journal_ = handles_[2];
  cf_cells_ = handles_[3];
  institution_names_.emplace_back();  // id 0 = "all"
}

LedgerImpl::~LedgerImpl() {
  // A final snapshot spares the next open the journal's tail; if it fails
  // (a full disk), the next open replays that tail instead.
  // Not after a failed open: the table may be partial.
  StopSnapshots();
  if (loaded_) (void)WriteSnapshot(nullptr);
  // Every applied batch is already in the synced WAL; flushing the memtables
  // now only spares the next open from replaying up to max_total_wal_size of
  // WAL (seconds at 10M loans). After a failed write it fails too: ignored.
  rocksdb::FlushOptions flush;
  flush.allow_write_stall = true;
  rocksdb::Status s = db_->Flush(flush, handles_);
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  s = db_->Close();
  (void)s;  // closing after a failed write can report the same error again; nothing to do
}

Status LedgerImpl::EnableCompactions() {
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    rocksdb::Status s = db_->SetOptions(h, {{"disable_auto_compactions", "false"}});
    if (!s.ok()) return FromRocks(s, "enable compactions");
  }
  return Status::Ok();
}

Status LedgerImpl::Load() {
  std::string value;
  uint32_t format = kFormatVersion;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf_meta_, kMetaFormat, &value);
  const bool new_store = s.IsNotFound();
  if (!new_store && !s.ok()) return FromRocks(s, "read format");
  if (!new_store) {
    if (!DecodeU32(value, &format) || format < 1 || format > kFormatVersion) {
      return Status::Corruption("unsupported storage format in " + options_.path +
                                " (this loanledgerd reads formats 1.." +
                                std::to_string(kFormatVersion) + ")");
    }
  }
  if (Status st = LoadCounters(new_store); !st.ok()) return st;
  if (Status st = LoadLogPosition(); !st.ok()) return st;
  if (new_store) {
    rocksdb::WriteOptions wo;
    wo.sync = options_.sync;
    s = db_->Put(wo, cf_meta_, kMetaFormat, EncodeU32(format));
    if (!s.ok()) return FromRocks(s, "write format");
  }

  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_meta_));
  for (it->Seek(kMetaInstitutionPrefix);
       it->Valid() && it->key().starts_with(kMetaInstitutionPrefix); it->Next()) {
    std::string name;
    uint32_t id = 0;
    if (!DecodeInstitutionEntry(std::string_view(it->key().data(), it->key().size()),
                                std::string_view(it->value().data(), it->value().size()), &name,
                                &id)) {
      return Status::Corruption("bad institution entry " + it->key().ToString());
    }
    if (institution_names_.size() <= id) institution_names_.resize(id + 1);
    institution_names_[id] = name;
    institution_ids_.emplace(std::move(name), id);
  }
  if (!it->status().ok()) return FromRocks(it->status(), "read institutions");

  std::error_code ec;
  std::filesystem::create_directories(SnapshotDir(), ec);
  if (ec) return Status::IoError("cannot create " + SnapshotDir() + ": " + ec.message());
  // The cells (agg_ only) load on a second thread while the loans (loans_
  // and the classifier only) load on this one: neither touches the other's.
  Status cells = Status::Ok();
  std::thread cells_loader([this, &cells] { cells = LoadCells(); });
  Status loans = LoadLoans(format);
  if (loans.ok() && format == 1) loans = MigrateFromFormat1();
  cells_loader.join();
  if (!loans.ok()) return loans;
  if (!cells.ok()) return cells;
  RemoveOtherSnapshots();
  return Status::Ok();
}

// Every stored cell into the aggregates (its series and three rollups),
// one series's run of days at a time (Aggregator::AddCells: AddSorted into
// the series and each rollup instead of four Adds per cell).
Status LedgerImpl::LoadCells() {
  std::vector<CellChange> run;  // one series's cells, days ascending
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_cells_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    CellKey key;
    Measures m;
    if (!DecodeCellKey(std::string_view(it->key().data(), it->key().size()), &key) ||
        !DecodeMeasures(std::string_view(it->value().data(), it->value().size()), &m)) {
      return Status::Corruption("undecodable cell " + it->key().ToString(true));
    }
    const uint64_t packed = PackCell(key);  // the key order is PackCell's
    if (!run.empty() && (run.back().packed >> 24) != (packed >> 24)) {
      agg_.AddCells(run);
      run.clear();
    }
    run.push_back(CellChange{packed, m});
  }
  if (!it->status().ok()) return FromRocks(it->status(), "read cells");
  agg_.AddCells(run);
  return Status::Ok();
}

// Cluster mode's log position: absent in a single-node store (0).
Status LedgerImpl::LoadLogPosition() {
  std::optional<uint64_t> position;
  if (Status st = ReadMetaU64(db_.get(), cf_meta_, kMetaLogPosition, &position); !st.ok())
    return st;
  log_position_ = position.value_or(0);
  return Status::Ok();
}

// next_batch and loans from meta: both present, or both absent in a store
// that never applied a batch; and the journal must end just before
// next_batch. Anything else stops the open (storage/README.md, "Open").
Status LedgerImpl::LoadCounters(bool new_store) {
  std::optional<uint64_t> next_batch, loans;
  if (Status st = ReadMetaU64(db_.get(), cf_meta_, kMetaNextBatch, &next_batch); !st.ok())
    return st;
  if (Status st = ReadMetaU64(db_.get(), cf_meta_, kMetaLoans, &loans); !st.ok()) return st;
  const std::string where = " in " + options_.path;
  if (next_batch.has_value() != loans.has_value()) {
    return Status::Corruption(std::string(next_batch ? "meta loans" : "meta next_batch") +
                              " is missing" + where + " while the other counter is present");
  }
  if (new_store && next_batch) {
    return Status::Corruption("meta format is missing" + where + " but it holds batches");
  }
  if (next_batch && *next_batch == 0) return Status::Corruption("meta next_batch is 0" + where);
  next_batch_no_ = next_batch.value_or(1);
  loan_count_ = loans.value_or(0);
  uint64_t last = 0;
  if (Status st = LastJournalBatch(db_.get(), cf_journal_, &last); !st.ok()) return st;
  if (last + 1 != next_batch_no_) {
    return Status::Corruption(
        "the journal" + where + " ends at batch " + std::to_string(last) + " but meta next_batch " +
        (next_batch ? "is " + std::to_string(*next_batch) : std::string("is missing")) +
        ": refusing to open (the next batch would overwrite or skip journal records)");
  }
  return Status::Ok();
}

// A loan key near the middle of the "loans" column family by bytes, from
// its SST files' key ranges (a split point for parallel reading; any key
// is correct, a middle one balances the work). "" when there are no files.
std::string LedgerImpl::MiddleLoanKey() const {
  std::vector<rocksdb::LiveFileMetaData> files;
  db_->GetLiveFilesMetaData(&files);
  std::vector<std::pair<std::string, uint64_t>> starts;  // (smallest key, bytes)
  uint64_t total = 0;
  for (const rocksdb::LiveFileMetaData& f : files) {
    if (f.column_family_name != kCfLoans) continue;
    starts.emplace_back(f.smallestkey, f.size);
    total += f.size;
  }
  std::sort(starts.begin(), starts.end());
  uint64_t seen = 0;
  for (const auto& [key, bytes] : starts) {
    if (!key.empty() && seen >= total / 2) return key;
    seen += bytes;
  }
  return {};
}

// Fills loans_ at open from the store's format; then loans_.size() must be
// the recorded number of loans.
Status LedgerImpl::LoadLoans(uint32_t format) {
  loans_.Reserve(loan_count_);
  Status st = Status::Ok();
  if (format == 1) {
    st = LoadLoansFromColumnFamily();
  } else {
    std::string value;
    uint64_t from = 0;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf_meta_, kMetaLoanSnapshot, &value);
    if (s.ok()) {
      if (!DecodeU64(value, &from) || from == 0 || from > next_batch_no_)
        return Status::Corruption("bad loan snapshot entry in meta");
      st = LoadLoansFromSnapshot(from);
    } else if (!s.IsNotFound()) {
      return FromRocks(s, "read loan snapshot entry");
    } else {
      from = 1;  // no snapshot yet: the whole journal
    }
    if (st.ok()) st = ReplayJournalTail(from);
    snapshot_from_ = s.ok() ? from : 0;
  }
  if (!st.ok()) return st;
  if (loans_.size() != loan_count_) {
    return Status::Corruption("loan count " + std::to_string(loans_.size()) + " != recorded " +
                              std::to_string(loan_count_));
  }
  return Status::Ok();
}

// Readers decode blocks of loans on their own threads; this thread inserts
// them, prefetching index positions a few keys ahead (each insert is
// otherwise a cache miss in a large index). A store of 10M loans must be
// serving within seconds: 15 s with a node map on one thread; 3.8 s so.
Status LedgerImpl::InsertLoanBlocks(std::vector<BlockReader> readers, bool use_masks) {
  constexpr size_t kBlocksQueued = 8;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<LoanBlock> queue;  // guarded by mu, as are the four below
  size_t readers_done = 0;
  bool stop_reading = false;  // the inserter failed
  Status read_status = Status::Ok();
  const BlockSink sink = [&](LoanBlock&& block) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return queue.size() < kBlocksQueued || stop_reading; });
    if (stop_reading) return false;
    if (block.size() > 0) queue.push_back(std::move(block));
    lock.unlock();
    cv.notify_all();
    return true;
  };
  std::vector<std::thread> threads;
  for (BlockReader& reader : readers) {
    threads.emplace_back([&, r = std::move(reader)] {
      Status st = r(sink);
      {
        std::lock_guard lock(mu);
        ++readers_done;
        if (read_status.ok()) read_status = std::move(st);
      }
      cv.notify_all();
    });
  }

  Status insert_status = Status::Ok();
  std::vector<uint64_t> hashes;
  std::vector<uint16_t> ids;  // a block's mask table -> the classifier's ids
  const RuleMask known = classifier_->rules()->category_count() - 1 >= 64
                             ? ~RuleMask{0}
                             : (RuleMask{1} << (classifier_->rules()->category_count() - 1)) - 1;
  constexpr size_t kAhead = 8;  // prefetch distance, in keys
  while (insert_status.ok()) {
    LoanBlock block;
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return !queue.empty() || readers_done == threads.size(); });
      if (queue.empty()) break;  // the readers are done and everything is inserted
      block = std::move(queue.front());
      queue.pop_front();
    }
    cv.notify_all();
    ids.assign(block.masks.size(), kMaskUnresolved);
    for (size_t j = 0; use_masks && j < block.masks.size(); ++j) {
      if ((block.masks[j] & ~known) != 0) {
        insert_status = Status::Corruption("loan snapshot mask names a category the rules lack");
        break;
      }
      ids[j] = classifier_->InternMask(block.masks[j]);
    }
    if (!insert_status.ok()) break;
    const size_t n = block.size();
    hashes.resize(n);
    for (size_t i = 0; i < n; ++i) hashes[i] = LoanTable::Hash(block.Key(i));
    for (size_t i = 0; i < std::min(n, kAhead); ++i) loans_.Prefetch(hashes[i]);
    for (size_t i = 0; i < n; ++i) {
      if (i + kAhead < n) loans_.Prefetch(hashes[i + kAhead]);
      bool inserted = false;
      LoanSlot* slot = loans_.FindOrInsert(block.Key(i), hashes[i], &inserted);
      if (!inserted) {
        insert_status = Status::Corruption("duplicate loan key " + std::string(block.Key(i)));
        break;
      }
      *slot = block.slots[i];
      // The reader checked the index against the block's table.
      if (slot->mask != kMaskUnresolved) slot->mask = ids[slot->mask];
      if (slot->mask != kMaskUnresolved) ++open_masks_from_snapshot_;
    }
  }
  if (!insert_status.ok()) {
    std::lock_guard lock(mu);
    stop_reading = true;
  }
  cv.notify_all();
  for (std::thread& t : threads) t.join();
  if (!insert_status.ok()) return insert_status;
  return read_status;
}

// Format 1 kept every loan state in the "loans" column family: read it
// with two threads over two key ranges in a large store (reading and
// decoding costs about twice what inserting does).
Status LedgerImpl::LoadLoansFromColumnFamily() {
  constexpr size_t kBlockLoans = 4096;
  const std::string split =
      loan_count_ >= options_.parallel_load_loans ? MiddleLoanKey() : std::string();
  auto read_range = [this](std::string from, std::string to) -> BlockReader {
    return [this, from = std::move(from), to = std::move(to)](const BlockSink& sink) {
      rocksdb::ReadOptions ro;
      ro.fill_cache = false;         // read once: keep the block cache for what queries read
      ro.readahead_size = 4u << 20;  // one sequential pass over the range
      const rocksdb::Slice upper(to);
      if (!to.empty()) ro.iterate_upper_bound = &upper;
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_loans_));
      LoanBlock block;
      for (it->Seek(from); it->Valid(); it->Next()) {
        LoanSlot slot;
        if (!DecodeLoanSlot(std::string_view(it->value().data(), it->value().size()), &slot)) {
          return Status::Corruption("undecodable loan state " + it->key().ToString(true));
        }
        block.Add(std::string_view(it->key().data(), it->key().size()), slot);
        if (block.size() == kBlockLoans) {
          if (!sink(std::move(block))) return Status::Ok();
          block = LoanBlock{};
        }
      }
      if (!it->status().ok()) return FromRocks(it->status(), "read loans");
      sink(std::move(block));
      return Status::Ok();
    };
  };
  std::vector<BlockReader> readers;
  readers.push_back(read_range("", split));
  if (!split.empty()) readers.push_back(read_range(split, ""));
  return InsertLoanBlocks(std::move(readers), false);
}

// Format 2: the newest snapshot, read by one or two threads (blocks taken
// alternately), then the journal since it (ReplayJournalTail).
Status LedgerImpl::LoadLoansFromSnapshot(uint64_t from) {
  const std::string path = SnapshotPath(from);
  Result<SnapshotInfo> info = ReadSnapshotInfo(path);
  if (!info.ok()) return info.status();
  if (info->replay_from != from) {
    return Status::Corruption("snapshot " + path + " starts at batch " +
                              std::to_string(info->replay_from));
  }
  const uint64_t readers = info->loans >= options_.parallel_load_loans && info->blocks > 1 ? 2 : 1;
  std::vector<BlockReader> list;
  for (uint64_t r = 0; r < readers; ++r) {
    list.push_back([&, r](const BlockSink& sink) {
      return ReadSnapshotBlocks(path, *info, r, readers, sink);
    });
  }
  // Masks kept under the rules in force now (LoadRules) are used as they
  // are; others (an older snapshot, a rules change since) are classified
  // in InitRules, as is every loan the journal's tail changes.
  const bool use_masks =
      info->format >= 2 && info->rules_digest == DigestOfRules(*classifier_->rules());
  if (Status st = InsertLoanBlocks(std::move(list), use_masks); !st.ok()) return st;
  if (open_masks_from_snapshot_ < info->loans) snapshot_outdated_ = true;
  if (loans_.size() != info->loans) {
    return Status::Corruption("snapshot " + path + " holds " + std::to_string(loans_.size()) +
                              " loans, header says " + std::to_string(info->loans));
  }
  return Status::Ok();
}

// Applies the loan-state effects of journal batches from `from` on (the
// cells and meta are already durable): the recovery of what happened since
// the snapshot began. A snapshot is read in pieces while the writer goes
// on, so a loan may already hold some of these events; the exactly-once
// rule (seq <= last_seq: skip) makes replaying them harmless.
Status LedgerImpl::ReplayJournalTail(uint64_t from) {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  ro.readahead_size = 4u << 20;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_journal_));
  JournalRecord rec;
  EventKeys keys;
  constexpr size_t kAhead = 8;
  uint64_t expect = from;
  uint64_t replayed = 0;  // events the snapshot did not hold yet
  for (it->Seek(EncodeJournalKey(from)); it->Valid(); it->Next()) {
    uint64_t batch_no = 0;
    if (!DecodeJournalKey(std::string_view(it->key().data(), it->key().size()), &batch_no) ||
        !DecodeJournalRecord(std::string_view(it->value().data(), it->value().size()), &rec)) {
      return Status::Corruption("undecodable journal record after batch " +
                                std::to_string(expect - 1));
    }
    if (batch_no != expect) {
      return Status::Corruption("journal batch " + std::to_string(expect) + " missing (next is " +
                                std::to_string(batch_no) + ")");
    }
    // Keys and hashes first, then each lookup's index word prefetched a few
    // events ahead (as the writer does).
    const size_t n = rec.events.size();
    keys.Build(rec.events);
    const std::vector<uint64_t>& hashes = keys.hashes;
    for (size_t i = 0; i < std::min(n, kAhead); ++i) loans_.Prefetch(hashes[i]);
    for (size_t i = 0; i < n; ++i) {
      if (i + kAhead < n) loans_.Prefetch(hashes[i + kAhead]);
      const LoanEvent& e = rec.events[i];
      if (auto fe = ValidateEvent(e)) {
        return Status::Corruption("journal batch " + std::to_string(batch_no) + " event " +
                                  std::to_string(i) + " is invalid: " + fe->message);
      }
      bool inserted = false;
      LoanSlot* slot = loans_.FindOrInsert(keys.Key(i), hashes[i], &inserted);
      SlotBefore before;
      // Loan states only; the capacity was checked when the batch was accepted.
      const EventStep step = StepLoan(e, slot, &before, nullptr, kDisbursedRoomUnchecked);
      if (step.kind == EventStep::Kind::kRejected) {
        return Status::Corruption("journal batch " + std::to_string(batch_no) + " event " +
                                  std::to_string(i) +
                                  " does not apply to the loan's snapshot state: " + step.message);
      }
      if (step.kind == EventStep::Kind::kApplied) ++replayed;
    }
    ++expect;
  }
  if (!it->status().ok()) return FromRocks(it->status(), "read journal");
  if (expect < next_batch_no_) {
    return Status::Corruption("journal ends before batch " + std::to_string(expect) +
                              ", meta says " + std::to_string(next_batch_no_));
  }
  events_total_ = replayed;  // not in a snapshot yet: they count towards the next one
  return Status::Ok();
}

// A format-1 store is loaded from its "loans" column family; this writes
// the table as a snapshot, then marks the store format 2 and empties that
// column family. A crash before the format changes repeats the migration.
Status LedgerImpl::MigrateFromFormat1() {
  if (Status st = WriteSnapshot(nullptr); !st.ok()) return st;
  // The new format and the end of the old loan states in one write; then
  // the files the range covers are dropped whole (the rest goes at compaction).
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  rocksdb::WriteBatch wb;
  rocksdb::Status s = wb.Put(cf_meta_, kMetaFormat, EncodeU32(kFormatVersion));
  const std::string end(
      1, '\xff');  // loan keys begin with an institution id (ASCII letters and digits)
  if (s.ok()) s = wb.DeleteRange(cf_loans_, "", end);
  if (s.ok()) s = db_->Write(wo, &wb);
  if (!s.ok()) return FromRocks(s, "write format 2");
  s = rocksdb::DeleteFilesInRange(db_.get(), cf_loans_, nullptr, nullptr);
  return FromRocks(s, "drop the format-1 loans files");
}

}  // namespace loanledger::storage
