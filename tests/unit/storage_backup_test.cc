// Online backups (ledger.h: Ledger::Backup, RestoreBackup, VerifyBackup):
// a restored backup has the figures, loans and digest of the ledger when it
// was taken; a second backup copies only what changed; the backup directory
// and the restore target are checked; an interrupted restore neither opens
// nor blocks a second try; a damaged backup fails its verification; a
// backup taken while a writer applies batches restores to a consistent
// ledger holding every batch applied before it began.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "storage/ledger.h"
#include "tests/unit/ledger_test_support.h"

namespace loanledger::storage::test {
namespace {

namespace fs = std::filesystem;

std::unique_ptr<Ledger> OpenAt(const std::string& path) {
  LedgerOptions o;
  o.path = path;
  o.sync = false;
  o.clock_ms = [] { return int64_t{1'700'000'000'000}; };
  auto l = Ledger::Open(o);
  EXPECT_TRUE(l.ok()) << l.status().ToString();
  return l.ok() ? std::move(*l) : nullptr;
}

void ExpectSameFigures(Ledger& a, Ledger& b) {
  for (const char* date : {"2023-06-30", "2024-03-31", "2024-12-31"}) {
    for (GroupBy by : {GroupBy::kNone, GroupBy::kProvince, GroupBy::kInstitution}) {
      ReportQuery q;
      q.date = D(date);
      q.by = by;
      auto ra = a.QueryReport(q);
      auto rb = b.QueryReport(q);
      ASSERT_TRUE(ra.ok() && rb.ok());
      ExpectSameReport(*ra, *rb);
    }
  }
  EXPECT_EQ(a.StateDigest().hex, b.StateDigest().hex);
  EXPECT_EQ(a.StateDigest().batches, b.StateDigest().batches);
}

class StorageBackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = MakeTempDir();
    data_ = root_ + "/data";
    backups_ = root_ + "/backups";
    ledger_ = OpenAt(data_);
    ASSERT_TRUE(ledger_);
  }
  void TearDown() override {
    ledger_.reset();
    fs::remove_all(root_);
  }
  // `n` loans of B0001 (first seq 1), one batch each of `per` loans.
  void Apply(int first, int n, int per = 10) {
    for (int i = first; i < first + n; i += per) {
      std::vector<LoanEvent> events;
      for (int j = i; j < i + per && j < first + n; ++j) {
        events.push_back(Disburse("L" + std::to_string(j), 1, "2024-03-01", 1000 + j,
                                  j % 2 ? Green(InRegion("310115")) : Attrs()));
      }
      auto r = ledger_->Apply(MakeBatch(std::move(events)));
      ASSERT_TRUE(r.ok() && r->applied);
    }
  }
  // Closing writes a loan snapshot: the next backup carries one.
  void Reopen() {
    ledger_.reset();
    ledger_ = OpenAt(data_);
    ASSERT_TRUE(ledger_);
  }
  BackupInfo BackUp(uint32_t keep = 0) {
    Result<BackupInfo> b = ledger_->Backup(BackupOptions{backups_, keep});
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? *b : BackupInfo{};
  }

  std::string root_, data_, backups_;
  std::unique_ptr<Ledger> ledger_;
};

