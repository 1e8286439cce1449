// Storage faults (docs/data.md durability; issue "Reliability and security",
// item 5): a RocksDB write error or a full disk fails the batch with a clear
// error (the client gets an Error reply, batches_total{result="failed"}
// counts it), nothing unacknowledged is applied, the server stays up for
// reads, and it recovers: by itself when space returns (RocksDB's
// SstFileManager polls for free space and resumes), or, after an I/O error
// that RocksDB treats as fatal, at the next start. A batch that failed is
// applied exactly once when it is resent later (the ledger unwinds its
// in-memory state on a failed write).
//
// The full disk is a small tmpfs mounted on the data directory (we run as
// root in CI and in the dev container); where mounting is not allowed, a
// loop device with ext4; where neither works the test is skipped with the
// reason. The write error is RLIMIT_FSIZE set on the running server
// (prlimit(2)): writes past the limit fail with EFBIG, which needs no
// privilege.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "schema/category.h"
#include "schema/date.h"
#include "tests/integration/server_harness.h"

namespace loanledger::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

long Ms(Clock::duration d) {
  return static_cast<long>(std::chrono::duration_cast<milliseconds>(d).count());
}

// Size of the small file system. RocksDB resumes after a full disk only when
// at least one memtable's worth (write_buffer_size, 64 MiB) is free again,
// so the disk must be larger than that.
constexpr uint64_t kDiskBytes = uint64_t{96} << 20;
// Free space left beside the ballast when the server starts: a few dozen
// batches fit, then the WAL hits the end of the disk.
constexpr uint64_t kHeadroomBytes = uint64_t{2} << 20;
// RocksDB's SstFileManager checks for free space every 5 s; allow a few rounds.
constexpr auto kRecoveryMax = 30s;

// A small file system mounted on `dir`: tmpfs, else a loop device with ext4.
class SmallDisk {
 public:
  SmallDisk(const std::string& dir, const std::string& image, uint64_t size_bytes) : dir_(dir) {
    std::filesystem::create_directories(dir);
    const std::string options = "size=" + std::to_string(size_bytes);
    if (mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) == 0) {
      kind_ = "tmpfs";
      return;
    }
    why_not_ = std::string("tmpfs: ") + std::strerror(errno);
    const std::string make = "truncate -s " + std::to_string(size_bytes) + " " + image +
                             " && mkfs.ext4 -q -F " + image + " >/dev/null 2>&1 && mount -o loop " +
                             image + " " + dir + " 2>/dev/null";
    if (std::system(make.c_str()) == 0) {
      kind_ = "loop device (ext4)";
      return;
    }
    why_not_ += "; loop device: mkfs.ext4 or mount -o loop failed";
  }
  ~SmallDisk() {
    if (!kind_.empty()) umount2(dir_.c_str(), MNT_DETACH);
  }
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;

  bool mounted() const { return !kind_.empty(); }
  const std::string& kind() const { return kind_; }
  const std::string& why_not() const { return why_not_; }

 private:
  std::string dir_;
  std::string kind_;     // "" = not mounted
  std::string why_not_;  // when not mounted
};

// Writes `path` until the file system has at most `leave_bytes` free.
// Returns the bytes written.
uint64_t FillDisk(const std::string& path, uint64_t leave_bytes) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return 0;
  std::vector<char> chunk(1 << 20, 'b');
  uint64_t written = 0;
  while (true) {
    const uint64_t free_bytes = std::filesystem::space(path).available;
    if (free_bytes <= leave_bytes) break;
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(chunk.size(), free_bytes - leave_bytes));
    const ssize_t k = write(fd, chunk.data(), n);
    if (k <= 0) break;
    written += static_cast<uint64_t>(k);
  }
  fsync(fd);
  close(fd);
  return written;
}

// One labelled sample, e.g. loanledger_batches_total{result="failed"}; -1 if absent.
double Sample(uint16_t metrics_port, const std::string& series) {
  const std::string text = FetchMetrics(metrics_port);
  const size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}
const std::string kFailed = R"(loanledger_batches_total{result="failed"})";
const std::string kApplied = R"(loanledger_batches_total{result="applied"})";

