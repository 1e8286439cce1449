// Open, recovery and the apply path (docs/data.md). Data flow of one group:
// validate each batch against the in-memory loan table (slots changed in
// place, with an undo log) -> fold accepted batches' cell changes -> one
// WriteBatch (one journal record per batch, cell values, meta) written with
// sync -> publish the changes to the in-memory aggregates. Loan states reach
// the disk through snapshots (snapshot.cc); open loads the newest and
// replays the journal since.
#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

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

// RocksDB's informational log, written to stderr (warnings and errors only,
// in loanledgerd's line format) instead of a LOG file in the data
// directory. Why: a log that needs disk space must not take the server down
// with the disk. With a LOG file on a full disk, Debian's librocksdb 7.8
// (built with assertions) aborts the process on the first LOG write after a
// failed one (WritableFileWriter::AssertFalseAndGetStatusForPrevError),
// when it logs the very write error that filled the disk
// (tests/integration/server_storage_fault_test.cc).
class StderrLogger final : public rocksdb::Logger {
 public:
  StderrLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    // HEADER_LEVEL is the options dump at open: informational.
    if (level == rocksdb::InfoLogLevel::HEADER_LEVEL || level < GetInfoLogLevel()) return;
    char message[2048];
    const int n = std::vsnprintf(message, sizeof message, format, ap);
    size_t len = n < 0 ? 0 : std::min(static_cast<size_t>(n), sizeof message - 1);
    while (len > 0 && message[len - 1] == '\n') --len;
    const auto now = std::chrono::system_clock::now();
    const std::time_t secs = std::chrono::system_clock::to_time_t(now);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
    std::tm local{};
    localtime_r(&secs, &local);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &local);
    const char* label = level >= rocksdb::InfoLogLevel::ERROR_LEVEL  ? "error"
                        : level == rocksdb::InfoLogLevel::WARN_LEVEL ? "warning"
                                                                     : "info";
    // One fprintf per line: lines from several threads do not interleave.
    std::fprintf(stderr, "%s.%03d %s rocksdb: %.*s\n", stamp, static_cast<int>(ms.count()), label,
                 static_cast<int>(len), message);
  }
};

