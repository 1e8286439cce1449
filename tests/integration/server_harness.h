// Test harness for the tests that run the real loanledgerd (server_*_test.cc,
// tests/cli/cli_e2e_test.cc): a temporary directory, a tokens file,
// loanledgerd started as a child process on 127.0.0.1 port 0 (the ports it
// bound read from its --ready-file) and stopped by PID, a raw socket for
// hand-made frames, and event builders.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "client/client.h"
#include "schema/event.h"
#include "schema/wire.h"

namespace loanledger::testing {

// Tokens of the standard tokens file (WriteStandardTokens).
inline constexpr std::string_view kTokenB1 = "llt_test_institution_b0001";
inline constexpr std::string_view kTokenB2 = "llt_test_institution_b0002";
inline constexpr std::string_view kTokenRegulator = "llt_test_regulator";
inline constexpr std::string_view kTokenAdmin = "llt_test_admin";

std::string Sha256Hex(std::string_view data);
std::string ReadFile(const std::string& path);
// loanledgerd's --ready-file: "pid" -> "123", "listen" -> "127.0.0.1:40123", ...
std::map<std::string, std::string> ParseReadyFile(const std::string& text);

// A fresh directory under $TMPDIR (or /tmp), removed with its contents.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// Writes B0001, B0002 (institutions), a regulator and an admin; returns the path.
std::string WriteStandardTokens(const TempDir& dir);

class ServerProcess {
 public:
  struct Options {
    std::string data_dir;                 // --data
    std::string tokens_file;              // --tokens
    std::vector<std::string> extra_args;  // e.g. {"--read-timeout-ms", "500"}
    std::string log_file;                 // stderr goes here (appended); default: <data_dir>.log
    std::string ready_file;               // --ready-file; default: <log_file>.ready
  };
  // Starts loanledgerd with --listen and --metrics-listen 127.0.0.1:0 and
  // waits until its ready file names its PID (server/README.md, "Ready
  // file"). Null (with *error set) when it exits or does not get there
  // within 30 s.
  static std::unique_ptr<ServerProcess> Start(const Options& options, std::string* error);
  ~ServerProcess();  // SIGKILL if still running

  uint16_t port() const { return Port("listen"); }
  uint16_t metrics_port() const { return Port("metrics"); }
  // The ready file's listeners: "listen" -> "127.0.0.1:40123", "metrics", ...
  const std::map<std::string, std::string>& addresses() const { return addresses_; }
  uint16_t Port(const std::string& name) const;  // 0 when there is no such listener
  pid_t pid() const { return pid_; }
  const std::string& ready_file() const { return ready_file_; }
  std::string Log() const { return ReadFile(log_file_); }

  // Sends `signal` and waits for the exit. Returns the exit code, or
  // 128 + signal number when killed by a signal, or -1 on timeout (then it
  // is SIGKILLed).
  int Stop(int signal, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  bool running() const { return pid_ > 0; }

 private:
  ServerProcess() = default;
  pid_t pid_ = -1;
  std::map<std::string, std::string> addresses_;
  std::string log_file_;
  std::string ready_file_;
};

client::ClientOptions ClientOptionsFor(const ServerProcess& server, std::string_view token);

// A blocking IPv4 socket to 127.0.0.1 for hand-made frames.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port);
  ~RawConnection();
  bool connected() const { return fd_ >= 0; }
  bool Write(const void* data, size_t size);
  bool WriteFrame(const wire::Frame& frame) { return Write(frame.data(), frame.size()); }
  // The next frame, verified; error when none arrives within the timeout or
  // the connection ends.
  Result<wire::OwnedMessage> ReadFrame(std::chrono::milliseconds timeout);
  // True when the peer closes (EOF or reset) within the timeout; data that
  // arrives meanwhile is discarded.
  bool WaitClosed(std::chrono::milliseconds timeout);
  // Everything received until the peer closes or the timeout.
  std::string ReadAll(std::chrono::milliseconds timeout, bool* closed = nullptr);

 private:
  bool ReadExactly(uint8_t* out, size_t size, std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
};

// A valid event with fixed attributes (small manufacturing enterprise in
// Shanghai, 36 months): DISBURSE/REPAY/... of amount_fen on date.
LoanEvent MakeEvent(std::string_view institution, std::string_view loan, uint64_t seq,
                    std::string_view date, EventKind kind, int64_t amount_fen);

// HTTP GET of /metrics on 127.0.0.1:port; "" on failure.
std::string FetchMetrics(uint16_t port);

// Source tree root (for tests/deploy/ scripts).
std::string SourceDir();

// A fixture with a temporary directory, the standard tokens and one server.
class ServerTest : public ::testing::Test {
 protected:
  // Starts loanledgerd on dir_/data (ASSERTs success; check HasFatalFailure).
  void StartServer(std::vector<std::string> extra_args = {});
  // Stops with SIGTERM and expects exit code 0.
  void StopServer();
  std::unique_ptr<client::Client> Connect(std::string_view token);
  void TearDown() override;

  TempDir dir_;
  std::string tokens_;
  std::unique_ptr<ServerProcess> server_;
  std::vector<std::string> extra_args_;  // of the last StartServer (for restarts)
};

}  // namespace loanledger::testing