// Events of one batch: `events` new loans L<batch>_<i>, each disbursed 100 fen.
std::vector<LoanEvent> NewLoans(int batch, int events) {
  std::vector<LoanEvent> out;
  for (int i = 0; i < events; ++i) {
    out.push_back(MakeEvent("B0001", "L" + std::to_string(batch) + "_" + std::to_string(i), 1,
                            "2024-03-01", EventKind::kDisburse, 100));
  }
  return out;
}

int64_t TotalBalance(client::Client& c) {
  ReportQuery q;
  q.date = *ParseDate("2024-12-31");
  q.categories = {Category::kTotal};
  Result<Report> r = c.QueryReport(q);
  EXPECT_TRUE(r.ok()) << "the server stopped answering reads: " << r.status().ToString();
  return r.ok() ? r->rows.at(0).balance_fen : -1;
}

class ServerStorageFault : public ServerTest {
 protected:
  void StartOn(const std::string& data_dir) {
    if (tokens_.empty()) tokens_ = WriteStandardTokens(dir_);
    ServerProcess::Options options;
    options.data_dir = data_dir;
    options.tokens_file = tokens_;
    options.log_file = dir_.Sub("server.log");
    std::string error;
    server_ = ServerProcess::Start(options, &error);
    ASSERT_NE(server_, nullptr) << error;
  }
  void TearDown() override {
    ServerTest::TearDown();  // stops the server before the disk is unmounted
    disk_.reset();
  }
  bool Alive() const { return server_ && server_->running() && kill(server_->pid(), 0) == 0; }

  // Submits `batch` until it is answered with an error (true) or applied
  // (false, after tries_max batches). Acknowledged ones add to acked_fen_.
  bool SubmitUntilFailure(client::Client& bank, int tries_max, Status* failure) {
    for (int i = 0; i < tries_max; ++i) {
      const int batch = next_batch_++;
      Result<client::BatchOutcome> r = bank.Submit(NewLoans(batch, kEventsPerBatch));
      if (!r.ok()) {
        *failure = r.status();
        failed_batch_ = batch;
        return true;
      }
      EXPECT_TRUE(r->applied);
      acked_fen_ += 100 * kEventsPerBatch;
      ++acked_batches_;
    }
    return false;
  }

  static constexpr int kEventsPerBatch = 200;
  std::unique_ptr<SmallDisk> disk_;
  int next_batch_ = 0;
  int failed_batch_ = -1;
  int acked_batches_ = 0;
  int64_t acked_fen_ = 0;
};

