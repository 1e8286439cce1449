// Online backups (ledger.h: Ledger::Backup, RestoreBackup, VerifyBackup;
// storage/README.md, "Backups"). A backup directory holds:
//   LOANLEDGER-BACKUP        names the store whose backups these are
//   rocksdb/                 RocksDB's BackupEngine: meta/, private/, shared_checksum/
//   loan-snapshots/<replay_from, 20 digits>.loans   the loan snapshots the backups need
// Each BackupEngine backup's app metadata names its loan snapshot
// ("loan_snapshot N"); snapshots are shared between backups like table files.
#include <fcntl.h>
#include <rocksdb/db.h>
#include <rocksdb/utilities/backup_engine.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include "schema/check.h"
#include "storage/ledger_impl.h"
#include "storage/rocks_status.h"

namespace loanledger::storage {
namespace {

namespace fs = std::filesystem;

constexpr const char* kMarkerFile = "LOANLEDGER-BACKUP";
constexpr const char* kEngineDir = "rocksdb";
constexpr const char* kSnapshotsDir = "loan-snapshots";  // as in a data directory (snapshot.cc)
// RocksDB reads a store's CURRENT file first; while a restore is under way
// the target's CURRENT holds this, which RocksDB refuses ("CURRENT file
// corrupted"), so no ledger opens (or creates a new store in) a half
// restored directory.
constexpr const char* kRestoreIncomplete = "RESTORE-INCOMPLETE-RUN-THE-RESTORE-AGAIN\n";
constexpr const char* kRestoreStaging = ".restore-incomplete";

std::string SnapshotFileName(uint64_t replay_from) {
  char name[32];
  std::snprintf(name, sizeof name, "%020" PRIu64 ".loans", replay_from);
  return name;
}

Status Errno(const std::string& what, const std::string& path) {
  return Status::IoError(what + " " + path + ": " + std::strerror(errno));
}

Status SyncPath(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open", path);
  const int rc = directory ? ::fsync(fd) : ::fdatasync(fd);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return rc == 0 ? Status::Ok() : Errno("sync", path);
}

// Copies `from` to `to` whole or not at all: through `to`.tmp, synced,
// renamed, the directory synced.
Status CopyFileDurably(const fs::path& from, const fs::path& to) {
  const fs::path tmp = to.string() + ".tmp";
  std::error_code ec;
  fs::copy_file(from, tmp, fs::copy_options::overwrite_existing, ec);
  if (ec)
    return Status::IoError("copy " + from.string() + " to " + tmp.string() + ": " + ec.message());
  if (Status s = SyncPath(tmp, false); !s.ok()) return s;
  fs::rename(tmp, to, ec);
  if (ec) return Status::IoError("rename " + tmp.string() + ": " + ec.message());
  return SyncPath(to.parent_path(), true);
}

Status WriteFileDurably(const fs::path& path, std::string_view text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return Status::IoError("cannot write " + tmp.string());
  }
  if (Status s = SyncPath(tmp, false); !s.ok()) return s;
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Status::IoError("rename " + tmp.string() + ": " + ec.message());
  return SyncPath(path.parent_path(), true);
}

std::string ReadSmallFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// "loan_snapshot N" in a backup's app metadata; 0 when absent.
uint64_t MetadataSnapshot(const std::string& metadata) {
  uint64_t v = 0;
  if (std::sscanf(metadata.c_str(), "loan_snapshot %" SCNu64, &v) != 1) return 0;
  return v;
}

// A BackupEngine over dir/rocksdb: read-write or read-only.
Result<std::unique_ptr<rocksdb::BackupEngine>> OpenEngine(const std::string& dir) {
  rocksdb::BackupEngineOptions options((fs::path(dir) / kEngineDir).string());
  options.sync = true;  // a backup is whole after a machine crash, or absent
  rocksdb::BackupEngine* raw = nullptr;
  rocksdb::IOStatus s = rocksdb::BackupEngine::Open(rocksdb::Env::Default(), options, &raw);
  if (!s.ok()) return FromRocks(s, "open backup directory " + dir);
  return std::unique_ptr<rocksdb::BackupEngine>(raw);
}

Result<std::unique_ptr<rocksdb::BackupEngineReadOnly>> OpenEngineReadOnly(const std::string& dir) {
  if (!fs::is_regular_file(fs::path(dir) / kMarkerFile)) {
    return Status::NotFound(dir + " is not a loanledger backup directory (no " + kMarkerFile + ")");
  }
  rocksdb::BackupEngineOptions options((fs::path(dir) / kEngineDir).string());
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  rocksdb::IOStatus s = rocksdb::BackupEngineReadOnly::Open(rocksdb::Env::Default(), options, &raw);
  if (!s.ok()) return FromRocks(s, "open backup directory " + dir);
  return std::unique_ptr<rocksdb::BackupEngineReadOnly>(raw);
}

bool IsInside(const fs::path& inner, const fs::path& outer) {
  std::error_code ec;
  const fs::path a = fs::weakly_canonical(inner, ec);
  const fs::path b = fs::weakly_canonical(outer, ec);
  auto i = a.begin();
  for (auto o = b.begin(); o != b.end(); ++o, ++i) {
    if (o->empty()) continue;  // a trailing separator
    if (i == a.end() || *i != *o) return false;
  }
  return true;
}

// Checks (and prepares) a backup directory for `store` (the RocksDB
// identity of the store being backed up).
Status PrepareBackupDir(const std::string& dir, const std::string& data_dir,
                        const std::string& store) {
  if (dir.empty() || dir.front() != '/') {
    return Status::InvalidArgument(
        "backup directory must be an absolute path on the server, not '" + dir + "'");
  }
  if (IsInside(dir, data_dir) || IsInside(data_dir, dir)) {
    return Status::InvalidArgument("backup directory " + dir +
                                   " must be outside the data directory " + data_dir);
  }
  std::error_code ec;
  const fs::path marker = fs::path(dir) / kMarkerFile;
  const std::string line = "loanledger backups of store " + store + "\n";
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) {
      return Status::InvalidArgument("backup directory " + dir + " is not a directory");
    }
    if (fs::exists(marker, ec)) {
      const std::string text = ReadSmallFile(marker);
      if (text != line) {
        return Status::InvalidArgument(
            "backup directory " + dir + " holds the backups of another store (" + kMarkerFile +
            "); give each store its own backup directory (a restored store is a new store)");
      }
      return Status::Ok();
    }
    if (!fs::is_empty(dir, ec) || ec) {
      return Status::InvalidArgument("backup directory " + dir +
                                     " is not empty and holds no loanledger backups");
    }
  } else {
    fs::create_directories(dir, ec);
    if (ec) return Status::IoError("cannot create backup directory " + dir + ": " + ec.message());
  }
  return WriteFileDurably(marker, line);
}

