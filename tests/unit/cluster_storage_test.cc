// Stream storage of cluster mode (docs/cluster.md, "Stream storage"): the
// used fraction of whichever storage limit is set, behind
// loanledger_cluster_stream_storage_used_ratio and its alerts.
#include <gtest/gtest.h>

#include "cluster/cluster.h"

namespace loanledger::cluster {
namespace {

StreamStorage Read(uint64_t bytes, uint64_t messages, uint64_t account) {
  StreamStorage s;
  s.known = true;
  s.stream_bytes = bytes;
  s.stream_messages = messages;
  s.account_storage_bytes = account;
  return s;
}

TEST(ClusterStorage, NoLimitSetIsMinusOne) {
  EXPECT_EQ(StorageUsedRatio(Read(1 << 20, 100, 3 << 20)), -1);
  StreamStorage unread;  // nothing read yet: even a limit says nothing
  unread.stream_max_bytes = 10;
  EXPECT_EQ(StorageUsedRatio(unread), -1);
}

TEST(ClusterStorage, EachLimitAlone) {
  StreamStorage s = Read(800, 10, 5000);
  s.stream_max_bytes = 1000;
  EXPECT_DOUBLE_EQ(StorageUsedRatio(s), 0.8);
  s = Read(800, 10, 5000);
  s.stream_max_messages = 40;
  EXPECT_DOUBLE_EQ(StorageUsedRatio(s), 0.25);
  s = Read(800, 10, 5000);
  s.account_storage_limit_bytes = 10000;
  EXPECT_DOUBLE_EQ(StorageUsedRatio(s), 0.5);
}

TEST(ClusterStorage, TheFullestLimitCounts) {
  StreamStorage s = Read(800, 10, 9600);
  s.stream_max_bytes = 1000;              // 0.8
  s.stream_max_messages = 100;            // 0.1
  s.account_storage_limit_bytes = 10000;  // 0.96: the account is nearly full
  EXPECT_DOUBLE_EQ(StorageUsedRatio(s), 0.96);
  s.account_storage_limit_bytes = -1;
  EXPECT_DOUBLE_EQ(StorageUsedRatio(s), 0.8);
  // Over a limit (JetStream refuses, or discards old records): above 1.
  s.stream_bytes = 1500;
  EXPECT_DOUBLE_EQ(StorageUsedRatio(s), 1.5);
}

TEST(ClusterStorage, ZeroLimitMeansNone) {
  StreamStorage s = Read(800, 10, 5000);
  s.stream_max_bytes = 0;
  s.account_storage_limit_bytes = 0;
  EXPECT_EQ(StorageUsedRatio(s), -1);
}

}  // namespace
}  // namespace loanledger::cluster
