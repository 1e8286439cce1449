// Category rules in the store (docs/categories.md): the versions applied, and a rules
// change — every aggregate recomputed from the journal in the background,
// then switched in one synced write. Keyspace: storage/README.md
// ("rules/current", "rules/v/<n>").
#include <rocksdb/write_batch.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "schema/check.h"
#include "storage/ledger_impl.h"

namespace loanledger::storage {
namespace {

constexpr std::string_view kMetaRulesCurrent = "rules/current";   // u64 LE: the current version
constexpr std::string_view kMetaRulesVersionPrefix = "rules/v/";  // + u64 BE number -> version
constexpr uint8_t kRulesVersionFormat = 1;

std::string VersionKey(uint64_t number) {
  return std::string(kMetaRulesVersionPrefix) + EncodeJournalKey(number);  // u64 big-endian
}

// u8 format=1, i64 LE applied_ms, then the file's text.
std::string EncodeVersion(const RulesVersion& v) {
  std::string out(1, static_cast<char>(kRulesVersionFormat));
  out.append(reinterpret_cast<const char*>(&v.applied_ms), 8);
  out += v.text;
  return out;
}

Status DecodeVersion(uint64_t number, std::string_view value, RulesVersion* out,
                     std::shared_ptr<const Rules>* rules) {
  if (value.size() < 9 || static_cast<uint8_t>(value[0]) != kRulesVersionFormat)
    return Status::Corruption("rules version " + std::to_string(number) + " undecodable");
  out->number = number;
  std::memcpy(&out->applied_ms, value.data() + 1, 8);
  out->text = std::string(value.substr(9));
  Result<std::shared_ptr<const Rules>> parsed = Rules::Parse(out->text);
  if (!parsed.ok()) {
    return Status::Corruption("stored rules version " + std::to_string(number) +
                              " does not parse: " + parsed.status().message());
  }
  out->version = (*parsed)->version();
  if (rules != nullptr) *rules = std::move(parsed).value();
  return Status::Ok();
}

Status FromRocksStatus(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  if (s.IsCorruption()) return Status::Corruption(what + ": " + s.ToString());
  return Status::IoError(what + ": " + s.ToString());
}

}  // namespace

Status LedgerImpl::LoadRules() {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf_meta_, kMetaRulesCurrent, &value);
  rules_ = DefaultRules();
  rules_current_ = RulesVersion{0, rules_->version(), rules_->text(), 0};  // not recorded yet
  if (!s.IsNotFound()) {
    if (!s.ok()) return FromRocksStatus(s, "read current rules");
    uint64_t number = 0;
    if (!DecodeU64(value, &number) || number == 0)
      return Status::Corruption("bad rules/current entry in meta");
    s = db_->Get(rocksdb::ReadOptions(), cf_meta_, VersionKey(number), &value);
    if (!s.ok()) return FromRocksStatus(s, "read rules version " + std::to_string(number));
    if (Status st = DecodeVersion(number, value, &rules_current_, &rules_); !st.ok()) return st;
  }
  classifier_ = std::make_unique<Classifier>(rules_);
  return Status::Ok();
}

Status LedgerImpl::InitRules(const std::string& text) {
  if (rules_current_.number == 0) {
    // A new store, or one from before rules files: its cells were computed
    // under the default file. Record it as version 1.
    RulesVersion v = rules_current_;
    v.number = 1;
    v.applied_ms = options_.clock_ms ? options_.clock_ms()
                                     : std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count();
    rocksdb::WriteBatch wb;
    wb.Put(cf_meta_, VersionKey(1), EncodeVersion(v));
    wb.Put(cf_meta_, kMetaRulesCurrent, EncodeU64(1));
    rocksdb::WriteOptions wo;
    wo.sync = options_.sync;
    if (rocksdb::Status s = db_->Write(wo, &wb); !s.ok())
      return FromRocksStatus(s, "record rules version 1");
    std::lock_guard write_lock(write_mu_);
    std::unique_lock loans_lock(loans_mu_);
    std::unique_lock agg_lock(agg_mu_);
    rules_current_ = std::move(v);
  }
  if (!text.empty() && text != rules_->text()) {
    Result<RulesVersion> applied = ApplyRules(text);
    if (!applied.ok()) return applied.status();
  }
  // Loans read from a snapshot are not classified yet: classify them now,
  // before serving, rather than on each one's first event (the apply path
  // would pay for it; the open used to, in the snapshot readers).
  std::lock_guard write_lock(write_mu_);
  std::unique_lock loans_lock(loans_mu_);
  ClassifyUnresolvedLoans();
  return Status::Ok();
}

