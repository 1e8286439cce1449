// Authentication and roles (docs/protocol.md): tokens, institution isolation,
// regulator and admin rights, requests before Hello.
#include <gtest/gtest.h>

#include "schema/category.h"
#include "schema/date.h"
#include "tests/integration/server_harness.h"

namespace loanledger::testing {
namespace {

using client::BatchOutcome;

class ServerAuth : public ServerTest {
 protected:
  void SetUp() override {
    StartServer();
    ASSERT_FALSE(HasFatalFailure());
  }
  Status::Code ConnectCode(std::string_view token) {
    auto c = client::Client::Connect(ClientOptionsFor(*server_, token));
    return c.ok() ? Status::Code::kOk : c.status().code();
  }
  static ReportQuery TotalAt(std::string_view date) {
    ReportQuery q;
    q.date = *ParseDate(date);
    q.categories = {Category::kTotal};
    return q;
  }
};

TEST_F(ServerAuth, WrongOrEmptyTokenIsUnauthenticatedAndCounted) {
  EXPECT_EQ(ConnectCode("llt_not_a_known_token"), Status::Code::kUnauthenticated);
  EXPECT_EQ(ConnectCode(""), Status::Code::kUnauthenticated);
  // The hash itself is not a token.
  EXPECT_EQ(ConnectCode(Sha256Hex(kTokenB1)), Status::Code::kUnauthenticated);
  EXPECT_EQ(ConnectCode(kTokenB1), Status::Code::kOk);
  const std::string metrics = FetchMetrics(server_->metrics_port());
  EXPECT_NE(metrics.find("loanledger_auth_failures_total 3"), std::string::npos) << metrics;
}

TEST_F(ServerAuth, UnreachableServerIsUnavailable) {
  client::ClientOptions o = ClientOptionsFor(*server_, kTokenB1);
  ASSERT_EQ(server_->Stop(SIGTERM), 0);
  auto c = client::Client::Connect(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Status::Code::kUnavailable) << c.status().ToString();
}

TEST_F(ServerAuth, InstitutionsCannotSeeOrWriteEachOthersData) {
  auto b1 = Connect(kTokenB1);
  auto b2 = Connect(kTokenB2);
  ASSERT_TRUE(b1 && b2);
  ASSERT_TRUE(
      b1->Submit({MakeEvent("B0001", "L1", 1, "2024-01-05", EventKind::kDisburse, 1000)})->applied);
  // Same loan id at another institution is another loan.
  ASSERT_TRUE(
      b2->Submit({MakeEvent("B0002", "L1", 1, "2024-01-05", EventKind::kDisburse, 30)})->applied);

  Result<Report> r1 = b1->QueryReport(TotalAt("2024-06-30"));
  Result<Report> r2 = b2->QueryReport(TotalAt("2024-06-30"));
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ(r1->rows.at(0).balance_fen, 1000);
  EXPECT_EQ(r2->rows.at(0).balance_fen, 30);

  // A report by institution shows only the caller's group.
  ReportQuery by = TotalAt("2024-06-30");
  by.by = GroupBy::kInstitution;
  Result<Report> grouped = b2->QueryReport(by);
  ASSERT_TRUE(grouped.ok()) << grouped.status().ToString();
  for (const ReportRow& row : grouped->rows) EXPECT_EQ(row.group, "B0002");

  SeriesQuery sq;
  sq.category = Category::kTotal;
  sq.from = *ParseDate("2024-01-01");
  sq.to = *ParseDate("2024-01-31");
  Result<Series> s2 = b2->QuerySeries(sq);
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(s2->points.back().balance_fen, 30);

  Result<LoanView> other = b2->QueryLoan("B0001", "L1");
  EXPECT_EQ(other.status().code(), Status::Code::kPermissionDenied);
  Result<LoanView> own = b2->QueryLoan("B0002", "L1");
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(own->balance_fen, 30);

  // Writing for another institution is refused whole.
  Result<BatchOutcome> foreign = b2->Submit({
      MakeEvent("B0002", "L2", 1, "2024-01-05", EventKind::kDisburse, 5),
      MakeEvent("B0001", "L1", 2, "2024-01-06", EventKind::kRepay, 1000),
  });
  ASSERT_TRUE(foreign.ok()) << foreign.status().ToString();
  EXPECT_FALSE(foreign->applied);
  ASSERT_EQ(foreign->rejections.size(), 1u);
  EXPECT_EQ(foreign->rejections[0].index, 1u);
  EXPECT_EQ(foreign->rejections[0].reason, Reason::kWrongInstitution);
  EXPECT_EQ(b1->QueryLoan("B0001", "L1")->balance_fen, 1000);
  EXPECT_EQ(b2->QueryLoan("B0002", "L2").status().code(), Status::Code::kNotFound);

  // The regulator sees everything.
  auto regulator = Connect(kTokenRegulator);
  ASSERT_NE(regulator, nullptr);
  EXPECT_EQ(regulator->identity().role, client::Role::kRegulator);
  Result<Report> all = regulator->QueryReport(TotalAt("2024-06-30"));
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->rows.at(0).balance_fen, 1030);
  EXPECT_EQ(regulator->QueryLoan("B0001", "L1")->balance_fen, 1000);
}

TEST_F(ServerAuth, RegulatorCannotSubmitAndKeepsItsConnection) {
  auto regulator = Connect(kTokenRegulator);
  ASSERT_NE(regulator, nullptr);
  Result<BatchOutcome> r =
      regulator->Submit({MakeEvent("B0001", "L1", 1, "2024-01-05", EventKind::kDisburse, 1000)});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kPermissionDenied) << r.status().ToString();
  // Same connection, still served.
  Result<Report> report = regulator->QueryReport(TotalAt("2024-06-30"));
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->rows.at(0).balance_fen, 0);
  EXPECT_NE(server_->Log().find("session 1 "), std::string::npos);
  EXPECT_EQ(server_->Log().find("session 2 "), std::string::npos) << "the client reconnected";
}

