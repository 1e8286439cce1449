// The process_* families and loanledger_tls_cert_expiry_timestamp_seconds
// (server/process_metrics.h, docs/metrics.md "Process and TLS"): the /proc
// parsers on fixed text, then the values a running loanledgerd exports.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <string>

#include "server/process_metrics.h"
#include "tests/integration/server_harness.h"

namespace loanledger::testing {
namespace {

// The value of an unlabelled sample `name VALUE` in a text exposition; NaN if absent.
double Sample(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return std::nan("");
}

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

TEST(ProcStat, FieldsAreCountedFromTheLastParenthesis) {
  // A command name with spaces and parentheses; fields 14, 15, 22, 23, 24 are
  // 101, 202, 30303, 4096000, 512.
  const std::string text =
      "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 101 202 0 0 20 0 3 0 30303 4096000 512 "
      "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
  Result<server::ProcStat> s = server::ParseProcStat(text);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->utime_ticks, 101u);
  EXPECT_EQ(s->stime_ticks, 202u);
  EXPECT_EQ(s->starttime_ticks, 30303u);
  EXPECT_EQ(s->vsize_bytes, 4096000u);
  EXPECT_EQ(s->rss_pages, 512u);
}

TEST(ProcStat, TruncatedOrGarbledTextIsAnError) {
  EXPECT_FALSE(server::ParseProcStat("").ok());
  EXPECT_FALSE(server::ParseProcStat("4242 (x) S 1 2 3").ok());
  EXPECT_FALSE(server::ParseProcStat("4242 (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1x 202 0 0 20 "
                                     "0 3 0 30303 4096000 512")
                   .ok());
}

TEST(ProcStat, BootTimeIsTheBtimeLine) {
  Result<uint64_t> b = server::ParseBootTime("cpu  1 2 3\nintr 5\nbtime 1733400000\nprocesses 9\n");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(*b, 1733400000u);
  EXPECT_FALSE(server::ParseBootTime("cpu 1 2 3\n").ok());
  EXPECT_FALSE(server::ParseBootTime("btime soon\n").ok());
}

TEST_F(ServerTest, ProcessFamiliesDescribeTheServerProcess) {
  const double before = NowSeconds();
  StartServer();
  ASSERT_FALSE(HasFatalFailure());
  const std::string text = FetchMetrics(server_->metrics_port());
  ASSERT_FALSE(text.empty());
  for (const char* family :
       {"process_start_time_seconds gauge", "process_cpu_seconds_total counter",
        "process_resident_memory_bytes gauge", "process_virtual_memory_bytes gauge",
        "process_open_fds gauge", "process_max_fds gauge",
        "loanledger_tls_cert_expiry_timestamp_seconds gauge"}) {
    EXPECT_NE(text.find(std::string("# TYPE ") + family), std::string::npos) << family;
  }
  // Started after `before` (clock ticks round down: allow a second).
  const double start = Sample(text, "process_start_time_seconds");
  EXPECT_GE(start, before - 1.0);
  EXPECT_LE(start, NowSeconds() + 1.0);
  EXPECT_GE(Sample(text, "process_cpu_seconds_total"), 0.0);
  EXPECT_GT(Sample(text, "process_resident_memory_bytes"), 1 << 20);  // a RocksDB server: > 1 MiB
  EXPECT_GT(Sample(text, "process_virtual_memory_bytes"),
            Sample(text, "process_resident_memory_bytes"));
  const double open = Sample(text, "process_open_fds");
  EXPECT_GE(open, 5.0);  // stdio, listeners, RocksDB files
  EXPECT_GE(Sample(text, "process_max_fds"), open);
  EXPECT_EQ(Sample(text, "loanledger_tls_cert_expiry_timestamp_seconds"), 0.0);  // no TLS
}

TEST_F(ServerTest, TlsCertificateExpiryIsTheCertificatesNotAfter) {
  const std::string cert = dir_.Sub("cert.pem");
  const std::string key = dir_.Sub("key.pem");
  const std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=127.0.0.1"
      " -addext subjectAltName=IP:127.0.0.1 -keyout " +
      key + " -out " + cert + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  Result<int64_t> not_after = server::CertificateNotAfterSeconds(cert);
  ASSERT_TRUE(not_after.ok()) << not_after.status().ToString();
  EXPECT_NEAR(static_cast<double>(*not_after), NowSeconds() + 30 * 86400.0, 3600.0);
  EXPECT_FALSE(server::CertificateNotAfterSeconds(dir_.Sub("missing.pem")).ok());
  EXPECT_FALSE(server::CertificateNotAfterSeconds(key).ok());  // a key, no certificate

  StartServer({"--tls-cert", cert, "--tls-key", key});
  ASSERT_FALSE(HasFatalFailure());
  const std::string text = FetchMetrics(server_->metrics_port());
  EXPECT_EQ(Sample(text, "loanledger_tls_cert_expiry_timestamp_seconds"),
            static_cast<double>(*not_after))
      << text.substr(0, 400);
}

}  // namespace
}  // namespace loanledger::testing