// Reads a u64 meta value of the DB at `name` (opened read-only in `env`).
Status ReadBackupMeta(rocksdb::Env* env, const std::string& name, BackupInfo* info) {
  rocksdb::DBOptions db_options;
  db_options.env = env;
  db_options.info_log_level = rocksdb::InfoLogLevel::HEADER_LEVEL;
  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(db_options, name, &names);
  if (!s.ok()) return FromRocks(s, "list column families of the backup");
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const std::string& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  s = rocksdb::DB::OpenForReadOnly(db_options, name, cfs, &handles, &raw);
  if (!s.ok()) return FromRocks(s, "open the backup read-only");
  std::unique_ptr<rocksdb::DB> db(raw);
  auto u64 = [&](std::string_view key, uint64_t* out) {
    std::string value;
    rocksdb::Status g = db->Get(rocksdb::ReadOptions(), db->DefaultColumnFamily(),
                                rocksdb::Slice(key.data(), key.size()), &value);
    *out = 0;
    if (g.IsNotFound()) return Status::Ok();
    if (!g.ok()) return FromRocks(g, "read the backup's meta");
    return DecodeU64(value, out) ? Status::Ok()
                                 : Status::Corruption("backup meta " + std::string(key));
  };
  uint64_t next_batch = 0;
  Status st = u64(kMetaNextBatch, &next_batch);
  if (st.ok()) st = u64(kMetaLogPosition, &info->log_position);
  if (st.ok()) st = u64(kMetaLoanSnapshot, &info->loan_snapshot);
  info->batches = next_batch == 0 ? 0 : next_batch - 1;
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  return st;
}