TEST_F(StorageBackupTest, RestoredBackupsHaveTheFiguresOfTheirTimeAndTheSecondIsIncremental) {
  Apply(0, 200);
  Reopen();
  const BackupInfo first = BackUp();
  EXPECT_EQ(first.id, 1u);
  EXPECT_EQ(first.batches, 20u);
  EXPECT_NE(first.loan_snapshot, 0u);
  EXPECT_GT(first.size_bytes, 0u);
  EXPECT_EQ(first.backups_kept, 1u);
  const std::string digest_first = ledger_->StateDigest().hex;

  Apply(200, 30);
  const BackupInfo second = BackUp();
  EXPECT_EQ(second.id, 2u);
  EXPECT_EQ(second.batches, 23u);
  EXPECT_EQ(second.loan_snapshot, first.loan_snapshot);  // shared, not copied again
  EXPECT_LT(second.new_bytes, first.new_bytes);
  EXPECT_LT(second.new_bytes, second.size_bytes);
  EXPECT_LE(first.new_bytes, first.size_bytes);  // the snapshot counts in both
  EXPECT_EQ(second.backups_kept, 2u);

  // The newest: the ledger as it is now.
  Result<BackupInfo> r = RestoreBackup(backups_, 0, root_ + "/restored2");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->id, 2u);
  EXPECT_EQ(r->batches, 23u);
  std::unique_ptr<Ledger> restored = OpenAt(root_ + "/restored2");
  ASSERT_TRUE(restored);
  ExpectSameFigures(*ledger_, *restored);
  auto loan = restored->QueryLoan("B0001", "L229");
  ASSERT_TRUE(loan.ok());
  EXPECT_EQ(loan->balance_fen, 1229);

  // The first: as the ledger was then.
  r = RestoreBackup(backups_, 1, root_ + "/restored1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  restored = OpenAt(root_ + "/restored1");
  ASSERT_TRUE(restored);
  EXPECT_EQ(restored->StateDigest().hex, digest_first);
  EXPECT_EQ(restored->QueryLoan("B0001", "L229").status().code(), Status::Code::kNotFound);
  // A restored ledger takes batches like any other.
  auto applied = restored->Apply(MakeBatch({Disburse("L999", 1, "2024-04-01", 5)}));
  ASSERT_TRUE(applied.ok() && applied->applied);
  // It is a new store (its history may part from the backups after it):
  // its backups go to a directory of their own.
  Result<BackupInfo> again = restored->Backup({backups_, 0});
  EXPECT_EQ(again.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(again.status().message().find("a restored store is a new store"), std::string::npos)
      << again.status().message();
  EXPECT_TRUE(restored->Backup({root_ + "/backups-after-restore", 0}).ok());
}

TEST_F(StorageBackupTest, KeepDeletesOlderBackupsAndTheSnapshotsOnlyTheyNeeded) {
  Apply(0, 50);
  Reopen();
  BackUp();
  Apply(50, 50);
  Reopen();  // a new loan snapshot
  BackUp();
  Apply(100, 10);
  const BackupInfo third = BackUp(/*keep=*/1);
  EXPECT_EQ(third.backups_kept, 1u);
  size_t snapshots = 0;
  for (const auto& e : fs::directory_iterator(backups_ + "/loan-snapshots")) {
    EXPECT_EQ(e.path().extension(), ".loans");
    ++snapshots;
  }
  EXPECT_EQ(snapshots, 1u);
  EXPECT_EQ(RestoreBackup(backups_, 1, root_ + "/r1").status().code(), Status::Code::kNotFound);
  Result<BackupVerifyReport> v = VerifyBackup(backups_, 0, root_ + "/scratch");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->backup.id, 3u);
  EXPECT_TRUE(v->verify.differences.empty());
  EXPECT_EQ(v->verify.batches_replayed, 11u);
  EXPECT_FALSE(fs::exists(root_ + "/scratch"));
}

TEST_F(StorageBackupTest, UnusableBackupDirectoriesAreRefusedWithAReason) {
  Apply(0, 10);
  auto code = [&](const std::string& dir) { return ledger_->Backup({dir, 0}).status(); };
  Status s = code("relative/dir");
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("absolute"), std::string::npos) << s.message();
  s = code(data_ + "/backups");
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("outside the data directory"), std::string::npos) << s.message();
  fs::create_directories(root_ + "/busy");
  WriteFile(root_ + "/busy/notes.txt", "mine");
  s = code(root_ + "/busy");
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("not empty"), std::string::npos) << s.message();
  WriteFile(root_ + "/file", "x");
  EXPECT_EQ(code(root_ + "/file").code(), Status::Code::kInvalidArgument);
  // Another store's backup directory.
  std::unique_ptr<Ledger> other = OpenAt(root_ + "/other");
  ASSERT_TRUE(other);
  ASSERT_TRUE(other->Backup({root_ + "/other-backups", 0}).ok());
  s = code(root_ + "/other-backups");
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("another store"), std::string::npos) << s.message();
}

