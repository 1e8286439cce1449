// The partition of an institution (docs/cluster.md, "Partitions"): FNV-1a-64
// of its id mod P, and the explicit partition map file.
#include <gtest/gtest.h>

#include <string>

#include "cluster/cluster.h"

namespace loanledger::cluster {
namespace {

// FNV-1a-64 reference values: the empty string is the offset basis and "a"
// is the published test vector 0xaf63dc4c8601ec8c.
TEST(ClusterPartition, FnvOneA64ModP) {
  EXPECT_EQ(PartitionOf("", 1000), 0xcbf29ce484222325ull % 1000);
  EXPECT_EQ(PartitionOf("a", 1000), 0xaf63dc4c8601ec8cull % 1000);
  EXPECT_EQ(PartitionOf("a", 1), 0u);
  // Computed independently (Python, tests/cluster/cluster_partitions_test.py's fnv1a64).
  EXPECT_EQ(PartitionOf("B0001", 7), 0u);
  EXPECT_EQ(PartitionOf("B0002", 7), 4u);
  EXPECT_EQ(PartitionOf("B0003", 7), 1u);
}

TEST(ClusterPartition, MapFileIsCanonicalized) {
  Result<std::string> map =
      ParsePartitionMap("# big banks\n\nB0002 1\r\n  B0001\t0  \nB0010 2\n", 3);
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  EXPECT_EQ(*map, "B0001 0\nB0002 1\nB0010 2\n");
  Result<std::string> empty = ParsePartitionMap("# nothing placed\n", 3);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
}

TEST(ClusterPartition, BadMapLinesAreRefusedByLine) {
  struct Case {
    const char* text;
    const char* says;
  };
  for (const Case& c : {Case{"B0001\n", "line 1: expected 'INSTITUTION_ID PARTITION'"},
                        Case{"B0001 0\nb0002 1\n", "line 2: bad institution_id \"b0002\""},
                        Case{"B0001 3\n", "line 1: partition \"3\" is not a number below 3"},
                        Case{"B0001 -1\n", "is not a number below 3"},
                        Case{"B0001 1x\n", "is not a number below 3"},
                        Case{"B0001 0\n\nB0001 1\n", "line 3: B0001 is placed twice"}}) {
    Result<std::string> map = ParsePartitionMap(c.text, 3);
    ASSERT_FALSE(map.ok()) << c.text;
    EXPECT_EQ(map.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(map.status().message().find(c.says), std::string::npos)
        << map.status().message() << " lacks " << c.says;
  }
}

}  // namespace
}  // namespace loanledger::cluster