BackupInfo FromEngineInfo(const rocksdb::BackupInfo& b) {
  BackupInfo info;
  info.id = b.backup_id;
  info.created_unix_s = b.timestamp;
  info.size_bytes = b.size;
  info.files = b.number_files;
  info.loan_snapshot = MetadataSnapshot(b.app_metadata);
  return info;
}

// Removes the loan snapshots no backup names, and stray .tmp files.
void RemoveUnusedSnapshots(const fs::path& dir, const std::set<std::string>& used) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!used.contains(entry.path().filename().string())) fs::remove(entry.path(), ec);
  }
}

// Restores backup `id` (0 = newest) into `data_dir` (absent, empty, or
// left by an interrupted restore), opens it, calls `use` with the open
// ledger, and closes it.
Result<BackupInfo> RestoreInto(const std::string& backup_dir, uint32_t id,
                               const std::string& data_dir,
                               const std::function<Status(Ledger&, BackupInfo*)>& use) {
  Result<std::unique_ptr<rocksdb::BackupEngineReadOnly>> engine = OpenEngineReadOnly(backup_dir);
  if (!engine.ok()) return engine.status();
  rocksdb::BackupInfo chosen;
  rocksdb::Status s =
      id == 0 ? (*engine)->GetLatestBackupInfo(&chosen) : (*engine)->GetBackupInfo(id, &chosen);
  if (!s.ok()) {
    return s.IsNotFound()
               ? Status::NotFound(id == 0 ? "no backup in " + backup_dir
                                          : "no backup " + std::to_string(id) + " in " + backup_dir)
               : FromRocks(s, "backup " + std::to_string(id));
  }
  BackupInfo info = FromEngineInfo(chosen);

  // The target: new, empty, or an interrupted restore's (its CURRENT says so).
  std::error_code ec;
  const fs::path target(data_dir);
  const fs::path current = target / "CURRENT";
  if (fs::exists(target, ec)) {
    if (!fs::is_directory(target, ec)) {
      return Status::InvalidArgument("data directory " + data_dir + " is not a directory");
    }
    const bool interrupted =
        fs::exists(current, ec) && ReadSmallFile(current) == kRestoreIncomplete;
    if (interrupted) {
      for (const auto& entry : fs::directory_iterator(target, ec)) {
        if (entry.path() != current) fs::remove_all(entry.path(), ec);
      }
    } else if (!fs::is_empty(target, ec)) {
      return Status::InvalidArgument("data directory " + data_dir +
                                     " is not empty: restore only into a new or empty "
                                     "directory (move the old one aside first)");
    }
  } else {
    fs::create_directories(target, ec);
    if (ec) return Status::IoError("cannot create " + data_dir + ": " + ec.message());
  }
  if (Status st = WriteFileDurably(current, kRestoreIncomplete); !st.ok()) return st;

  // Everything goes into a staging directory inside the target (one file
  // system: renames), then moves up; CURRENT last, replacing the marker.
  const fs::path staging = target / kRestoreStaging;
  fs::remove_all(staging, ec);
  rocksdb::IOStatus io =
      (*engine)->RestoreDBFromBackup(chosen.backup_id, staging.string(), staging.string());
  if (!io.ok()) return FromRocks(io, "restore backup " + std::to_string(info.id));
  if (info.loan_snapshot != 0) {
    const std::string name = SnapshotFileName(info.loan_snapshot);
    fs::create_directories(staging / kSnapshotsDir, ec);
    if (ec) return Status::IoError("cannot create " + (staging / kSnapshotsDir).string());
    if (Status st = CopyFileDurably(fs::path(backup_dir) / kSnapshotsDir / name,
                                    staging / kSnapshotsDir / name);
        !st.ok()) {
      return st;
    }
  }
  {
    LedgerOptions options;
    options.path = staging.string();
    Result<std::unique_ptr<Ledger>> ledger = Ledger::Open(options);
    if (!ledger.ok()) {
      return Status(ledger.status().code(), "the restored backup " + std::to_string(info.id) +
                                                " does not open: " + ledger.status().message());
    }
    const LedgerStats stats = (*ledger)->Stats();
    info.batches = stats.batches_applied;
    info.log_position = (*ledger)->LogPosition();
    if (Status st = use(**ledger, &info); !st.ok()) return st;
  }  // closed: a final loan snapshot written, memtables flushed
  for (const auto& entry : fs::directory_iterator(staging, ec)) {
    if (entry.path().filename() == "CURRENT") continue;
    fs::rename(entry.path(), target / entry.path().filename(), ec);
    if (ec) return Status::IoError("move " + entry.path().string() + ": " + ec.message());
  }
  if (Status st = SyncPath(target.string(), true); !st.ok()) return st;
  if (Status st = SyncPath((target / kSnapshotsDir).string(), true); !st.ok()) return st;
  fs::rename(staging / "CURRENT", current, ec);
  if (ec) return Status::IoError("move CURRENT into " + data_dir + ": " + ec.message());
  if (Status st = SyncPath(target.string(), true); !st.ok()) return st;
  fs::remove_all(staging, ec);
  return info;
}

}  // namespace

