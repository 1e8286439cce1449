// Cluster mode's storage side (ledger.h "Cluster mode"): a leader's
// ApplyGroupPublished hands its records to a log (a vector here) before it
// writes them; followers ApplyPublished the log and reach the same state,
// digest included; a failed publish leaves nothing; the log position
// survives a reopen; a checkpoint opens as an equal replica; PublishedRecords
// gives back the log's bytes (to put a lost tail back).
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "storage/ledger.h"
#include "tests/unit/ledger_test_support.h"

namespace loanledger::storage::test {
namespace {

struct Log {
  std::vector<std::string> records;  // position = index + 1
  bool fail = false;

  Ledger::PublishRecords Publisher() {
    return [this](std::span<const std::string> batch) -> Result<uint64_t> {
      if (fail) return Status::Unavailable("log unreachable");
      for (const std::string& r : batch) records.push_back(r);
      return static_cast<uint64_t>(records.size());
    };
  }
  // Hands records [from, to) (0-based) to a follower in one call.
  Status Feed(Ledger& follower, size_t from, size_t to) const {
    std::vector<std::string_view> views(records.begin() + static_cast<ptrdiff_t>(from),
                                        records.begin() + static_cast<ptrdiff_t>(to));
    return follower.ApplyPublished(views, from + 1);
  }
};

std::unique_ptr<Ledger> OpenAt(const std::string& path) {
  LedgerOptions o;
  o.path = path;
  o.sync = false;
  o.clock_ms = [] { return int64_t{1'700'000'000'000}; };
  auto l = Ledger::Open(o);
  EXPECT_TRUE(l.ok()) << l.status().ToString();
  return l.ok() ? std::move(*l) : nullptr;
}

Result<std::vector<ApplyResult>> ApplyPublished(Ledger& l, Log& log, std::vector<Batch> batches) {
  std::vector<const Batch*> ptrs;
  for (const Batch& b : batches) ptrs.push_back(&b);
  return l.ApplyGroupPublished(ptrs, log.Publisher());
}

void ExpectSameFigures(Ledger& a, Ledger& b) {
  for (const char* date : {"2023-06-30", "2024-03-31", "2024-09-30"}) {
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
  const Ledger::Digest da = a.StateDigest();
  const Ledger::Digest db = b.StateDigest();
  EXPECT_EQ(da.hex, db.hex);
  EXPECT_EQ(da.log_position, db.log_position);
  EXPECT_EQ(da.batches, db.batches);
  EXPECT_EQ(da.loans, db.loans);
}

class StorageReplicationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = MakeTempDir();
    leader_ = OpenAt(root_ + "/leader");
    follower_ = OpenAt(root_ + "/follower");
    ASSERT_TRUE(leader_ && follower_);
  }
  void TearDown() override {
    leader_.reset();
    follower_.reset();
    std::filesystem::remove_all(root_);
  }
  // Two groups: loans of two institutions and provinces, a repayment, a
  // reclassification, a rejected batch and an all-duplicate batch between.
  void LeaderAppliesHistory() {
    auto r = ApplyPublished(
        *leader_, log_,
        {MakeBatch({Disburse("L1", 1, "2023-03-01", 500'000), Disburse("L2", 1, "2023-04-01", 7)}),
         MakeBatch({Repay("L9", 2, "2023-05-01", 1)}),           // a gap: rejected, not published
         MakeBatch({Disburse("L1", 1, "2023-03-01", 500'000)}),  // a duplicate: not published
         MakeBatch({Disburse("K1", 1, "2023-08-01", 90'000, Green(InRegion("310115")), "B0002")})});
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE((*r)[0].applied);
    EXPECT_FALSE((*r)[1].applied);
    EXPECT_TRUE((*r)[2].applied);
    EXPECT_EQ((*r)[2].events_duplicate, 1u);
    r = ApplyPublished(*leader_, log_,
                       {MakeBatch({Repay("L1", 2, "2024-02-01", 100'000)}),
                        MakeBatch({Reclassify("L2", 2, "2024-03-15", Srdi())})});
    ASSERT_TRUE(r.ok());
  }

  std::string root_;
  std::unique_ptr<Ledger> leader_, follower_;
  Log log_;
};

TEST_F(StorageReplicationTest, FollowerReachesTheLeadersStateAndDigest) {
  LeaderAppliesHistory();
  ASSERT_EQ(log_.records.size(), 4u);  // the rejected and the all-duplicate batch are not in it
  EXPECT_EQ(leader_->LogPosition(), 4u);
  EXPECT_NE(leader_->StateDigest().hex, follower_->StateDigest().hex);
  ASSERT_TRUE(log_.Feed(*follower_, 0, 1).ok());
  ASSERT_TRUE(log_.Feed(*follower_, 1, 4).ok());
  EXPECT_EQ(follower_->LogPosition(), 4u);
  ExpectSameFigures(*leader_, *follower_);
  auto la = leader_->QueryLoan("B0001", "L2");
  auto lb = follower_->QueryLoan("B0001", "L2");
  ASSERT_TRUE(la.ok() && lb.ok());
  ExpectSameLoan(*la, *lb);
}

TEST_F(StorageReplicationTest, AFailedPublishLeavesNothingApplied) {
  LeaderAppliesHistory();
  const Ledger::Digest before = leader_->StateDigest();
  log_.fail = true;
  auto r = ApplyPublished(*leader_, log_, {MakeBatch({Disburse("L7", 1, "2024-05-01", 3)})});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(leader_->StateDigest().hex, before.hex);
  EXPECT_EQ(leader_->LogPosition(), 4u);
  EXPECT_EQ(leader_->QueryLoan("B0001", "L7").status().code(), Status::Code::kNotFound);
  // The same batch applies once the log is back.
  log_.fail = false;
  r = ApplyPublished(*leader_, log_, {MakeBatch({Disburse("L7", 1, "2024-05-01", 3)})});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)[0].applied);
  EXPECT_EQ(leader_->LogPosition(), 5u);
}

TEST_F(StorageReplicationTest, PositionSurvivesReopenAppliedRecordsAreSkippedGapsRefused) {
  LeaderAppliesHistory();
  ASSERT_TRUE(log_.Feed(*follower_, 0, 2).ok());
  follower_.reset();
  follower_ = OpenAt(root_ + "/follower");
  ASSERT_TRUE(follower_);
  EXPECT_EQ(follower_->LogPosition(), 2u);
  // Positions 1-2 again: skipped, nothing changes.
  const std::string digest = follower_->StateDigest().hex;
  EXPECT_TRUE(log_.Feed(*follower_, 0, 2).ok());
  EXPECT_EQ(follower_->StateDigest().hex, digest);
  // Position 4 without 3: a gap, refused.
  EXPECT_EQ(log_.Feed(*follower_, 3, 4).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(follower_->StateDigest().hex, digest);
  // 2..4 overlapping what is applied: 2 skipped, 3 and 4 applied.
  ASSERT_TRUE(log_.Feed(*follower_, 1, 4).ok());
  EXPECT_EQ(follower_->LogPosition(), 4u);
  ExpectSameFigures(*leader_, *follower_);
}

TEST_F(StorageReplicationTest, ARecordThatDoesNotApplyIsCorruptionAndLeavesNothing) {
  LeaderAppliesHistory();
  // Records 2 and 3 given as positions 1 and 2: B0002's loan is new, fine;
  // then the repayment of L1 finds no loan L1: a gap on this store.
  std::vector<std::string_view> views{log_.records[1], log_.records[2]};
  Status s = follower_->ApplyPublished(views, 1);
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  EXPECT_EQ(follower_->LogPosition(), 0u);
  EXPECT_EQ(follower_->QueryLoan("B0002", "K1").status().code(), Status::Code::kNotFound);
  views = {"not a journal record"};
  EXPECT_EQ(follower_->ApplyPublished(views, 1).code(), Status::Code::kCorruption);
}

TEST_F(StorageReplicationTest, ACheckpointOpensAsAnEqualReplica) {
  LeaderAppliesHistory();
  const std::string copy = root_ + "/checkpoint";
  Result<Ledger::CheckpointInfo> info = leader_->Checkpoint(copy);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->log_position, 4u);
  EXPECT_EQ(info->batches, 4u);
  // The leader goes on; the copy catches up from the log.
  auto r = ApplyPublished(*leader_, log_, {MakeBatch({Disburse("L8", 1, "2024-06-01", 11)})});
  ASSERT_TRUE(r.ok());
  std::unique_ptr<Ledger> replica = OpenAt(copy);
  ASSERT_TRUE(replica);
  EXPECT_EQ(replica->LogPosition(), 4u);
  ASSERT_TRUE(log_.Feed(*replica, 4, 5).ok());
  ExpectSameFigures(*leader_, *replica);
  EXPECT_EQ(leader_->Checkpoint(copy).status().code(), Status::Code::kInvalidArgument)
      << "an existing directory is refused";
}

TEST_F(StorageReplicationTest, PublishedRecordsAreTheLogsBytesOnLeaderFollowerAndCheckpoint) {
  LeaderAppliesHistory();
  ASSERT_TRUE(log_.Feed(*follower_, 0, 4).ok());
  const std::string copy = root_ + "/checkpoint";
  ASSERT_TRUE(follower_->Checkpoint(copy).ok());
  std::unique_ptr<Ledger> replica = OpenAt(copy);
  ASSERT_TRUE(replica);
  for (Ledger* l : {leader_.get(), follower_.get(), replica.get()}) {
    auto all = l->PublishedRecords(1, 4, size_t{1} << 30);
    ASSERT_TRUE(all.ok()) << all.status().ToString();
    EXPECT_EQ(*all, log_.records);
    auto tail = l->PublishedRecords(3, 4, size_t{1} << 30);
    ASSERT_TRUE(tail.ok());
    EXPECT_EQ(*tail, std::vector<std::string>(log_.records.begin() + 2, log_.records.end()));
    // max_bytes: stops after the record reaching it, one at least.
    auto one = l->PublishedRecords(2, 4, 1);
    ASSERT_TRUE(one.ok());
    EXPECT_EQ(*one, std::vector<std::string>{log_.records[1]});
    auto two = l->PublishedRecords(1, 4, log_.records[0].size() + 1);
    ASSERT_TRUE(two.ok());
    EXPECT_EQ(two->size(), 2u);
    for (auto [a, b] : {std::pair{0, 1}, {3, 2}, {4, 5}, {5, 5}}) {
      EXPECT_EQ(l->PublishedRecords(a, b, 100).status().code(), Status::Code::kInvalidArgument)
          << a << ".." << b;
    }
  }
}

TEST_F(StorageReplicationTest, AStoreWithBatchesBeforeTheLogMapsPositionsPastThem) {
  // Two batches applied without a log, then the log's records: positions
  // 1..4 are batches 3..6.
  ASSERT_TRUE(
      follower_->Apply(MakeBatch({Disburse("Z1", 1, "2023-01-01", 5, Attrs(), "B0003")})).ok());
  ASSERT_TRUE(
      follower_->Apply(MakeBatch({Disburse("Z2", 1, "2023-01-01", 6, Attrs(), "B0003")})).ok());
  LeaderAppliesHistory();
  ASSERT_TRUE(log_.Feed(*follower_, 0, 4).ok());
  EXPECT_EQ(follower_->StateDigest().batches, 6u);
  auto all = follower_->PublishedRecords(1, 4, size_t{1} << 30);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(*all, log_.records);
}

TEST_F(StorageReplicationTest, ALostLogTailPutBackFromAStoreBringsAFollowerToItsState) {
  LeaderAppliesHistory();
  ASSERT_TRUE(log_.Feed(*follower_, 0, 2).ok());
  // The log lost positions 3 and 4; the leader's store still holds them.
  Log repaired;
  repaired.records.assign(log_.records.begin(), log_.records.begin() + 2);
  auto tail = leader_->PublishedRecords(3, leader_->LogPosition(), size_t{1} << 30);
  ASSERT_TRUE(tail.ok());
  for (std::string& r : *tail) repaired.records.push_back(std::move(r));
  ASSERT_TRUE(repaired.Feed(*follower_, 0, 4).ok());
  ExpectSameFigures(*leader_, *follower_);
}

}  // namespace
}  // namespace loanledger::storage::test