TEST_F(ServerAuth, OnlyAdminVerifiesAndAdminReadsNoFigures) {
  auto regulator = Connect(kTokenRegulator);
  auto bank = Connect(kTokenB1);
  auto admin = Connect(kTokenAdmin);
  ASSERT_TRUE(regulator && bank && admin);
  EXPECT_EQ(regulator->Verify().status().code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(bank->Stats().status().code(), Status::Code::kPermissionDenied);
  EXPECT_TRUE(admin->Verify().ok());
  EXPECT_EQ(admin->QueryReport(TotalAt("2024-06-30")).status().code(),
            Status::Code::kPermissionDenied);
  EXPECT_EQ(admin->Submit({MakeEvent("B0001", "L1", 1, "2024-01-05", EventKind::kDisburse, 1)})
                .status()
                .code(),
            Status::Code::kPermissionDenied);
}

TEST_F(ServerAuth, RequestBeforeHelloIsRefusedAndClosed) {
  RawConnection raw(server_->port());
  ASSERT_TRUE(raw.connected());
  ReportQuery q = TotalAt("2024-06-30");
  ASSERT_TRUE(raw.WriteFrame(wire::EncodeReportRequest(42, q)));
  Result<wire::OwnedMessage> reply = raw.ReadFrame(std::chrono::seconds(5));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  ASSERT_EQ(reply->message->body_type(), wire::Body::Error);
  EXPECT_EQ(reply->message->request_id(), 42u);
  EXPECT_EQ(reply->message->body_as_Error()->code(), wire::ErrorCode::UNAUTHENTICATED);
  EXPECT_TRUE(raw.WaitClosed(std::chrono::seconds(5)));
}

TEST_F(ServerAuth, WrongTokenClosesTheConnectionAfterTheError) {
  RawConnection raw(server_->port());
  ASSERT_TRUE(raw.WriteFrame(wire::EncodeHello(7, "wrong", "raw")));
  Result<wire::OwnedMessage> reply = raw.ReadFrame(std::chrono::seconds(5));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  ASSERT_EQ(reply->message->body_type(), wire::Body::Error);
  EXPECT_EQ(reply->message->request_id(), 7u);
  EXPECT_EQ(reply->message->body_as_Error()->code(), wire::ErrorCode::UNAUTHENTICATED);
  EXPECT_TRUE(raw.WaitClosed(std::chrono::seconds(5)));
}

TEST_F(ServerAuth, SecondHelloIsAnErrorButNotAClose) {
  RawConnection raw(server_->port());
  ASSERT_TRUE(raw.WriteFrame(wire::EncodeHello(1, kTokenB1, "raw")));
  Result<wire::OwnedMessage> ok = raw.ReadFrame(std::chrono::seconds(5));
  ASSERT_TRUE(ok.ok());
  ASSERT_EQ(ok->message->body_type(), wire::Body::HelloOk);
  const wire::HelloOkInfo info = wire::DecodeHelloOk(*ok->message->body_as_HelloOk());
  EXPECT_EQ(info.role, wire::Role::INSTITUTION);
  EXPECT_EQ(info.institution_id, "B0001");
  ASSERT_TRUE(raw.WriteFrame(wire::EncodeHello(2, kTokenB2, "raw")));
  Result<wire::OwnedMessage> err = raw.ReadFrame(std::chrono::seconds(5));
  ASSERT_TRUE(err.ok());
  ASSERT_EQ(err->message->body_type(), wire::Body::Error);
  EXPECT_EQ(err->message->body_as_Error()->code(), wire::ErrorCode::INVALID_ARGUMENT);
  ASSERT_TRUE(raw.WriteFrame(wire::EncodeLoanRequest(3, "B0001", "nope")));
  Result<wire::OwnedMessage> nf = raw.ReadFrame(std::chrono::seconds(5));
  ASSERT_TRUE(nf.ok());
  EXPECT_EQ(nf->message->request_id(), 3u);
  ASSERT_EQ(nf->message->body_type(), wire::Body::Error);
  EXPECT_EQ(nf->message->body_as_Error()->code(), wire::ErrorCode::NOT_FOUND);
}

}  // namespace
}  // namespace loanledger::testing