// Two threads, each over half of the table: Rules::Classify is pure, and
// only a mask new to a thread goes to the classifier (not thread-safe) under
// a mutex; masks are few (a few hundred), loans many.
void LedgerImpl::ClassifyUnresolvedLoans() {
  const Rules& rules = *classifier_->rules();
  std::mutex intern_mu;
  std::atomic<uint64_t> classified{0};
  auto classify = [&](size_t begin, size_t end) {
    std::unordered_map<RuleMask, uint16_t> ids;  // the classifier's id of each mask met
    uint64_t count = 0;
    loans_.ForEachSlotIn(begin, end, [&](LoanSlot& slot) {
      if (!slot.exists || slot.mask != kMaskUnresolved) return;
      ++count;
      const RuleMask mask = rules.Classify(slot.attributes.Unpack());
      auto it = ids.find(mask);
      if (it == ids.end()) {
        std::lock_guard lock(intern_mu);
        it = ids.emplace(mask, classifier_->InternMask(mask)).first;
      }
      slot.mask = it->second;
    });
    classified += count;
  };
  const size_t n = loans_.size();
  std::thread second_half(classify, n / 2, n);
  classify(0, n / 2);
  second_half.join();
  open_loans_classified_ += classified.load();
}

Result<RulesVersion> LedgerImpl::ApplyRules(std::string_view text) {
  Result<std::shared_ptr<const Rules>> parsed = Rules::Parse(text);
  if (!parsed.ok()) return parsed.status();
  std::lock_guard apply_lock(rules_apply_mu_);
  {
    std::lock_guard write_lock(write_mu_);
    if (rules_->text() == text) return rules_current_;  // already in force
  }
  RulesVersion recorded;
  Result<uint64_t> cells = RecomputeAndSwitch(std::move(parsed).value(), true, &recorded);
  if (!cells.ok()) return cells.status();
  return recorded;
}

RulesVersion LedgerImpl::CurrentRules() const {
  std::shared_lock lock(agg_mu_);
  return rules_current_;
}

Result<std::vector<RulesVersion>> LedgerImpl::RulesHistory() const {
  std::vector<RulesVersion> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_meta_));
  for (it->Seek(kMetaRulesVersionPrefix);
       it->Valid() && it->key().starts_with(kMetaRulesVersionPrefix); it->Next()) {
    uint64_t number = 0;
    const std::string_view key(it->key().data(), it->key().size());
    if (!DecodeJournalKey(key.substr(kMetaRulesVersionPrefix.size()), &number))
      return Status::Corruption("bad rules version key " + it->key().ToString(true));
    RulesVersion v;
    if (Status st = DecodeVersion(number, std::string_view(it->value().data(), it->value().size()),
                                  &v, nullptr);
        !st.ok())
      return st;
    out.push_back(std::move(v));
  }
  if (!it->status().ok()) return FromRocksStatus(it->status(), "read rules versions");
  return out;
}

RulesProgress LedgerImpl::RulesRecompute() const {
  RulesProgress p;
  p.running = recompute_running_.load();
  p.batches_done = recompute_batches_done_.load();
  p.batches_total = recompute_batches_total_.load();
  p.completed = recompute_completed_.load();
  p.last_duration_ms = recompute_last_duration_ms_.load();
  std::lock_guard lock(recompute_mu_);
  p.version = recompute_version_;
  return p;
}

