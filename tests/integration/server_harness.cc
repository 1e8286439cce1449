#include "tests/integration/server_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "schema/date.h"

#ifndef LOANLEDGERD_PATH
#error "LOANLEDGERD_PATH must name the loanledgerd binary"
#endif
#ifndef LOANLEDGER_SOURCE_DIR
#error "LOANLEDGER_SOURCE_DIR must name the source tree"
#endif

namespace loanledger::testing {
namespace {

using Clock = std::chrono::steady_clock;

int Remaining(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::map<std::string, std::string> ParseReadyFile(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/loanledger-it-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  const char* made = mkdtemp(buf.data());
  if (made == nullptr) std::abort();
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string WriteStandardTokens(const TempDir& dir) {
  const std::string path = dir.Sub("tokens");
  std::ofstream out(path);
  out << "# test tokens\n\n";
  out << Sha256Hex(kTokenB1) << " institution B0001 bank one\n";
  out << Sha256Hex(kTokenB2) << " institution B0002 bank two\n";
  out << Sha256Hex(kTokenRegulator) << " regulator - the regulator  # comment\n";
  out << Sha256Hex(kTokenAdmin) << " admin -\n";
  return path;
}

std::unique_ptr<ServerProcess> ServerProcess::Start(const Options& options, std::string* error) {
  std::unique_ptr<ServerProcess> server(new ServerProcess());
  server->log_file_ = options.log_file.empty() ? options.data_dir + ".log" : options.log_file;
  server->ready_file_ =
      options.ready_file.empty() ? server->log_file_ + ".ready" : options.ready_file;
  const std::string& ready_file = server->ready_file_;
  std::remove(ready_file.c_str());  // an earlier run's (its PID would not match anyway)
  std::vector<std::string> args = {LOANLEDGERD_PATH,   "--listen",    "127.0.0.1:0",
                                   "--metrics-listen", "127.0.0.1:0", "--data",
                                   options.data_dir,   "--tokens",    options.tokens_file,
                                   "--ready-file",     ready_file};
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  const pid_t pid = fork();
  if (pid < 0) {
    *error = "fork failed";
    return nullptr;
  }
  if (pid == 0) {
    const int fd = open(server->log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 2);
      dup2(fd, 1);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  server->pid_ = pid;

  const auto deadline = Clock::now() + std::chrono::seconds(30);
  // A restarted server appends to the same log: show only what is new.
  const size_t offset = ReadFile(server->log_file_).size();
  while (Clock::now() < deadline) {
    // The server renames the file into place whole: it is absent or complete.
    std::map<std::string, std::string> ready = ParseReadyFile(ReadFile(ready_file));
    if (ready["pid"] == std::to_string(pid)) {
      ready.erase("pid");
      server->addresses_ = std::move(ready);
      return server;
    }
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      server->pid_ = -1;
      *error = "loanledgerd exited during start-up:\n" + ReadFile(server->log_file_).substr(offset);
      return nullptr;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  *error =
      "loanledgerd wrote no ready file within 30 s:\n" + ReadFile(server->log_file_).substr(offset);
  return nullptr;
}

uint16_t ServerProcess::Port(const std::string& name) const {
  const auto it = addresses_.find(name);
  if (it == addresses_.end()) return 0;
  return static_cast<uint16_t>(std::stoi(it->second.substr(it->second.rfind(':') + 1)));
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Stop(SIGKILL, std::chrono::seconds(10));
}

int ServerProcess::Stop(int signal, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  const auto deadline = Clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    if (Clock::now() >= deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = -1;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

client::ClientOptions ClientOptionsFor(const ServerProcess& server, std::string_view token) {
  client::ClientOptions o;
  o.host = "127.0.0.1";
  o.port = server.port();
  o.token = std::string(token);
  o.connect_timeout_ms = 5000;
  o.request_timeout_ms = 30000;
  o.reconnect_attempts_max = 3;
  o.client_name = "integration-test";
  return o;
}

RawConnection::RawConnection(uint16_t port) {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0) return;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd_);
    fd_ = -1;
    return;
  }
  const int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) close(fd_);
}

bool RawConnection::Write(const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    const ssize_t k = send(fd_, p, size, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k;
    size -= static_cast<size_t>(k);
  }
  return true;
}

bool RawConnection::ReadExactly(uint8_t* out, size_t size, Clock::time_point deadline) {
  while (size > 0) {
    pollfd pfd{fd_, POLLIN, 0};
    const int ready = poll(&pfd, 1, Remaining(deadline));
    if (ready <= 0) return false;
    const ssize_t k = recv(fd_, out, size, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    out += k;
    size -= static_cast<size_t>(k);
  }
  return true;
}

Result<wire::OwnedMessage> RawConnection::ReadFrame(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  wire::FrameReader reader(wire::kReplyLimits);
  if (!ReadExactly(reader.header(), wire::kFrameHeaderBytes, deadline)) {
    return Status::Unavailable("no frame header");
  }
  if (Status s = reader.OnHeader(); !s.ok()) return s;
  if (!ReadExactly(reader.body(), reader.body_size(), deadline)) {
    return Status::Unavailable("no frame body");
  }
  return reader.TakeMessage();
}

bool RawConnection::WaitClosed(std::chrono::milliseconds timeout) {
  bool closed = false;
  ReadAll(timeout, &closed);
  return closed;
}

std::string RawConnection::ReadAll(std::chrono::milliseconds timeout, bool* closed) {
  const auto deadline = Clock::now() + timeout;
  std::string out;
  char scratch[4096];
  if (closed != nullptr) *closed = false;
  while (true) {
    pollfd pfd{fd_, POLLIN, 0};
    const int ready = poll(&pfd, 1, Remaining(deadline));
    if (ready <= 0) return out;
    const ssize_t k = recv(fd_, scratch, sizeof scratch, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      if (closed != nullptr) *closed = true;
      return out;
    }
    out.append(scratch, static_cast<size_t>(k));
  }
}

LoanEvent MakeEvent(std::string_view institution, std::string_view loan, uint64_t seq,
                    std::string_view date, EventKind kind, int64_t amount_fen) {
  LoanEvent e;
  e.institution_id = std::string(institution);
  e.loan_id = std::string(loan);
  e.seq = seq;
  e.business_date = *ParseDate(date);
  e.kind = kind;
  e.amount_fen = amount_fen;
  e.attributes.borrower_type = BorrowerType::kEnterprise;
  e.attributes.enterprise_size = EnterpriseSize::kSmall;
  e.attributes.industry_code = "C3911";
  e.attributes.region_code = "310115";
  e.attributes.term_months = 36;
  e.attributes.credit_line_fen = 500'000'000;
  return e;
}

std::string FetchMetrics(uint16_t port) {
  RawConnection c(port);
  if (!c.connected()) return "";
  const std::string request =
      "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\nConnection: close\r\n\r\n";
  if (!c.Write(request.data(), request.size())) return "";
  return c.ReadAll(std::chrono::seconds(10));
}

std::string SourceDir() { return LOANLEDGER_SOURCE_DIR; }

void ServerTest::StartServer(std::vector<std::string> extra_args) {
  if (tokens_.empty()) tokens_ = WriteStandardTokens(dir_);
  extra_args_ = extra_args;
  std::string error;
  ServerProcess::Options options;
  options.data_dir = dir_.Sub("data");
  options.tokens_file = tokens_;
  options.extra_args = std::move(extra_args);
  server_ = ServerProcess::Start(options, &error);
  ASSERT_NE(server_, nullptr) << error;
}

void ServerTest::StopServer() {
  ASSERT_NE(server_, nullptr);
  const int code = server_->Stop(SIGTERM);
  EXPECT_EQ(code, 0) << server_->Log();
}

std::unique_ptr<client::Client> ServerTest::Connect(std::string_view token) {
  Result<std::unique_ptr<client::Client>> c =
      client::Client::Connect(ClientOptionsFor(*server_, token));
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  if (!c.ok()) return nullptr;
  return std::move(*c);
}

void ServerTest::TearDown() {
  if (server_ && server_->running()) StopServer();
  if ((HasFailure() || std::getenv("LL_PRINT_SERVER_LOG") != nullptr) && server_) {
    std::cerr << "---- loanledgerd log ----\n" << server_->Log() << "---- end of log ----\n";
  }
}

}  // namespace loanledger::testing
