// --ready-file (server/ready_file.h, server/README.md "Ready file"): port 0
// on every listener, the addresses bound reported in the log and in a file
// written whole once every listener is up, removed after a clean stop; and a
// ready file that cannot be written stops the start-up.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "server/ready_file.h"
#include "tests/integration/server_harness.h"

namespace loanledger::testing {
namespace {

TEST(ReadyFile, FormatHostPortBracketsIpv6) {
  EXPECT_EQ(server::FormatHostPort("127.0.0.1", 7700), "127.0.0.1:7700");
  EXPECT_EQ(server::FormatHostPort("::1", 0), "[::1]:0");
  EXPECT_EQ(server::FormatHostPort("localhost", 65535), "localhost:65535");
}

TEST(ReadyFile, TextIsPidThenOneLinePerListenerInOrder) {
  server::BoundAddresses bound;
  bound.Add("metrics", "127.0.0.1:9464");
  bound.Add("listen", "[::1]:7700");
  bound.Add("http", "127.0.0.1:8080");
  EXPECT_EQ(bound.ReadyFileText(42),
            "pid=42\nmetrics=127.0.0.1:9464\nlisten=[::1]:7700\nhttp=127.0.0.1:8080\n");
  EXPECT_EQ(ParseReadyFile(bound.ReadyFileText(42)),
            (std::map<std::string, std::string>{{"pid", "42"},
                                                {"metrics", "127.0.0.1:9464"},
                                                {"listen", "[::1]:7700"},
                                                {"http", "127.0.0.1:8080"}}));
}

TEST(ReadyFile, WriteReplacesAWholeFileAndLeavesNoTemporary) {
  TempDir dir;
  const std::string path = dir.Sub("ready");
  std::ofstream(path) << "pid=1\nlisten=127.0.0.1:1\nstale=yes\n";
  server::BoundAddresses bound;
  bound.Add("listen", "127.0.0.1:40000");
  ASSERT_TRUE(bound.WriteReadyFile(path).ok());
  EXPECT_EQ(ReadFile(path), "pid=" + std::to_string(getpid()) + "\nlisten=127.0.0.1:40000\n");
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    ++files;
    EXPECT_EQ(e.path().filename(), "ready");
  }
  EXPECT_EQ(files, 1u);
  EXPECT_TRUE(server::RemoveReadyFile(path).ok());
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(server::RemoveReadyFile(path).ok());  // absent is fine
}

TEST(ReadyFile, WriteIntoAMissingDirectoryIsAnIoError) {
  TempDir dir;
  server::BoundAddresses bound;
  bound.Add("listen", "127.0.0.1:40000");
  const Status s = bound.WriteReadyFile(dir.Sub("no/such/dir/ready"));
  EXPECT_EQ(s.code(), Status::Code::kIoError) << s.ToString();
}

class ServerReadyFile : public ServerTest {};

TEST_F(ServerReadyFile, NamesThePidAndEveryAddressBoundAndGoesAwayAfterAStop) {
  StartServer();
  ASSERT_FALSE(HasFatalFailure());
  const std::map<std::string, std::string> ready = ParseReadyFile(ReadFile(server_->ready_file()));
  EXPECT_EQ(ready.at("pid"), std::to_string(server_->pid()));
  const std::string listen = ready.at("listen");
  const std::string metrics = ready.at("metrics");
  EXPECT_EQ(listen.rfind("127.0.0.1:", 0), 0u) << listen;
  EXPECT_EQ(metrics.rfind("127.0.0.1:", 0), 0u) << metrics;
  EXPECT_NE(server_->port(), 0);
  EXPECT_NE(server_->metrics_port(), 0);
  EXPECT_NE(server_->port(), server_->metrics_port());
  // The log says the same.
  const std::string log = server_->Log();
  EXPECT_NE(log.find("listening on " + listen + "\n"), std::string::npos) << log;
  EXPECT_NE(log.find("metrics on " + metrics + "\n"), std::string::npos) << log;
  // Both answer at once.
  EXPECT_NE(FetchMetrics(server_->metrics_port()).find("loanledger_build_info"), std::string::npos);
  auto bank = Connect(kTokenB1);
  ASSERT_NE(bank, nullptr);
  bank.reset();

  StopServer();
  EXPECT_FALSE(std::filesystem::exists(server_->ready_file())) << ReadFile(server_->ready_file());
}

TEST_F(ServerReadyFile, AReadyFileThatCannotBeWrittenStopsTheStart) {
  tokens_ = WriteStandardTokens(dir_);
  ServerProcess::Options options;
  options.data_dir = dir_.Sub("data");
  options.tokens_file = tokens_;
  options.ready_file = dir_.Sub("no-such-dir/ready");
  std::string error;
  EXPECT_EQ(ServerProcess::Start(options, &error), nullptr);
  EXPECT_NE(error.find("exited"), std::string::npos) << error;
  EXPECT_NE(error.find("--ready-file: "), std::string::npos) << error;
}

}  // namespace
}  // namespace loanledger::testing