TEST_F(ServerStorageFault, FullDiskFailsTheBatchKeepsReadsAndRecoversWhenSpaceReturns) {
  const std::string mount_point = dir_.Sub("disk");
  disk_ = std::make_unique<SmallDisk>(mount_point, dir_.Sub("disk.img"), kDiskBytes);
  if (!disk_->mounted()) GTEST_SKIP() << "cannot mount a small file system: " << disk_->why_not();
  const std::string ballast = mount_point + "/ballast";
  const uint64_t ballast_bytes = FillDisk(ballast, kHeadroomBytes);
  std::printf("  %s of %llu MiB, ballast %.1f MiB, %.1f MiB left\n", disk_->kind().c_str(),
              static_cast<unsigned long long>(kDiskBytes >> 20), ballast_bytes / 1048576.0,
              std::filesystem::space(mount_point).available / 1048576.0);
  StartOn(mount_point + "/data");
  ASSERT_FALSE(HasFatalFailure());
  auto bank = Connect(kTokenB1);
  ASSERT_NE(bank, nullptr);

  // 1. Batches are acknowledged until the disk is full; then one fails with
  // a clear error, and nothing of it is applied.
  Status failure;
  ASSERT_TRUE(SubmitUntilFailure(*bank, 2000, &failure)) << "the disk never filled up";
  std::printf("  %d batches acknowledged, then: %s\n", acked_batches_, failure.ToString().c_str());
  EXPECT_EQ(failure.code(), Status::Code::kIoError);
  EXPECT_NE(failure.message().find("No space left on device"), std::string::npos);
  ASSERT_TRUE(Alive()) << server_->Log();
  EXPECT_EQ(TotalBalance(*bank), acked_fen_);
  const std::string failed_loan = "L" + std::to_string(failed_batch_) + "_0";
  EXPECT_EQ(bank->QueryLoan("B0001", failed_loan).status().code(), Status::Code::kNotFound);

  // 2. While the disk is full: the same batch fails again; a batch of
  // duplicates only needs no write and is answered; reads go on.
  int failures = 1;
  Result<client::BatchOutcome> again = bank->Submit(NewLoans(failed_batch_, kEventsPerBatch));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Status::Code::kIoError);
  ++failures;
  Result<client::BatchOutcome> dup = bank->Submit(NewLoans(0, kEventsPerBatch));
  ASSERT_TRUE(dup.ok()) << dup.status().ToString();
  EXPECT_TRUE(dup->applied);
  EXPECT_EQ(dup->events_duplicate, static_cast<uint32_t>(kEventsPerBatch));
  EXPECT_EQ(TotalBalance(*bank), acked_fen_);
  EXPECT_EQ(Sample(server_->metrics_port(), kFailed), failures);

  // 3. Space returns: the resent batch is applied, exactly once, within a
  // few of RocksDB's 5 s free-space checks, with no restart.
  ASSERT_EQ(unlink(ballast.c_str()), 0);
  const auto freed = Clock::now();
  std::optional<client::BatchOutcome> applied;
  while (Clock::now() - freed < kRecoveryMax) {
    Result<client::BatchOutcome> r = bank->Submit(NewLoans(failed_batch_, kEventsPerBatch));
    if (r.ok()) {
      applied = *r;
      break;
    }
    EXPECT_EQ(r.status().code(), Status::Code::kIoError) << r.status().ToString();
    ++failures;
    std::this_thread::sleep_for(250ms);
  }
  ASSERT_TRUE(applied.has_value()) << "no recovery within " << kRecoveryMax.count() << " s\n"
                                   << server_->Log();
  const long recovery_ms = Ms(Clock::now() - freed);
  std::printf("  space freed: writes resumed after %ld ms (%d failed attempts in all)\n",
              recovery_ms, failures);
  EXPECT_TRUE(applied->applied);
  EXPECT_EQ(applied->events_applied, static_cast<uint32_t>(kEventsPerBatch));
  EXPECT_EQ(applied->events_duplicate, 0u);
  acked_fen_ += 100 * kEventsPerBatch;
  ++acked_batches_;
  Result<client::BatchOutcome> resent = bank->Submit(NewLoans(failed_batch_, kEventsPerBatch));
  ASSERT_TRUE(resent.ok());
  EXPECT_EQ(resent->events_duplicate, static_cast<uint32_t>(kEventsPerBatch));
  ASSERT_FALSE(SubmitUntilFailure(*bank, 5, &failure)) << failure.ToString();
  EXPECT_EQ(TotalBalance(*bank), acked_fen_);
  EXPECT_EQ(Sample(server_->metrics_port(), kFailed), failures);
  EXPECT_EQ(Sample(server_->metrics_port(), kApplied), acked_batches_ + 2);  // + 2 duplicate-only

  // 4. Every acknowledged batch is durable: kill -9, restart, same figures,
  // and a full recomputation finds no difference.
  bank.reset();
  EXPECT_EQ(server_->Stop(SIGKILL), 128 + SIGKILL);
  StartOn(mount_point + "/data");
  ASSERT_FALSE(HasFatalFailure());
  bank = Connect(kTokenB1);
  ASSERT_NE(bank, nullptr);
  EXPECT_EQ(TotalBalance(*bank), acked_fen_);
  auto admin = Connect(kTokenAdmin);
  ASSERT_NE(admin, nullptr);
  Result<client::VerifyOutcome> verify = admin->Verify();
  ASSERT_TRUE(verify.ok()) << verify.status().ToString();
  EXPECT_TRUE(verify->differences.empty()) << verify->differences.front();
  EXPECT_EQ(verify->batches_replayed, static_cast<uint64_t>(acked_batches_));
}