Result<uint64_t> LedgerImpl::RecomputeAndSwitch(std::shared_ptr<const Rules> rules, bool record,
                                                RulesVersion* recorded) {
  const auto started = std::chrono::steady_clock::now();
  // 1. In the background: replay the journal as of a snapshot taken
  //    between two groups. Writers and queries go on under the old rules.
  const rocksdb::Snapshot* snapshot = nullptr;
  {
    std::lock_guard write_lock(write_mu_);
    snapshot = db_->GetSnapshot();
    recompute_batches_total_ = next_batch_no_ - 1;
  }
  struct Running {
    LedgerImpl* l;
    const rocksdb::Snapshot* s;
    ~Running() {
      l->db_->ReleaseSnapshot(s);
      l->recompute_running_ = false;
    }
  } running{this, snapshot};
  {
    std::lock_guard lock(recompute_mu_);
    recompute_version_ = rules->version();
  }
  recompute_batches_done_ = 0;
  recompute_running_ = true;
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  std::unordered_map<std::string, uint32_t> ids;
  std::vector<std::string> names;
  if (Status st = ReadInstitutions(db_.get(), cf_meta_, ro, &ids, &names); !st.ok()) return st;
  Classifier classifier(rules);
  JournalReplay replay;
  std::string problem;
  const auto on_problem = [&](std::string what) {
    if (problem.empty()) problem = std::move(what);
  };
  if (Status st = ReplayJournal(db_.get(), cf_journal_, ro, ids, &classifier, &replay, on_problem,
                                &recompute_batches_done_);
      !st.ok())
    return st;
  if (!problem.empty())
    return Status::Corruption("the journal does not replay cleanly: " + problem);

  // 2. Holding the writer's lock: the batches that landed meanwhile, then
  //    every cell and the version in one synced write.
  std::lock_guard write_lock(write_mu_);
  recompute_batches_total_ = next_batch_no_ - 1;
  ids.clear();
  if (Status st = ReadInstitutions(db_.get(), cf_meta_, rocksdb::ReadOptions(), &ids, &names);
      !st.ok())
    return st;
  if (Status st = ReplayJournal(db_.get(), cf_journal_, rocksdb::ReadOptions(), ids, &classifier,
                                &replay, on_problem, &recompute_batches_done_);
      !st.ok())
    return st;
  if (!problem.empty())
    return Status::Corruption("the journal does not replay cleanly: " + problem);
  if (replay.next_batch_no != next_batch_no_) {
    return Status::Corruption("the journal ends before batch " +
                              std::to_string(replay.next_batch_no) + ", meta says " +
                              std::to_string(next_batch_no_));
  }
  rocksdb::WriteBatch wb;
  // Cell keys start with a category id (<= 64): one range covers them all.
  rocksdb::Status s = wb.DeleteRange(cf_cells_, "", std::string(1, '\xff'));
  Aggregator rebuilt;
  uint64_t stored = 0;
  for (const auto& [packed, m] : replay.cells) {
    if (m.IsZero() || !s.ok()) continue;
    const CellKey key = UnpackCell(packed);
    s = wb.Put(cf_cells_, EncodeCellKey(key), EncodeMeasures(m));
    rebuilt.AddCell(key, m);
    ++stored;
  }
  RulesVersion v = rules_current_;
  if (record) {
    v.number = rules_current_.number + 1;
    v.version = rules->version();
    v.text = rules->text();
    v.applied_ms = options_.clock_ms ? options_.clock_ms()
                                     : std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count();
    if (s.ok()) s = wb.Put(cf_meta_, VersionKey(v.number), EncodeVersion(v));
    if (s.ok()) s = wb.Put(cf_meta_, kMetaRulesCurrent, EncodeU64(v.number));
  }
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  if (s.ok()) s = db_->Write(wo, &wb);
  if (!s.ok()) return FromRocksStatus(s, "write recomputed cells");

  std::unique_lock loans_lock(loans_mu_);
  std::unique_lock agg_lock(agg_mu_);
  agg_ = std::move(rebuilt);
  loans_.ForEach([](std::string_view, LoanSlot& slot) { slot.mask = kMaskUnresolved; });
  classifier_ = std::make_unique<Classifier>(std::move(classifier));
  rules_ = std::move(rules);
  rules_current_ = v;
  snapshot_outdated_ = true;  // its masks are the old rules'; the next one is written anyway
  if (recorded != nullptr) *recorded = std::move(v);
  recompute_last_duration_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - started)
                                    .count();
  ++recompute_completed_;
  return stored;
}

}  // namespace loanledger::storage