// snapshot_write_mu_ is held throughout: the loan snapshot in effect (named
// in meta, so in the backup's meta) stays, and its file with it, until both
// are in the backup directory. Writers are not held up: BackupEngine
// flushes the memtables and copies files beside them.
Result<BackupInfo> LedgerImpl::Backup(const BackupOptions& options) {
  // Also one backup at a time: a second one's GarbageCollect would remove
  // the files of one in progress.
  std::lock_guard snapshot_lock(snapshot_write_mu_);
  std::string store;
  if (rocksdb::Status s = db_->GetDbIdentity(store); !s.ok()) return FromRocks(s, "read identity");
  while (!store.empty() && (store.back() == '\n' || store.back() == '\r')) store.pop_back();
  if (Status st = PrepareBackupDir(options.dir, options_.path, store); !st.ok()) return st;
  Result<std::unique_ptr<rocksdb::BackupEngine>> engine = OpenEngine(options.dir);
  if (!engine.ok()) return engine.status();
  rocksdb::IOStatus io = (*engine)->GarbageCollect();  // what a crash part way left
  if (!io.ok()) return FromRocks(io, "clean backup directory " + options.dir);
  const fs::path snapshots = fs::path(options.dir) / kSnapshotsDir;
  std::error_code ec;
  fs::create_directories(snapshots, ec);
  if (ec) return Status::IoError("cannot create " + snapshots.string() + ": " + ec.message());

  const uint64_t snapshot = snapshot_from_;
  uint64_t new_bytes = 0;
  if (snapshot != 0) {
    const fs::path to = snapshots / SnapshotFileName(snapshot);
    if (!fs::exists(to, ec)) {
      // The backup's own copy first: a backup that names it always has it.
      if (Status st = CopyFileDurably(SnapshotPath(snapshot), to); !st.ok()) return st;
      new_bytes += fs::file_size(to, ec);
    }
  }
  std::vector<rocksdb::BackupInfo> before;
  (*engine)->GetBackupInfo(&before, /*include_file_details=*/true);
  std::set<std::string> had;
  for (const rocksdb::BackupInfo& b : before) {
    for (const rocksdb::BackupFileInfo& f : b.file_details) had.insert(f.relative_filename);
  }
  rocksdb::CreateBackupOptions create;
  create.flush_before_backup = true;  // table files, shared by the next backups, not a long WAL
  rocksdb::BackupID id = 0;
  io = (*engine)->CreateNewBackupWithMetadata(create, db_.get(),
                                              "loan_snapshot " + std::to_string(snapshot), &id);
  if (!io.ok()) return FromRocks(io, "back up to " + options.dir);

  rocksdb::BackupInfo made;
  rocksdb::Status s = (*engine)->GetBackupInfo(id, &made, /*include_file_details=*/true);
  if (!s.ok()) return FromRocks(s, "read backup " + std::to_string(id));
  BackupInfo info = FromEngineInfo(made);
  if (snapshot != 0) info.size_bytes += fs::file_size(snapshots / SnapshotFileName(snapshot), ec);
  for (const rocksdb::BackupFileInfo& f : made.file_details) {
    if (!had.contains(f.relative_filename)) new_bytes += f.size;
  }
  info.new_bytes = new_bytes;
  if (Status st = ReadBackupMeta(made.env_for_open.get(), made.name_for_open, &info); !st.ok())
    return st;
  // The meta the backup holds names the snapshot copied above (the lock).
  LL_CHECK_MSG(info.loan_snapshot == snapshot, "backup names another loan snapshot");

  if (options.keep != 0) {
    io = (*engine)->PurgeOldBackups(options.keep);
    if (!io.ok()) return FromRocks(io, "delete old backups in " + options.dir);
  }
  std::vector<rocksdb::BackupInfo> after;
  (*engine)->GetBackupInfo(&after);
  std::set<std::string> used;
  for (const rocksdb::BackupInfo& b : after) {
    if (const uint64_t x = MetadataSnapshot(b.app_metadata); x != 0)
      used.insert(SnapshotFileName(x));
  }
  RemoveUnusedSnapshots(snapshots, used);
  info.backups_kept = static_cast<uint32_t>(after.size());
  return info;
}