// point_lookups: the CF is read by key (meta). Otherwise it is written on
// the hot path and read only by iteration (at open and by verify): loan
// states are served from the in-memory table, cells from the aggregator,
// so a vector memtable (O(1) append, sorted at flush) replaces the skiplist.
rocksdb::ColumnFamilyOptions CfOptions(const std::shared_ptr<rocksdb::Cache>& cache,
                                       bool point_lookups) {
  rocksdb::ColumnFamilyOptions cf;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  if (point_lookups) {
    // Loan states are read by key (MultiGet); a bloom filter skips SSTs.
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10, false));
    table.whole_key_filtering = true;
  }
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  if (!point_lookups) cf.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
  cf.write_buffer_size = 64u << 20;          // 64 MiB memtables: fewer, larger flushes
  cf.compression = rocksdb::kNoCompression;  // values are small binary records
  // Off while Open loads the loan table and the cells (Ledger::Open turns
  // them on): compactions left pending at the last close would otherwise
  // take a core from the loading threads (a fresh 10M-loan store, 5
  // restarts each: median 5.5 s -> 4.3 s).
  cf.disable_auto_compactions = true;
  return cf;
}

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
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) return Status::IoError("cannot create " + options.path + ": " + ec.message());

  auto cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;  // the machine has 2 cores
  db_options.bytes_per_sync = 1u << 20;
  // The meta column family takes a few bytes per group and would never fill
  // a memtable, so without a bound every WAL file stays (1.3 GB after 10M
  // loans, all replayed at open). Past this size RocksDB flushes the column
  // families that hold the oldest WAL.
  db_options.max_total_wal_size = 256u << 20;
  // Vector memtables; there is one writer anyway.
  db_options.allow_concurrent_memtable_write = false;
  // No LOG file on the data disk (StderrLogger above says why).
  db_options.info_log = std::make_shared<StderrLogger>();
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  if (options.env != nullptr) db_options.env = options.env;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, CfOptions(cache, true)},
      {std::string(kCfLoans), CfOptions(cache, false)},
      {std::string(kCfJournal), CfOptions(cache, false)},
      {std::string(kCfCells), CfOptions(cache, false)},
  };
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, options.path, cfs, &handles, &raw);
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
  if (Status st = LoadLoans(format); !st.ok()) return st;
  if (format == 1) {
    if (Status st = MigrateFromFormat1(); !st.ok()) return st;
  }
  RemoveOtherSnapshots();

  it.reset(db_->NewIterator(rocksdb::ReadOptions(), cf_cells_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    CellKey key;
    Measures m;
    if (!DecodeCellKey(std::string_view(it->key().data(), it->key().size()), &key) ||
        !DecodeMeasures(std::string_view(it->value().data(), it->value().size()), &m)) {
      return Status::Corruption("undecodable cell " + it->key().ToString(true));
    }
    agg_.AddCell(key, m);
  }
  return FromRocks(it->status(), "read cells");
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
Status LedgerImpl::InsertLoanBlocks(std::vector<BlockReader> readers) {
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
  return InsertLoanBlocks(std::move(readers));
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
  if (Status st = InsertLoanBlocks(std::move(list)); !st.ok()) return st;
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
      const EventStep step = StepLoan(e, slot, &before, nullptr);  // loan states only
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

EventStep StepLoan(const LoanEvent& e, LoanSlot* slot, SlotBefore* before, Classifier* classifier) {
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

ApplyResult LedgerImpl::ProcessBatch(const Batch& batch, Group* g) {
  ApplyResult result;
  const uint64_t stamp = ++touch_stamp_;  // marks slots first touched by this batch
  const size_t undo_mark = g->undo.size();
  std::unordered_set<std::string> poisoned;  // loans with a rejected event in this batch
  std::vector<std::pair<std::string, uint32_t>> local_new;
  DeltaMap deltas;
  int64_t disbursed = g->disbursed_total_fen;
  const std::string* last_institution = nullptr;  // events of a batch mostly share one
  uint32_t last_institution_id = 0;
  auto reject = [&](size_t i, Reason r, std::string message) {
    result.rejections.push_back(EventRejection{static_cast<uint32_t>(i), r, std::move(message)});
  };
  if (batch.events.empty() || batch.events.size() > kBatchEventsMax) {
    // The protocol layer bounds batches; an empty or oversize one here is a caller's bug.
    reject(0, Reason::kMalformedRecord,
           "a batch holds 1.." + std::to_string(kBatchEventsMax) + " events");
    return result;
  }
  // Loan lookups are cache misses in a large table (index word, entry, key
  // bytes): hash every key first, then fetch each stage a few events ahead.
  g->keys.Build(batch.events);
  const std::vector<uint64_t>& hashes = g->keys.hashes;
  constexpr size_t kAhead = 8;
  for (size_t i = 0; i < batch.events.size(); ++i) {
    const LoanEvent& e = batch.events[i];
    if (i + 3 * kAhead < hashes.size()) loans_.Prefetch(hashes[i + 3 * kAhead]);
    if (i + 2 * kAhead < hashes.size()) loans_.PrefetchEntry(hashes[i + 2 * kAhead]);
    if (i + kAhead < hashes.size()) loans_.PrefetchKey(hashes[i + kAhead]);
    if (auto fe = ValidateEvent(e)) {
      reject(i, fe->reason, std::move(fe->message));
      if (IsValidInstitutionId(e.institution_id) && IsValidLoanId(e.loan_id)) {
        poisoned.insert(LoanKey(e.institution_id, e.loan_id));
      }
      continue;
    }
    if (!batch.caller_institution.empty() && e.institution_id != batch.caller_institution) {
      reject(i, Reason::kWrongInstitution,
             "event for " + e.institution_id + ", caller is " + batch.caller_institution);
      continue;
    }
    const std::string_view key = g->keys.Key(i);
    if (!poisoned.empty() && poisoned.contains(std::string(key)))
      continue;  // its earlier event is already reported
    bool inserted = false;
    LoanSlot& slot = *loans_.FindOrInsert(key, hashes[i], &inserted);
    if (inserted) {
      g->undo.push_back(Group::Undo{loans_.KeyOf(&slot), &slot, LoanSlot{}, true});
      slot.stamp = stamp;
    } else if (slot.stamp != stamp) {
      g->undo.push_back(Group::Undo{loans_.KeyOf(&slot), &slot, slot, false});
      slot.stamp = stamp;
    }
    // Past the ledger's capacity (rare): keep a full copy to put back.
    const bool over_capacity =
        e.kind == EventKind::kDisburse && e.amount_fen > kLedgerDisbursedFenMax - disbursed;
    std::optional<LoanSlot> restore;
    if (over_capacity) restore = slot;
    SlotBefore before;
    EventStep step = StepLoan(e, &slot, &before, classifier_.get());
    if (step.kind == EventStep::Kind::kDuplicate) {
      ++result.events_duplicate;
      continue;
    }
    if (step.kind == EventStep::Kind::kApplied && over_capacity) {
      slot = std::move(*restore);
      step.kind = EventStep::Kind::kRejected;
      step.reason = Reason::kLedgerCapacity;
      step.message = std::string(ReasonDescription(Reason::kLedgerCapacity));
    }
    if (step.kind == EventStep::Kind::kRejected) {
      reject(i, step.reason, std::move(step.message));
      poisoned.emplace(key);
      continue;
    }
    ++result.events_applied;
    if (e.kind == EventKind::kDisburse) disbursed += e.amount_fen;
    if (!result.rejections.empty()) continue;  // the batch is lost anyway; keep validating only
    if (last_institution == nullptr || *last_institution != e.institution_id) {
      last_institution_id = InstitutionIdFor(e.institution_id, g, &local_new);
      last_institution = &e.institution_id;
    }
    EmitDeltas(before, slot, step, e,
               [&](Category c, uint8_t province, Day day, const Measures& m) {
                 deltas[PackCell(CellKey{c, province, last_institution_id, day})] += m;
               });
  }
  if (!result.rejections.empty()) {
    Unwind(g, undo_mark);
    g->next_institution_id -= static_cast<uint32_t>(local_new.size());  // ids were taken last-in
    result.events_applied = 0;
    result.events_duplicate = 0;
    return result;
  }
  result.applied = true;
  for (auto& entry : local_new) g->new_institutions.push_back(std::move(entry));
  if (g->deltas.empty()) {
    g->deltas.swap(deltas);
  } else {
    for (const auto& [cell, m] : deltas) g->deltas[cell] += m;
  }
  g->disbursed_total_fen = disbursed;
  g->events_applied += result.events_applied;
  if (result.events_applied > 0) {
    result.batch_no = g->next_batch_no++;
    std::string record;
    EncodeJournalRecord(g->received_ms, batch.submitter, batch.events, &record);
    g->journal.emplace_back(result.batch_no, std::move(record));
  }
  return result;
}

Status LedgerImpl::Commit(Group* g) {
  // Loan states are not written: the journal records are their durable
  // form until the next snapshot (loan_snapshot.h).
  rocksdb::WriteBatch wb;
  uint64_t new_loans = 0;
  for (const Group::Undo& u : g->undo)
    new_loans += u.inserted ? 1 : 0;  // every one left was applied
  for (const auto& [batch_no, record] : g->journal)
    wb.Put(cf_journal_, EncodeJournalKey(batch_no), record);
  for (const auto& [packed, delta] : g->deltas) {
    const CellKey key = UnpackCell(packed);
    const Measures now = agg_.CellOnDay(key) + delta;  // writer-only data; see InstitutionIdFor
    if (now.IsZero()) {
      wb.Delete(cf_cells_, EncodeCellKey(key));
    } else {
      wb.Put(cf_cells_, EncodeCellKey(key), EncodeMeasures(now));
    }
  }
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
  for (const auto& [packed, delta] : g->deltas) agg_.AddCell(UnpackCell(packed), delta);
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
      rejected_streams_.Rollback();  // nothing of the group happened
      return s;
    }
  } else {
    Unwind(&g, 0);  // only duplicates or rejections: nothing changed, but stamps/keys were touched
  }
  rejected_streams_.Commit();
  return results;
}

Result<ApplyResult> LedgerImpl::Apply(const Batch& batch) {
  const Batch* one[] = {&batch};
  auto results = ApplyGroup(one);
  if (!results.ok()) return results.status();
  LL_CHECK(results->size() == 1);
  return std::move(results->front());
}

Result<CompactionReport> LedgerImpl::Compact() {
  CompactionReport report;
  report.live_sst_bytes_before = Stats().live_sst_bytes;
  const auto start = std::chrono::steady_clock::now();
  rocksdb::CompactRangeOptions options;
  options.exclusive_manual_compaction = false;  // background compactions go on meanwhile
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
  for (rocksdb::ColumnFamilyHandle* cf : handles_) {
    rocksdb::Status s = db_->CompactRange(options, cf, nullptr, nullptr);
    if (!s.ok()) return FromRocks(s, "compact " + cf->GetName());
  }
  report.duration_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 std::chrono::steady_clock::now() - start)
                                                 .count());
  report.live_sst_bytes_after = Stats().live_sst_bytes;
  return report;
}