TEST_F(StorageBackupTest, RestoreRefusesANonEmptyDirectoryAndAnInterruptedOneNeverOpens) {
  Apply(0, 20);
  BackUp();
  fs::create_directories(root_ + "/full");
  WriteFile(root_ + "/full/keep.txt", "mine");
  Result<BackupInfo> r = RestoreBackup(backups_, 0, root_ + "/full");
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("not empty"), std::string::npos);
  EXPECT_EQ(ReadFile(root_ + "/full/keep.txt"), "mine");
  EXPECT_EQ(RestoreBackup(root_ + "/full", 0, root_ + "/x").status().code(),
            Status::Code::kNotFound);  // not a backup directory
  EXPECT_EQ(RestoreBackup(backups_, 7, root_ + "/x").status().code(), Status::Code::kNotFound);

  // An interrupted restore: the marker in CURRENT and a partial staging copy.
  ASSERT_TRUE(RestoreBackup(backups_, 0, root_ + "/partial").ok());
  const std::string current = ReadFile(root_ + "/partial/CURRENT");
  WriteFile(root_ + "/partial/CURRENT", "RESTORE-INCOMPLETE-RUN-THE-RESTORE-AGAIN\n");
  LedgerOptions o;
  o.path = root_ + "/partial";
  EXPECT_FALSE(Ledger::Open(o).ok());                  // refused, not opened as a new empty store
  r = RestoreBackup(backups_, 0, root_ + "/partial");  // run again: allowed
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::unique_ptr<Ledger> restored = OpenAt(root_ + "/partial");
  ASSERT_TRUE(restored);
  ExpectSameFigures(*ledger_, *restored);
  EXPECT_NE(current, "");
  // An empty existing directory (a mount point, systemd's StateDirectory=) is fine.
  fs::create_directories(root_ + "/empty");
  EXPECT_TRUE(RestoreBackup(backups_, 0, root_ + "/empty").ok());
}

TEST_F(StorageBackupTest, ADamagedBackupFailsVerification) {
  Apply(0, 100);
  Reopen();
  BackUp();
  Result<BackupVerifyReport> v = VerifyBackup(backups_, 1, root_ + "/scratch");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->verify.differences.empty());
  EXPECT_EQ(v->verify.batches_replayed, 10u);
  // Flip a byte in the middle of the largest table file.
  fs::path largest;
  for (const auto& e : fs::recursive_directory_iterator(backups_ + "/rocksdb/shared_checksum")) {
    if (e.is_regular_file() && (largest.empty() || e.file_size() > fs::file_size(largest)))
      largest = e.path();
  }
  ASSERT_FALSE(largest.empty());
  std::string bytes = ReadFile(largest.string());
  bytes[bytes.size() / 2] ^= 0x5a;
  fs::permissions(largest, fs::perms::owner_write, fs::perm_options::add);
  WriteFile(largest.string(), bytes);
  v = VerifyBackup(backups_, 1, root_ + "/scratch");
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), Status::Code::kCorruption) << v.status().ToString();
  // A scratch directory with someone's files is refused, and left alone.
  fs::create_directories(root_ + "/mine");
  WriteFile(root_ + "/mine/a", "a");
  EXPECT_EQ(VerifyBackup(backups_, 1, root_ + "/mine").status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(ReadFile(root_ + "/mine/a"), "a");
}

TEST_F(StorageBackupTest, ABackupBesideAWriterRestoresConsistentWithEveryEarlierBatch) {
  Apply(0, 500);
  Reopen();
  std::atomic<bool> stop{false};
  std::atomic<int> next{10'000};
  std::thread writer([&] {
    while (!stop.load()) {
      const int i = next.fetch_add(5);
      std::vector<LoanEvent> events;
      for (int j = i; j < i + 5; ++j)
        events.push_back(Disburse("W" + std::to_string(j), 1, "2024-05-01", 7));
      auto r = ledger_->Apply(MakeBatch(std::move(events)));
      ASSERT_TRUE(r.ok() && r->applied);
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const uint64_t before = ledger_->Stats().batches_applied;
  const BackupInfo b = BackUp();
  stop = true;
  writer.join();
  EXPECT_GE(b.batches, before);
  EXPECT_LE(b.batches, ledger_->Stats().batches_applied);
  Result<BackupVerifyReport> v = VerifyBackup(backups_, 0, root_ + "/scratch");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->verify.differences.empty());
  EXPECT_EQ(v->verify.batches_replayed, b.batches);
  EXPECT_EQ(v->backup.batches, b.batches);
}

}  // namespace
}  // namespace loanledger::storage::test
