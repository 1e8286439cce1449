// loanledgerd as a service (server/service.h, docs/operations.md, deploy/README.md):
// sd_notify READY=1 once the ready file exists and STOPPING=1 at SIGTERM, to a
// NOTIFY_SOCKET the test owns; SIGHUP reloads the tokens file without
// dropping connections (a bad file keeps the old tokens); --log-format json
// writes one JSON object per line and never a token; the shipped --config
// file of the systemd unit parses.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "server/config.h"
#include "server/service.h"
#include "tests/integration/server_harness.h"

namespace loanledger::testing {
namespace {

constexpr auto kWaitMax = std::chrono::seconds(30);

// A unix datagram socket bound at `path`, as systemd's notification socket.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (fd_ < 0 || path.size() >= sizeof addr.sun_path) return;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    bound_ = bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~NotifySocket() {
    if (fd_ >= 0) close(fd_);
    unlink(path_.c_str());
  }
  bool bound() const { return bound_; }
  // The next datagram, or "" after `timeout`.
  std::string Receive(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return "";
    char buf[4096];
    const ssize_t n = recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
};

bool WaitForLog(const ServerProcess& server, const std::string& needle) {
  const auto deadline = std::chrono::steady_clock::now() + kWaitMax;
  while (std::chrono::steady_clock::now() < deadline) {
    if (server.Log().find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST_F(ServerTest, NotifiesReadyAfterTheReadyFileAndStoppingAtSigterm) {
  const std::string socket_path = dir_.Sub("notify.sock");
  NotifySocket notify(socket_path);
  ASSERT_TRUE(notify.bound()) << socket_path;
  ASSERT_EQ(setenv("NOTIFY_SOCKET", socket_path.c_str(), 1), 0);
  // Collects datagrams while the server starts; notes whether the ready file
  // existed when READY=1 arrived.
  std::vector<std::string> messages;
  bool ready_file_there_at_ready = false;
  const std::string ready_file = dir_.Sub("data.log.ready");  // the harness's default
  std::thread reader([&] {
    const auto deadline = std::chrono::steady_clock::now() + kWaitMax;
    while (std::chrono::steady_clock::now() < deadline) {
      std::string m = notify.Receive(std::chrono::milliseconds(100));
      if (m.empty()) continue;
      if (m.find("READY=1") != std::string::npos) {
        struct stat st {};
        ready_file_there_at_ready = stat(ready_file.c_str(), &st) == 0;
      }
      messages.push_back(std::move(m));
      if (messages.back().find("READY=1") != std::string::npos) break;
    }
  });
  StartServer();
  reader.join();
  unsetenv("NOTIFY_SOCKET");
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_EQ(server_->ready_file(), ready_file);
  ASSERT_FALSE(messages.empty()) << "no READY=1 within 30 s";
  const std::string& ready = messages.back();
  EXPECT_NE(ready.find("READY=1"), std::string::npos) << ready;
  EXPECT_TRUE(ready_file_there_at_ready);
  EXPECT_NE(ready.find("MAINPID=" + std::to_string(server_->pid())), std::string::npos) << ready;
  EXPECT_NE(ready.find("STATUS=serving on 127.0.0.1:" + std::to_string(server_->port())),
            std::string::npos)
      << ready;
  for (const std::string& m : messages) EXPECT_EQ(m.find("STOPPING=1"), std::string::npos) << m;

  ASSERT_EQ(kill(server_->pid(), SIGTERM), 0);
  std::string stopping;
  for (int i = 0; i < 300 && stopping.find("STOPPING=1") == std::string::npos; ++i) {
    stopping = notify.Receive(std::chrono::milliseconds(100));
  }
  EXPECT_NE(stopping.find("STOPPING=1"), std::string::npos) << stopping;
  EXPECT_EQ(server_->Stop(0), 0) << server_->Log();  // signal 0: only waits for the exit
}

TEST_F(ServerTest, WithoutNotifySocketNothingChanges) {
  unsetenv("NOTIFY_SOCKET");
  StartServer();
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_TRUE(Connect(kTokenRegulator) != nullptr);
  StopServer();
}

TEST_F(ServerTest, SighupReloadsTokensWithoutDroppingConnections) {
  StartServer();
  ASSERT_FALSE(HasFatalFailure());
  auto old_session = Connect(kTokenB1);
  ASSERT_TRUE(old_session != nullptr);

  // B0001's token is removed, B0003's added.
  const std::string new_token = "llt_test_institution_b0003_reloaded";
  {
    std::ofstream out(tokens_, std::ios::trunc);
    out << Sha256Hex(kTokenB2) << " institution B0002 bank two\n";
    out << Sha256Hex(kTokenRegulator) << " regulator - the regulator\n";
    out << Sha256Hex(new_token) << " institution B0003 bank three\n";
  }
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitForLog(*server_, "SIGHUP: 3 tokens loaded")) << server_->Log();

  // A new login with the new token works; with the removed one it is refused.
  client::ClientOptions o = ClientOptionsFor(*server_, new_token);
  o.reconnect_attempts_max = 1;
  auto bank3 = client::Client::Connect(o);
  ASSERT_TRUE(bank3.ok()) << bank3.status().ToString();
  EXPECT_EQ((*bank3)->identity().institution_id, "B0003");
  client::ClientOptions removed = ClientOptionsFor(*server_, kTokenB1);
  removed.reconnect_attempts_max = 1;
  auto refused = client::Client::Connect(removed);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kUnauthenticated) << refused.status().ToString();

  // The session logged in before the reload keeps its login.
  Result<client::BatchOutcome> r =
      old_session->Submit({MakeEvent("B0001", "HUP1", 1, "2024-01-05", EventKind::kDisburse, 500)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->applied);
  Result<client::BatchOutcome> r3 =
      (*bank3)->Submit({MakeEvent("B0003", "HUP3", 1, "2024-01-05", EventKind::kDisburse, 700)});
  ASSERT_TRUE(r3.ok()) << r3.status().ToString();
  EXPECT_TRUE(r3->applied);

  // A bad file is refused as a whole: the tokens in force stay.
  {
    std::ofstream out(tokens_, std::ios::trunc);
    out << Sha256Hex(kTokenB2) << " institution B0002 bank two\n";
    out << "not-a-hash regulator -\n";
  }
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitForLog(*server_, "tokens file refused")) << server_->Log();
  EXPECT_NE(server_->Log().find(":2: expected the token's SHA-256"), std::string::npos)
      << server_->Log();
  EXPECT_TRUE(client::Client::Connect(o).ok());  // B0003 still in force
  auto regulator = client::Client::Connect(ClientOptionsFor(*server_, kTokenRegulator));
  EXPECT_TRUE(regulator.ok()) << regulator.status().ToString();
  // A missing file likewise.
  ASSERT_EQ(std::remove(tokens_.c_str()), 0);
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitForLog(*server_, "cannot open tokens file")) << server_->Log();
  EXPECT_TRUE(client::Client::Connect(o).ok());

  const std::string log = server_->Log();
  EXPECT_EQ(Count(log, "SIGHUP: tokens file refused"), 2u) << log;
  for (std::string_view token : {kTokenB1, kTokenB2, kTokenRegulator, std::string_view(new_token)})
    EXPECT_EQ(log.find(token), std::string::npos) << token;
  old_session.reset();
  StopServer();
}

TEST_F(ServerTest, JsonLogIsOneObjectPerLineWithoutTokens) {
  StartServer({"--log-format", "json"});
  ASSERT_FALSE(HasFatalFailure());
  const std::string wrong = "llt_wrong_token_must_not_be_logged";
  client::ClientOptions o = ClientOptionsFor(*server_, wrong);
  o.reconnect_attempts_max = 1;
  EXPECT_FALSE(client::Client::Connect(o).ok());
  ASSERT_TRUE(WaitForLog(*server_, "token refused"));
  const pid_t pid = server_->pid();
  StopServer();
  ASSERT_FALSE(HasFatalFailure());

  const std::string log = server_->Log();
  std::istringstream in(log);
  size_t lines = 0, warnings = 0;
  bool saw_listening = false, saw_bye = false;
  for (std::string line; std::getline(in, line);) {
    ++lines;
    nlohmann::json j;
    ASSERT_NO_THROW(j = nlohmann::json::parse(line)) << "line " << lines << ": " << line;
    ASSERT_TRUE(j.is_object()) << line;
    ASSERT_TRUE(j["time"].is_string()) << line;
    ASSERT_TRUE(j["level"].is_string()) << line;
    ASSERT_TRUE(j["msg"].is_string()) << line;
    const std::string time = j["time"];
    EXPECT_EQ(time.size(), 24u) << time;  // 2026-12-06T11:40:00.123Z
    EXPECT_EQ(time.back(), 'Z') << time;
    EXPECT_EQ(j["pid"], pid) << line;
    const std::string msg = j["msg"];
    if (msg.rfind("listening on 127.0.0.1:", 0) == 0) saw_listening = true;
    if (msg.find("bye") != std::string::npos) saw_bye = true;
    if (j["level"] == "warning") ++warnings;
  }
  EXPECT_GE(lines, 5u);
  EXPECT_TRUE(saw_listening) << log;
  EXPECT_TRUE(saw_bye) << log;
  EXPECT_GE(warnings, 1u) << log;  // the refused token
  EXPECT_EQ(log.find(wrong), std::string::npos);
}

TEST(ServiceLogging, JournalOnlyWhenJournalStreamIsOurStderr) {
  unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(server::StderrIsJournal());
  struct stat st {};
  ASSERT_EQ(fstat(STDERR_FILENO, &st), 0);
  const std::string ours = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  ASSERT_EQ(setenv("JOURNAL_STREAM", ours.c_str(), 1), 0);
  EXPECT_TRUE(server::StderrIsJournal());
  // Inherited from a parent whose stderr was the journal, ours is not.
  const std::string other = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1);
  ASSERT_EQ(setenv("JOURNAL_STREAM", other.c_str(), 1), 0);
  EXPECT_FALSE(server::StderrIsJournal());
  ASSERT_EQ(setenv("JOURNAL_STREAM", "garbage", 1), 0);
  EXPECT_FALSE(server::StderrIsJournal());
  unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(server::SetUpLogging("xml", "info").ok());
}

TEST(ServiceConfig, TheSystemdUnitsConfigFileParses) {
  const std::string file = SourceDir() + "/deploy/systemd/loanledgerd.conf";
  server::ServerConfig c;
  std::vector<std::string> args = {"loanledgerd", "--config", file};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  ASSERT_EQ(server::ParseFlags(static_cast<int>(argv.size()), argv.data(), c), std::nullopt);
  EXPECT_EQ(c.listen, "127.0.0.1:7700");
  EXPECT_EQ(c.metrics_listen, "127.0.0.1:9464");
  EXPECT_EQ(c.data_dir, "/var/lib/loanledger");
  EXPECT_EQ(c.tokens_file, "/etc/loanledger/tokens");
  EXPECT_EQ(c.log_format, "auto");
  EXPECT_TRUE(c.tls_cert.empty());
}

}  // namespace
}  // namespace loanledger::testing