Result<BackupInfo> RestoreBackup(const std::string& backup_dir, uint32_t id,
                                 const std::string& data_dir) {
  return RestoreInto(backup_dir, id, data_dir, [](Ledger&, BackupInfo*) { return Status::Ok(); });
}

Result<BackupVerifyReport> VerifyBackup(const std::string& backup_dir, uint32_t id,
                                        const std::string& scratch_dir) {
  Result<std::unique_ptr<rocksdb::BackupEngineReadOnly>> engine = OpenEngineReadOnly(backup_dir);
  if (!engine.ok()) return engine.status();
  if (id == 0) {
    rocksdb::BackupInfo latest;
    rocksdb::Status s = (*engine)->GetLatestBackupInfo(&latest);
    if (!s.ok()) return Status::NotFound("no backup in " + backup_dir);
    id = latest.backup_id;
  }
  // The scratch directory is emptied afterwards: only one that is new,
  // empty or an interrupted restore's is taken.
  std::error_code ec;
  const bool scratch_existed = fs::exists(scratch_dir, ec);
  if (scratch_existed && !(fs::is_directory(scratch_dir, ec) && fs::is_empty(scratch_dir, ec))) {
    const fs::path current = fs::path(scratch_dir) / "CURRENT";
    if (ReadSmallFile(current) != kRestoreIncomplete) {
      return Status::InvalidArgument("scratch directory " + scratch_dir +
                                     " is not empty: give a new or empty one");
    }
  }
  rocksdb::IOStatus io = (*engine)->VerifyBackup(id, /*verify_with_checksum=*/true);
  if (!io.ok()) return FromRocks(io, "backup " + std::to_string(id) + " in " + backup_dir);
  engine->reset();
  BackupVerifyReport report;
  Result<BackupInfo> restored =
      RestoreInto(backup_dir, id, scratch_dir, [&report](Ledger& ledger, BackupInfo*) {
        Result<VerifyReport> v = ledger.Verify();
        if (!v.ok()) return v.status();
        report.verify = std::move(*v);
        return Status::Ok();
      });
  if (scratch_existed) {
    for (const auto& entry : fs::directory_iterator(scratch_dir, ec))
      fs::remove_all(entry.path(), ec);
  } else {
    fs::remove_all(scratch_dir, ec);
  }
  if (!restored.ok()) return restored.status();
  report.backup = *restored;
  return report;
}

}  // namespace loanledger::storage
