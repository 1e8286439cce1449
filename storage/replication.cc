// What cluster mode needs of a ledger besides ApplyGroupPublished and
// ApplyPublished (ledger_apply.cc): the log position, the records at given
// positions (to put a lost log tail back), a state digest to compare
// replicas, and a checkpoint to start a new replica from.
#include <rocksdb/utilities/checkpoint.h>

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "schema/check.h"
#include "storage/codec.h"
#include "storage/ledger_impl.h"
#include "storage/rocks_status.h"

namespace loanledger::storage {
namespace {

// FNV-1a, 64 bits, over the bytes given so far.
class Fnv64 {
 public:
  void Bytes(std::string_view b) {
    for (unsigned char c : b) {
      h_ ^= c;
      h_ *= 0x100000001b3ull;
    }
  }
  void U64(uint64_t v) {
    for (int i = 0; i < 8; ++i, v >>= 8) Bytes(std::string_view(reinterpret_cast<char*>(&v), 1));
  }
  uint64_t value() const { return h_; }

 private:
  uint64_t h_ = 0xcbf29ce484222325ull;
};

}  // namespace

uint64_t LedgerImpl::LogPosition() const {
  std::shared_lock lock(agg_mu_);
  return log_position_;
}

// Every record applied in cluster mode became exactly one journal batch
// (ApplyPublished refuses a record that applies nothing; the leader
// publishes one record per batch it journals), and the journal is never
// trimmed, so batches - positions is the same for every position: 0 for a
// store that was in the cluster from its first batch, or one started from
// such a store's checkpoint.
Result<std::vector<std::string>> LedgerImpl::PublishedRecords(uint64_t first_position,
                                                              uint64_t last_position,
                                                              size_t max_bytes) const {
  uint64_t position;
  uint64_t batches;
  {
    std::shared_lock lock(agg_mu_);
    position = log_position_;
    batches = next_batch_no_ - 1;
  }
  if (first_position == 0 || first_position > last_position || last_position > position) {
    return Status::InvalidArgument("log positions " + std::to_string(first_position) + ".." +
                                   std::to_string(last_position) + " are not within 1.." +
                                   std::to_string(position) + " (applied here)");
  }
  if (batches < position) {
    return Status::Corruption("the journal holds " + std::to_string(batches) +
                              " batches but the log position is " + std::to_string(position));
  }
  const uint64_t offset = batches - position;
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_journal_));
  std::vector<std::string> out;
  size_t bytes = 0;
  uint64_t expect = first_position + offset;
  for (it->Seek(EncodeJournalKey(expect)); expect <= last_position + offset; it->Next(), ++expect) {
    uint64_t batch_no = 0;
    if (!it->Valid() ||
        !DecodeJournalKey(std::string_view(it->key().data(), it->key().size()), &batch_no) ||
        batch_no != expect) {
      if (!it->status().ok()) return FromRocks(it->status(), "read the journal");
      return Status::Corruption("journal batch " + std::to_string(expect) + " (log position " +
                                std::to_string(expect - offset) + ") missing");
    }
    out.emplace_back(it->value().data(), it->value().size());
    bytes += out.back().size();
    if (bytes >= max_bytes) break;
  }
  return out;
}

// Loans are summed by their own hashes (the table's order depends on the
// history of restarts, the state does not); cells are hashed in key order
// as stored. No writer runs meanwhile, so both reflect one log position.
Ledger::Digest LedgerImpl::StateDigest() const {
  std::lock_guard write_lock(write_mu_);
  std::shared_lock loans_lock(loans_mu_);
  Digest d;
  uint64_t loans_sum = 0;
  loans_.ForEachIn(0, loans_.size(), [&](std::string_view key, const LoanSlot& slot) {
    Fnv64 h;
    h.Bytes(key);
    h.U64(slot.last_seq);
    h.U64(static_cast<uint64_t>(slot.balance_fen));
    h.U64(static_cast<uint64_t>(slot.last_date));
    const PackedAttributes& a = slot.attributes;
    h.U64(static_cast<uint64_t>(a.credit_line_fen));
    h.U64(a.region);
    h.Bytes(std::string_view(a.industry, a.industry_len));
    h.U64(a.term_months);
    h.U64((uint64_t{a.borrower_type} << 16) | (uint64_t{a.enterprise_size} << 8) | a.flags);
    loans_sum += h.value();
  });
  Fnv64 h;
  h.U64(loans_sum);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_cells_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    h.Bytes(std::string_view(it->key().data(), it->key().size()));
    h.Bytes(std::string_view(it->value().data(), it->value().size()));
  }
  std::shared_lock agg_lock(agg_mu_);
  d.log_position = log_position_;
  d.batches = next_batch_no_ - 1;
  d.loans = loan_count_;
  h.U64(d.batches);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016" PRIx64, h.value());
  d.hex = hex;
  return d;
}

// The snapshot in effect cannot change while snapshot_write_mu_ is held,
// and the checkpoint's meta names that one, whose file is linked beside.
Result<Ledger::CheckpointInfo> LedgerImpl::Checkpoint(const std::string& dir) {
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) || ec) {
    return Status::InvalidArgument("checkpoint directory " + dir + " already exists");
  }
  std::lock_guard write_lock(write_mu_);  // the copy and info reflect one log position
  std::lock_guard snapshot_lock(snapshot_write_mu_);
  CheckpointInfo info;
  {
    std::shared_lock agg_lock(agg_mu_);
    info.log_position = log_position_;
    info.batches = next_batch_no_ - 1;
  }
  rocksdb::Checkpoint* raw = nullptr;
  rocksdb::Status s = rocksdb::Checkpoint::Create(db_.get(), &raw);
  if (!s.ok()) return FromRocks(s, "start a checkpoint");
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  s = checkpoint->CreateCheckpoint(dir);
  if (!s.ok()) return FromRocks(s, "write checkpoint " + dir);
  const std::filesystem::path snapshots =
      std::filesystem::path(dir) / std::filesystem::path(SnapshotDir()).filename();
  std::filesystem::create_directories(snapshots, ec);
  if (ec) return Status::IoError("cannot create " + snapshots.string() + ": " + ec.message());
  if (snapshot_from_ == 0) return info;
  const std::filesystem::path from = SnapshotPath(snapshot_from_);
  const std::filesystem::path to = snapshots / from.filename();
  std::filesystem::create_hard_link(from, to, ec);
  if (ec) std::filesystem::copy_file(from, to, ec);
  if (ec) return Status::IoError("cannot copy " + from.string() + ": " + ec.message());
  return info;
}

}  // namespace loanledger::storage