LedgerStats LedgerImpl::Stats() const {
  LedgerStats st;
  auto prop = [&](const std::string& name) {
    uint64_t v = 0;
    return db_->GetAggregatedIntProperty(name, &v) ? v : 0;
  };
  st.memtable_bytes = prop("rocksdb.cur-size-all-mem-tables");
  st.pending_compaction_bytes = prop("rocksdb.estimate-pending-compaction-bytes");
  st.live_sst_bytes = prop("rocksdb.live-sst-files-size");
  uint64_t v = 0;
  if (db_->GetIntProperty("rocksdb.block-cache-usage", &v)) st.block_cache_usage_bytes = v;
  st.write_stopped =
      prop("rocksdb.is-write-stopped") != 0 || prop("rocksdb.actual-delayed-write-rate") != 0;
  std::shared_lock lock(agg_mu_);
  st.batches_applied = next_batch_no_ - 1;
  st.loans = loan_count_;
  st.snapshots_written = snapshots_written_.load();
  st.snapshots_failed = snapshots_failed_.load();
  st.events_since_snapshot = events_total_.load() - events_at_snapshot_.load();
  lock.unlock();
  std::lock_guard error_lock(snapshot_error_mu_);
  st.last_snapshot_error = last_snapshot_error_;
  return st;
}

std::vector<CategoryBalance> LedgerImpl::CategoryBalances() const {
  std::vector<CategoryBalance> out;
  std::shared_lock lock(agg_mu_);
  for (size_t i = 0; i < rules_->category_count(); ++i) {
    const auto c = static_cast<Category>(i);
    for (uint8_t p : ProvinceCodes()) {
      const DaySeries* s = agg_.Find(c, p, 0);
      if (s == nullptr) continue;
      const Measures t = s->Total();
      out.push_back(
          CategoryBalance{c, p, t.balance_fen, t.loan_count, std::string(rules_->CategoryName(c))});
    }
  }
  return out;
}

Day LedgerImpl::LatestBusinessDate() const {
  // The (category, province) rollups see every cell change; the national
  // ones miss a loan moving between provinces (its TOTAL change nets out).
  Day latest = 0;
  std::shared_lock lock(agg_mu_);
  for (size_t i = 0; i < rules_->category_count(); ++i) {
    for (uint8_t p : ProvinceCodes()) {
      const DaySeries* s = agg_.Find(static_cast<Category>(i), p, 0);
      if (s != nullptr) latest = std::max(latest, s->LastDay());
    }
  }
  return latest;
}

}  // namespace loanledger::storage
