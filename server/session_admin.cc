// A session's admin requests (admin role only): verify, checkpoint,
// compaction, the category rules, and the text of `admin stats`.
#include <spdlog/spdlog.h>

#include <string>
#include <vector>

#include "schema/check.h"
#include "server/batch_writer.h"
#include "server/cluster_glue.h"
#include "server/metrics.h"
#include "server/rules_metrics.h"
#include "server/session.h"
#include "server/session_internal.h"
#include "storage/ledger.h"

namespace loanledger::server {
namespace {

using session_internal::ErrorFrame;

std::string StatsText(const storage::LedgerStats& s, size_t writer_queue, double connections) {
  std::string text;
  auto line = [&](const char* key, uint64_t value) {
    text += key;
    text += ' ';
    text += std::to_string(value);
    text += '\n';
  };
  line("batches_applied", s.batches_applied);
  line("loans", s.loans);
  line("loan_snapshots_written", s.snapshots_written);
  line("loan_snapshots_failed", s.snapshots_failed);
  if (!s.last_snapshot_error.empty()) {
    text += "loan_snapshot_last_error " + s.last_snapshot_error + '\n';
  }
  line("events_since_loan_snapshot", s.events_since_snapshot);
  // How the last start found the loans' categories (docs/operations.md).
  line("open_loans_categories_from_snapshot", s.open_masks_from_snapshot);
  line("open_loans_classified", s.open_loans_classified);
  line("rocksdb_memtable_bytes", s.memtable_bytes);
  line("rocksdb_pending_compaction_bytes", s.pending_compaction_bytes);
  line("rocksdb_live_sst_bytes", s.live_sst_bytes);
  line("rocksdb_block_cache_usage_bytes", s.block_cache_usage_bytes);
  line("rocksdb_write_stopped", s.write_stopped ? 1 : 0);
  line("writer_queue_batches", writer_queue);
  line("connections_active", static_cast<uint64_t>(connections));
  return text;
}

}  // namespace

void Session::HandleAdmin(const wire::Message& message, uint64_t frame_bytes) {
  const uint64_t id = message.request_id();
  if (principal_->role != wire::Role::ADMIN) {
    return CompleteError(
        id, frame_bytes, Status::Code::kPermissionDenied,
        "only an admin token may ask for " + std::string(wire::BodyName(message.body_type())));
  }
  switch (message.body_type()) {
    case wire::Body::VerifyRequest:
      return AdminVerify(id, frame_bytes);
    case wire::Body::CheckpointRequest:
      return AdminCheckpoint(message, frame_bytes);
    case wire::Body::CompactRequest:
      return AdminCompact(id, frame_bytes);
    case wire::Body::BackupRequest:
      return AdminBackup(message, frame_bytes);
    case wire::Body::RulesShowRequest:
    case wire::Body::RulesApplyRequest:
      return HandleRules(message, frame_bytes);
    default:
      LL_CHECK(message.body_type() == wire::Body::StatsRequest);
      return AdminStats(id, frame_bytes);
  }
}

void Session::AdminVerify(uint64_t id, uint64_t frame_bytes) {
  storage::Ledger* ledger = env_.ledger;
  spdlog::info("session {} {}: verify requested by {}", id_, peer_, principal_->name);
  RunOnQueryPool(id, frame_bytes, std::nullopt, [ledger, id] {
    Result<storage::VerifyReport> r = ledger->Verify();
    if (!r.ok()) return ErrorFrame(id, r.status());
    wire::VerifySummary s{
        r->batches_replayed, r->events_replayed, r->loans_checked, r->cells_checked, {}};
    for (const storage::VerifyDifference& d : r->differences) {
      s.differences.push_back(wire::VerifyDiff{d.what, d.expected, d.actual});
    }
    return wire::EncodeVerifyReply(id, s);
  });
}

void Session::AdminCheckpoint(const wire::Message& message, uint64_t frame_bytes) {
  const uint64_t id = message.request_id();
  storage::Ledger* ledger = env_.ledger;
  const std::string dir(wire::View(message.body_as_CheckpointRequest()->dir()));
  spdlog::info("session {} {}: checkpoint to {} requested by {}", id_, peer_, dir,
               principal_->name);
  RunOnQueryPool(id, frame_bytes, std::nullopt, [ledger, id, dir] {
    if (dir.empty() || dir.front() != '/') {
      return ErrorFrame(id, Status::InvalidArgument(
                                "checkpoint directory must be an absolute path on the server"));
    }
    Result<storage::Ledger::CheckpointInfo> r = ledger->Checkpoint(dir);
    if (!r.ok()) return ErrorFrame(id, r.status());
    spdlog::info("checkpoint written to {}: stream seq {}, {} batches", dir, r->log_position,
                 r->batches);
    return wire::EncodeCheckpointReply(id,
                                       wire::CheckpointSummary{dir, r->log_position, r->batches});
  });
}

void Session::AdminBackup(const wire::Message& message, uint64_t frame_bytes) {
  const uint64_t id = message.request_id();
  storage::Ledger* ledger = env_.ledger;
  const wire::BackupRequest* req = message.body_as_BackupRequest();
  storage::BackupOptions options{std::string(wire::View(req->dir())), req->keep()};
  spdlog::info("session {} {}: backup to {} requested by {}", id_, peer_, options.dir,
               principal_->name);
  // On the query pool like Verify: the first backup copies the whole store.
  RunOnQueryPool(id, frame_bytes, std::nullopt, [ledger, id, options = std::move(options)] {
    Result<storage::BackupInfo> r = ledger->Backup(options);
    if (!r.ok()) {
      spdlog::warn("backup to {} failed: {}", options.dir, r.status().ToString());
      return ErrorFrame(id, r.status());
    }
    spdlog::info("backup {} written to {}: {} batches, {} bytes ({} new), {} backups kept", r->id,
                 options.dir, r->batches, r->size_bytes, r->new_bytes, r->backups_kept);
    return wire::EncodeBackupReply(
        id, wire::BackupSummary{options.dir, r->id, r->batches, r->log_position, r->size_bytes,
                                r->new_bytes, r->files, r->backups_kept});
  });
}

// On the query pool like Verify: it may take minutes, and the session goes
// on answering meanwhile.
void Session::AdminCompact(uint64_t id, uint64_t frame_bytes) {
  storage::Ledger* ledger = env_.ledger;
  spdlog::info("session {} {}: compaction requested by {}", id_, peer_, principal_->name);
  RunOnQueryPool(id, frame_bytes, std::nullopt, [ledger, id] {
    Result<storage::CompactionReport> r = ledger->Compact();
    if (!r.ok()) return ErrorFrame(id, r.status());
    spdlog::info("compaction done in {} ms: live SST bytes {} -> {}", r->duration_ms,
                 r->live_sst_bytes_before, r->live_sst_bytes_after);
    return wire::EncodeCompactReply(
        id,
        wire::CompactSummary{r->duration_ms, r->live_sst_bytes_before, r->live_sst_bytes_after});
  });
}

void Session::AdminStats(uint64_t id, uint64_t frame_bytes) {
  storage::Ledger* ledger = env_.ledger;
  BatchWriter* writer = env_.writer;
  Metrics* metrics = env_.metrics;
  const cluster::Node* node = env_.cluster != nullptr ? env_.cluster->get() : nullptr;
  RunOnQueryPool(id, frame_bytes, std::nullopt, [ledger, writer, metrics, node, id] {
    std::string text =
        StatsText(ledger->Stats(), writer->depth(), metrics->connections_active.Value());
    text += RulesStatsText(*ledger);
    if (node != nullptr) {
      // The digest pauses the writer for one pass over the loans: an admin
      // request, not a metric.
      text += ClusterStatsText(node->State());
      const storage::Ledger::Digest d = ledger->StateDigest();
      text += "state_digest " + d.hex + " at stream seq " + std::to_string(d.log_position) + '\n';
    }
    return wire::EncodeStatsReply(id, text);
  });
}

// Admin: the category rules (docs/categories.md). Apply recomputes every
// aggregate in the background (minutes on a large store) on the query
// pool, as Compact does; queries and batches go on meanwhile.
void Session::HandleRules(const wire::Message& message, uint64_t frame_bytes) {
  const uint64_t id = message.request_id();
  storage::Ledger* ledger = env_.ledger;
  const auto info = [](const storage::RulesVersion& v, bool with_text) {
    return wire::RulesVersionInfo{v.number, v.version, with_text ? v.text : std::string(),
                                  v.applied_ms};
  };
  if (message.body_type() == wire::Body::RulesShowRequest) {
    RunOnQueryPool(id, frame_bytes, std::nullopt, [ledger, id, info] {
      wire::RulesShowInfo show;
      show.current = info(ledger->CurrentRules(), true);
      Result<std::vector<storage::RulesVersion>> history = ledger->RulesHistory();
      if (!history.ok()) return ErrorFrame(id, history.status());
      for (const storage::RulesVersion& v : *history) show.history.push_back(info(v, false));
      const storage::RulesProgress p = ledger->RulesRecompute();
      show.recompute_running = p.running;
      show.recompute_version = p.version;
      show.recompute_batches_done = p.batches_done;
      show.recompute_batches_total = p.batches_total;
      return wire::EncodeRulesShowReply(id, show);
    });
    return;
  }
  std::string text(wire::View(message.body_as_RulesApplyRequest()->text()));
  spdlog::info("session {} {}: rules apply requested by {} ({} bytes)", id_, peer_,
               principal_->name, text.size());
  RunOnQueryPool(id, frame_bytes, std::nullopt, [ledger, id, info, text = std::move(text)] {
    Result<storage::RulesVersion> r = ledger->ApplyRules(text);
    if (!r.ok()) {
      spdlog::warn("rules apply refused: {}", r.status().ToString());
      return ErrorFrame(id, r.status());
    }
    spdlog::info("rules version {} ({}) in force", r->number, r->version);
    return wire::EncodeRulesApplyReply(id, info(*r, false));
  });
}

}  // namespace loanledger::server
