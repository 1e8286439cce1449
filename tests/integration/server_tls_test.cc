// TLS (docs/operations.md): a self-signed certificate made at test time; round trip
// with verification; a plain client or an untrusted certificate fails; without
// a CA file the system CA store is used (and refuses the self-signed
// certificate); tls_insecure / --tls-insecure is the explicit opt-out.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <csignal>
#include <cstdlib>

#include "schema/category.h"
#include "schema/date.h"
#include "tests/integration/server_harness.h"

namespace loanledger::testing {
namespace {

class ServerTls : public ServerTest {
 protected:
  void SetUp() override {
    cert_ = dir_.Sub("cert.pem");
    key_ = dir_.Sub("key.pem");
    const std::string cmd =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1"
        " -addext subjectAltName=IP:127.0.0.1 -keyout " +
        key_ + " -out " + cert_ + " > " + dir_.Sub("openssl.log") + " 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << ReadFile(dir_.Sub("openssl.log"));
    StartServer({"--tls-cert", cert_, "--tls-key", key_});
    ASSERT_FALSE(HasFatalFailure());
  }
  client::ClientOptions TlsOptions(std::string_view token) {
    client::ClientOptions o = ClientOptionsFor(*server_, token);
    o.tls = true;
    o.tls_ca_file = cert_;
    o.reconnect_attempts_max = 1;
    return o;
  }
  std::string cert_, key_;
};

TEST_F(ServerTls, RoundTripWithAVerifiedCertificate) {
  auto bank = client::Client::Connect(TlsOptions(kTokenB1));
  ASSERT_TRUE(bank.ok()) << bank.status().ToString();
  Result<client::BatchOutcome> r =
      (*bank)->Submit({MakeEvent("B0001", "T1", 1, "2024-01-05", EventKind::kDisburse, 4242)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->applied);
  ReportQuery q;
  q.date = *ParseDate("2024-12-31");
  q.categories = {Category::kTotal};
  Result<Report> report = (*bank)->QueryReport(q);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->rows.at(0).balance_fen, 4242);
  // Pipelined over TLS too.
  int made = 0;
  Status s = (*bank)->SubmitStream(
      [&](std::vector<LoanEvent>& batch) {
        if (made == 20) return false;
        for (int i = 0; i < 100; ++i) {
          batch.push_back(MakeEvent("B0001", "TP" + std::to_string(made * 100 + i), 1, "2024-01-05",
                                    EventKind::kDisburse, 1));
        }
        ++made;
        return true;
      },
      [](uint64_t, const client::BatchOutcome& o) { return o.applied; });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ((*bank)->QueryReport(q)->rows.at(0).balance_fen, 4242 + 2000);
}

TEST_F(ServerTls, InsecureOptOutConnectsWithoutVerification) {
  client::ClientOptions o = TlsOptions(kTokenRegulator);
  o.tls_ca_file.clear();
  o.tls_insecure = true;
  auto regulator = client::Client::Connect(o);
  ASSERT_TRUE(regulator.ok()) << regulator.status().ToString();
  EXPECT_EQ((*regulator)->identity().role, client::Role::kRegulator);
}

TEST_F(ServerTls, WithoutACaFileTheSystemStoreRefusesASelfSignedCertificate) {
  client::ClientOptions o = TlsOptions(kTokenRegulator);
  o.tls_ca_file.clear();  // the system CA store, which does not hold our self-signed certificate
  auto c = client::Client::Connect(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Status::Code::kUnavailable) << c.status().ToString();
  EXPECT_NE(c.status().message().find("server certificate not trusted: self-signed certificate"),
            std::string::npos)
      << c.status().ToString();
  EXPECT_NE(c.status().message().find("system CA store"), std::string::npos)
      << c.status().ToString();
}

TEST_F(ServerTls, TheCaFileMustNameTheHost) {
  // Same key pair, but a certificate for another name: the chain verifies,
  // the host name does not.
  const std::string other = dir_.Sub("other-name.pem");
  const std::string cmd = "openssl req -x509 -new -key " + key_ +
                          " -days 2 -subj /CN=elsewhere.example -addext "
                          "subjectAltName=DNS:elsewhere.example -out " +
                          other + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  ASSERT_EQ(server_->Stop(SIGTERM), 0);
  server_.reset();
  StartServer({"--tls-cert", other, "--tls-key", key_});
  ASSERT_FALSE(HasFatalFailure());
  client::ClientOptions o = TlsOptions(kTokenRegulator);
  o.tls_ca_file = other;
  auto c = client::Client::Connect(o);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("does not name 127.0.0.1"), std::string::npos)
      << c.status().ToString();
}

// The CLI (docs/cli.md): --tls verifies against the system store (fails on a
// self-signed certificate, exit 3, saying why), --tls-ca FILE trusts that CA,
// --tls-insecure connects with a warning.
TEST_F(ServerTls, CliVerifiesByDefaultAndTlsInsecureOptsOut) {
  auto run = [&](const std::string& flags, std::string* err) {
    const std::string err_file = dir_.Sub("cli.err");
    const std::string cmd = std::string(LOANLEDGER_CLI_PATH) +
                            " --server 127.0.0.1:" + std::to_string(server_->port()) + " --token " +
                            std::string(kTokenRegulator) + " " + flags +
                            " report --date 2024-12-31 --format json > /dev/null 2> " + err_file;
    const int status = std::system(cmd.c_str());
    *err = ReadFile(err_file);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  std::string err;
  EXPECT_EQ(run("--tls", &err), 3) << err;
  EXPECT_NE(err.find("server certificate not trusted: self-signed certificate"), std::string::npos)
      << err;
  EXPECT_EQ(run("--tls-ca " + cert_, &err), 0) << err;
  EXPECT_EQ(err.find("warning"), std::string::npos) << err;
  EXPECT_EQ(run("--tls --tls-ca " + cert_, &err), 0) << err;
  EXPECT_EQ(run("--tls-insecure", &err), 0) << err;
  EXPECT_NE(err.find("warning: --tls-insecure"), std::string::npos) << err;
}

TEST_F(ServerTls, WrongTokenOverTlsIsUnauthenticated) {
  auto c = client::Client::Connect(TlsOptions("wrong-token"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Status::Code::kUnauthenticated) << c.status().ToString();
}

TEST_F(ServerTls, PlainClientOrUntrustedCertificateFails) {
  client::ClientOptions plain = ClientOptionsFor(*server_, kTokenB1);
  plain.tls = false;
  plain.connect_timeout_ms = 3000;
  auto c = client::Client::Connect(plain);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Status::Code::kUnavailable) << c.status().ToString();

  // A CA that did not sign the server's certificate.
  const std::string other_cert = dir_.Sub("other.pem");
  const std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1"
      " -addext subjectAltName=IP:127.0.0.1 -keyout " +
      dir_.Sub("other.key") + " -out " + other_cert + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  client::ClientOptions untrusted = TlsOptions(kTokenB1);
  untrusted.tls_ca_file = other_cert;
  auto u = client::Client::Connect(untrusted);
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().code(), Status::Code::kUnavailable) << u.status().ToString();

  // The server keeps serving.
  EXPECT_TRUE(client::Client::Connect(TlsOptions(kTokenB1)).ok());
}

}  // namespace
}  // namespace loanledger::testing