TEST_F(ServerStorageFault, WriteErrorFailsTheBatchKeepsReadsAndARestartRecovers) {
  StartServer();
  ASSERT_FALSE(HasFatalFailure());
  auto bank = Connect(kTokenB1);
  ASSERT_NE(bank, nullptr);
  Status failure;
  ASSERT_FALSE(SubmitUntilFailure(*bank, 3, &failure)) << failure.ToString();

  // Writes past 1 MiB beyond the current WAL fail with EFBIG (the server
  // ignores SIGXFSZ, which would otherwise kill it). The server's own log
  // file stays far below the limit.
  uint64_t largest = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.Sub("data"))) {
    if (entry.is_regular_file()) largest = std::max<uint64_t>(largest, entry.file_size());
  }
  // Only the soft limit: raising it back later needs no privilege.
  rlimit original{};
  ASSERT_EQ(prlimit(server_->pid(), RLIMIT_FSIZE, nullptr, &original), 0) << std::strerror(errno);
  const rlimit limit{largest + (1u << 20), original.rlim_max};
  ASSERT_EQ(prlimit(server_->pid(), RLIMIT_FSIZE, &limit, nullptr), 0) << std::strerror(errno);
  ASSERT_TRUE(SubmitUntilFailure(*bank, 500, &failure)) << "the file-size limit never hit";
  std::printf("  RLIMIT_FSIZE %llu bytes: %d batches acknowledged, then: %s\n",
              static_cast<unsigned long long>(limit.rlim_cur), acked_batches_,
              failure.ToString().c_str());
  EXPECT_EQ(failure.code(), Status::Code::kIoError);
  EXPECT_NE(failure.message().find("File too large"), std::string::npos);
  std::this_thread::sleep_for(200ms);
  ASSERT_TRUE(Alive()) << "the server died (SIGXFSZ?)\n" << server_->Log();
  EXPECT_EQ(TotalBalance(*bank), acked_fen_);
  const std::string failed_loan = "L" + std::to_string(failed_batch_) + "_0";
  EXPECT_EQ(bank->QueryLoan("B0001", failed_loan).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(Sample(server_->metrics_port(), kFailed), 1);

  // The limit is lifted. RocksDB treats a plain I/O error on the WAL as
  // fatal: it stays read-only (DB::Resume refuses) until it is reopened, so
  // batches keep failing with the same clear error while reads go on.
  ASSERT_EQ(prlimit(server_->pid(), RLIMIT_FSIZE, &original, nullptr), 0) << std::strerror(errno);
  Result<client::BatchOutcome> still = bank->Submit(NewLoans(failed_batch_, kEventsPerBatch));
  if (still.ok()) {
    std::printf("  after the limit was lifted the batch was applied without a restart\n");
    EXPECT_EQ(still->events_applied, static_cast<uint32_t>(kEventsPerBatch));
    acked_fen_ += 100 * kEventsPerBatch;
    ++acked_batches_;
  } else {
    std::printf("  after the limit was lifted: %s\n", still.status().ToString().c_str());
    EXPECT_EQ(still.status().code(), Status::Code::kIoError);
    EXPECT_EQ(TotalBalance(*bank), acked_fen_);
  }

  // A clean stop still works; the restarted server applies the resent batch
  // exactly once and every acknowledged batch is there.
  bank.reset();
  StopServer();
  StartServer(extra_args_);
  ASSERT_FALSE(HasFatalFailure());
  bank = Connect(kTokenB1);
  ASSERT_NE(bank, nullptr);
  EXPECT_EQ(TotalBalance(*bank), acked_fen_);
  Result<client::BatchOutcome> resent = bank->Submit(NewLoans(failed_batch_, kEventsPerBatch));
  ASSERT_TRUE(resent.ok()) << resent.status().ToString();
  if (!still.ok()) {
    EXPECT_EQ(resent->events_applied, static_cast<uint32_t>(kEventsPerBatch));
    EXPECT_EQ(resent->events_duplicate, 0u);
    acked_fen_ += 100 * kEventsPerBatch;
    ++acked_batches_;
  } else {
    EXPECT_EQ(resent->events_duplicate, static_cast<uint32_t>(kEventsPerBatch));
  }
  EXPECT_EQ(TotalBalance(*bank), acked_fen_);
  auto admin = Connect(kTokenAdmin);
  ASSERT_NE(admin, nullptr);
  Result<client::VerifyOutcome> verify = admin->Verify();
  ASSERT_TRUE(verify.ok()) << verify.status().ToString();
  EXPECT_TRUE(verify->differences.empty()) << verify->differences.front();
  EXPECT_EQ(verify->batches_replayed, static_cast<uint64_t>(acked_batches_));
}

}  // namespace
}  // namespace loanledger::testing
