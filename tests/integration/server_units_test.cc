// Pieces of the protocol and the server without a process: frames and the
// verifier, conversions both ways, the tokens file, HOST:PORT parsing, the
// batch writer's and the byte budget's wake-up of a session waiting for
// room.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <future>
#include <limits>
#include <thread>

#include "schema/category.h"
#include "schema/date.h"
#include "schema/host_port.h"
#include "schema/wire.h"
#include "server/auth.h"
#include "server/batch_writer.h"
#include "server/byte_budget.h"
#include "server/config.h"
#include "server/metrics.h"
#include "storage/ledger.h"
#include "tests/integration/server_harness.h"

namespace loanledger::testing {
namespace {

namespace fb = flatbuffers;

// Decodes a frame through a FrameReader, as a transport would.
Result<wire::OwnedMessage> Receive(const wire::Frame& frame,
                                   wire::FrameLimits limits = wire::kReplyLimits) {
  wire::FrameReader reader(limits);
  std::memcpy(reader.header(), frame.data(), wire::kFrameHeaderBytes);
  if (Status s = reader.OnHeader(); !s.ok()) return s;
  EXPECT_EQ(reader.body_size(), frame.size() - wire::kFrameHeaderBytes);
  std::memcpy(reader.body(), frame.data() + wire::kFrameHeaderBytes, reader.body_size());
  return reader.TakeMessage();
}

TEST(WireCodec, EventsSurviveARoundTrip) {
  LoanEvent e = MakeEvent("B0001", "L-1", 7, "2024-02-29", EventKind::kWriteOff, 123);
  e.attributes.borrower_type = BorrowerType::kSmallMicroOwner;
  e.attributes.enterprise_size = EnterpriseSize::kNa;
  e.attributes.srdi = e.attributes.green = e.attributes.digital_economy = true;
  LoanEvent f = MakeEvent("B0001", "L-2", 1, "1990-01-01", EventKind::kDisburse, 1);
  f.attributes.industry_code = "";
  f.attributes.borrower_type = BorrowerType::kIndividual;
  const std::vector<LoanEvent> events = {e, f};
  Result<wire::OwnedMessage> m = Receive(wire::EncodeSubmitBatch(99, events), wire::kRequestLimits);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->message->request_id(), 99u);
  Result<std::vector<LoanEvent>> back = wire::DecodeSubmitBatch(*m->message->body_as_SubmitBatch());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, events);
}

TEST(WireCodec, RepliesSurviveARoundTrip) {
  Report report;
  report.date = *ParseDate("2024-09-30");
  ReportRow row;
  row.category = Category::kGreen;
  row.group = "31";
  row.balance_fen = 5;
  row.loan_count = 1;
  row.balance_year_ago_fen = 4;
  row.yoy_growth_pct = 25.0;
  row.ytd_increase_fen = -3;
  row.disbursed_ytd_fen = 9;
  row.repaid_ytd_fen = 2;
  row.written_off_ytd_fen = 1;
  report.rows = {row, ReportRow{}};
  Result<wire::OwnedMessage> m = Receive(wire::EncodeReportReply(1, report));
  ASSERT_TRUE(m.ok());
  const Report r = wire::DecodeReportReply(*m->message->body_as_ReportReply());
  EXPECT_EQ(r.date, report.date);
  EXPECT_EQ(r.rows, report.rows);

  // Growth percentages arrive bit for bit, -0.0 included (FlatBuffers would
  // leave out a field equal to its default 0.0; found by fuzz_frame).
  for (const double yoy : {-0.0, 0.0, -12.5, std::numeric_limits<double>::infinity(),
                           std::numeric_limits<double>::quiet_NaN()}) {
    Report one;
    one.rows = {ReportRow{}};
    one.rows[0].balance_year_ago_fen = 1;
    one.rows[0].yoy_growth_pct = yoy;
    m = Receive(wire::EncodeReportReply(1, one));
    ASSERT_TRUE(m.ok());
    const Report got = wire::DecodeReportReply(*m->message->body_as_ReportReply());
    ASSERT_EQ(got.rows.size(), 1u);
    ASSERT_TRUE(got.rows[0].yoy_growth_pct.has_value());
    uint64_t sent = 0, arrived = 0;
    std::memcpy(&sent, &yoy, sizeof yoy);
    std::memcpy(&arrived, &*got.rows[0].yoy_growth_pct, sizeof arrived);
    EXPECT_EQ(arrived, sent) << "yoy " << yoy;
  }

  Series series{Category::kSrdi,
                Step::kQuarter,
                GroupBy::kProvince,
                {SeriesPoint{100, "11", 7, 1}, SeriesPoint{200, "", 0, 0}}};
  m = Receive(wire::EncodeSeriesReply(2, series));
  ASSERT_TRUE(m.ok());
  const Series s = wire::DecodeSeriesReply(*m->message->body_as_SeriesReply());
  EXPECT_EQ(s.category, series.category);
  EXPECT_EQ(s.step, series.step);
  EXPECT_EQ(s.by, series.by);
  EXPECT_EQ(s.points, series.points);

  LoanView loan;
  loan.institution_id = "B1";
  loan.loan_id = "L";
  loan.last_seq = 3;
  loan.last_business_date = 9000;
  loan.balance_fen = 42;
  loan.attributes = MakeEvent("B1", "L", 1, "2024-01-01", EventKind::kDisburse, 1).attributes;
  loan.categories = Classify(loan.attributes);
  m = Receive(wire::EncodeLoanReply(3, loan));
  ASSERT_TRUE(m.ok());
  const LoanView v = wire::DecodeLoanReply(*m->message->body_as_LoanReply());
  EXPECT_EQ(v.institution_id, loan.institution_id);
  EXPECT_EQ(v.last_seq, 3u);
  EXPECT_EQ(v.attributes, loan.attributes);
  EXPECT_EQ(v.categories, loan.categories);

  const std::vector<wire::RejectionEntry> rejections = {{4, Reason::kOverdraw, "too much"}};
  m = Receive(wire::EncodeRejected(4, rejections));
  ASSERT_TRUE(m.ok());
  const auto back = wire::DecodeRejected(*m->message->body_as_Rejected());
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].index, 4u);
  EXPECT_EQ(back[0].reason, Reason::kOverdraw);
  EXPECT_EQ(back[0].message, "too much");
  EXPECT_EQ(wire::View(m->message->body_as_Rejected()->rejections()->Get(0)->reason_name()),
            "OVERDRAW");

  m = Receive(wire::EncodeError(5, wire::ErrorCode::NOT_FOUND, "no such loan"));
  ASSERT_TRUE(m.ok());
  const Status st = wire::StatusFromError(*m->message->body_as_Error());
  EXPECT_EQ(st.code(), Status::Code::kNotFound);
  EXPECT_EQ(st.message(), "no such loan");
}

TEST(WireCodec, RequestsAreCheckedWhenDecoded) {
  ReportQuery q;
  q.date = *ParseDate("2024-09-30");
  q.categories = {Category::kTotal, Category::kDigitalEconomy};
  q.by = GroupBy::kProvince;
  Result<wire::OwnedMessage> m = Receive(wire::EncodeReportRequest(1, q), wire::kRequestLimits);
  ASSERT_TRUE(m.ok());
  Result<ReportQuery> back = wire::DecodeReportRequest(*m->message->body_as_ReportRequest());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->categories, q.categories);
  EXPECT_EQ(back->by, q.by);
  EXPECT_FALSE(back->scope_institution.has_value());

  fb::FlatBufferBuilder b;
  const std::vector<uint8_t> bad_categories = {0, 200};
  const auto req = wire::CreateReportRequestDirect(b, q.date, &bad_categories);
  wire::FinishSizePrefixedMessageBuffer(
      b, wire::CreateMessage(b, 2, wire::Body::ReportRequest, req.Union()));
  std::vector<uint8_t> storage;
  Result<const wire::Message*> v =
      wire::VerifyFrame({b.GetBufferPointer(), b.GetSize()}, wire::kRequestLimits, storage);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(wire::DecodeReportRequest(*(*v)->body_as_ReportRequest()).status().code(),
            Status::Code::kInvalidArgument);

  SeriesQuery sq;
  sq.from = *ParseDate("2024-09-30");
  sq.to = *ParseDate("2024-01-01");  // backwards
  m = Receive(wire::EncodeSeriesRequest(3, sq), wire::kRequestLimits);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(wire::DecodeSeriesRequest(*m->message->body_as_SeriesRequest()).status().code(),
            Status::Code::kInvalidArgument);

  m = Receive(wire::EncodeSubmitBatch(4, {}), wire::kRequestLimits);
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(wire::DecodeSubmitBatch(*m->message->body_as_SubmitBatch()).ok());
}

TEST(WireFrames, LengthIsCheckedBeforeTheBody) {
  wire::FrameReader reader(wire::FrameLimits{1000, 16, 100});
  auto header = [&](uint32_t n) {
    std::memcpy(reader.header(), &n, 4);  // little-endian host
    return reader.OnHeader();
  };
  EXPECT_EQ(header(1001).code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(header(0xFFFFFFFFu).code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(header(0).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(header(11).code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(header(1000).ok());
  EXPECT_EQ(reader.body_size(), 1000u);
}

TEST(WireFrames, VerifierLimitsAreEnforced) {
  std::vector<LoanEvent> events(50, MakeEvent("B1", "L", 1, "2024-01-01", EventKind::kDisburse, 1));
  const wire::Frame frame = wire::EncodeSubmitBatch(1, events);
  std::vector<uint8_t> storage;
  const std::span<const uint8_t> bytes(frame.data(), frame.size());
  EXPECT_TRUE(wire::VerifyFrame(bytes, wire::kRequestLimits, storage).ok());
  EXPECT_FALSE(
      wire::VerifyFrame(bytes, wire::FrameLimits{kFrameBytesMaxDefault, 16, 40}, storage).ok())
      << "50 event tables pass a 40-table limit";
  EXPECT_FALSE(
      wire::VerifyFrame(bytes, wire::FrameLimits{kFrameBytesMaxDefault, 2, 1000}, storage).ok())
      << "depth limit ignored";
  EXPECT_FALSE(
      wire::VerifyFrame(bytes.first(bytes.size() - 1), wire::kRequestLimits, storage).ok());
}

TEST(WireFrames, BothAlignmentConventionsVerify) {
  // The request id (8 bytes) forces 8-byte alignment; try many sizes so that
  // both N % 8 == 0 and N % 8 == 4 occur for each convention.
  for (int pad = 0; pad < 16; ++pad) {
    const std::string name(static_cast<size_t>(pad), 'x');
    const wire::Frame prefixed = wire::EncodeHello(0x1122334455667788ull, "t", name);
    Result<wire::OwnedMessage> a = Receive(prefixed, wire::kRequestLimits);
    ASSERT_TRUE(a.ok()) << "size-prefixed, pad " << pad << ": " << a.status().ToString();
    EXPECT_EQ(a->message->request_id(), 0x1122334455667788ull);

    fb::FlatBufferBuilder b;
    const auto hello = wire::CreateHelloDirect(b, "t", name.c_str());
    wire::FinishMessageBuffer(
        b, wire::CreateMessage(b, 0x1122334455667788ull, wire::Body::Hello, hello.Union()));
    std::vector<uint8_t> frame(4 + b.GetSize());
    const uint32_t n = b.GetSize();
    std::memcpy(frame.data(), &n, 4);
    std::memcpy(frame.data() + 4, b.GetBufferPointer(), n);
    std::vector<uint8_t> storage;
    Result<const wire::Message*> v = wire::VerifyFrame(frame, wire::kRequestLimits, storage);
    ASSERT_TRUE(v.ok()) << "plain Finish, pad " << pad << ": " << v.status().ToString();
    EXPECT_EQ((*v)->request_id(), 0x1122334455667788ull);
    EXPECT_EQ(wire::View((*v)->body_as_Hello()->client_name()), name);
  }
}

TEST(WireFrames, AMisalignedVectorOfULongIsRefused) {
  // A [ulong] whose elements sit at 4 mod 8 passes the FlatBuffers 2.0.8
  // verifier (it checks only the length word); reading it would be a
  // misaligned load. Build stream_positions from 32-bit words, once with and
  // once without a 4-byte shift: one layout is aligned and must verify with
  // the positions readable, the other must be refused.
  int refused = 0, accepted = 0;
  for (int shift = 0; shift < 2; ++shift) {
    fb::FlatBufferBuilder b;
    const auto version = b.CreateString("r");
    b.StartVector(2, sizeof(uint32_t));
    if (shift == 1) b.PushElement<uint32_t>(0);  // moves the elements by 4 bytes
    b.PushElement<uint32_t>(0);                  // high word of 7
    b.PushElement<uint32_t>(7);                  // low word (little-endian)
    const fb::Offset<fb::Vector<uint64_t>> positions(b.EndVector(1));
    wire::ReportReplyBuilder reply(b);
    reply.add_date(20240930);
    reply.add_rules_version(version);
    reply.add_stream_positions(positions);
    const auto body = reply.Finish();
    wire::FinishSizePrefixedMessageBuffer(
        b, wire::CreateMessage(b, 9, wire::Body::ReportReply, body.Union()));
    std::vector<uint8_t> storage;
    Result<const wire::Message*> v =
        wire::VerifyFrame({b.GetBufferPointer(), b.GetSize()}, wire::kReplyLimits, storage);
    if (v.ok()) {
      ++accepted;
      const auto* p = (*v)->body_as_ReportReply()->stream_positions();
      ASSERT_NE(p, nullptr);
      ASSERT_EQ(p->size(), 1u);
      EXPECT_EQ(p->Get(0), 7u);
    } else {
      ++refused;
      EXPECT_EQ(v.status().code(), Status::Code::kInvalidArgument);
      EXPECT_NE(v.status().message().find("misaligned"), std::string::npos)
          << v.status().ToString();
    }
  }
  EXPECT_EQ(accepted, 1);
  EXPECT_EQ(refused, 1);
}

TEST(Tokens, FileFormatIsParsedAndChecked) {
  const std::string h1 = Sha256Hex("one"), h2 = Sha256Hex("two"), h3 = Sha256Hex("three");
  std::string upper = h3;
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  const std::string text = "# comment\n\n" + h1 + " institution B0001 Bank One Ltd\r\n" + h2 +
                           "\tregulator\t-\n   " + upper + " admin - ops # trailing comment\n";
  Result<server::TokenTable> t = server::TokenTable::Parse(text, "tokens");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->size(), 3u);
  const server::Principal* p = t->Authenticate("one");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->role, wire::Role::INSTITUTION);
  EXPECT_EQ(p->institution_id, "B0001");
  EXPECT_EQ(p->name, "Bank One Ltd");
  ASSERT_NE(t->Authenticate("two"), nullptr);
  EXPECT_EQ(t->Authenticate("two")->role, wire::Role::REGULATOR);
  EXPECT_EQ(t->Authenticate("two")->name, "token:" + h2.substr(0, 8));
  ASSERT_NE(t->Authenticate("three"), nullptr);
  EXPECT_EQ(t->Authenticate("three")->name, "ops");
  EXPECT_EQ(t->Authenticate(""), nullptr);
  EXPECT_EQ(t->Authenticate(h1), nullptr);

  for (const std::string& bad : std::vector<std::string>{
           h1 + " institution -", h1 + " institution b0001", h1 + " regulator B0001",
           h1 + " root -", "abc institution B1", h1 + " institution B1\n" + h1 + " admin -"}) {
    Result<server::TokenTable> r = server::TokenTable::Parse(bad, "f");
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().message().rfind("f:", 0), 0u) << r.status().message();
    }
  }
  EXPECT_EQ(server::Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Config, HostPortParsing) {
  auto hp = server::ParseHostPort("127.0.0.1:7700");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "127.0.0.1");
  EXPECT_EQ(hp->port, 7700);
  hp = server::ParseHostPort("[::1]:0");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "::1");
  EXPECT_EQ(hp->port, 0);
  // One rule with the CLI (schema/host_port.h): IPv6 only in brackets.
  for (const char* bad : {"7700", ":7700", "host:", "host:65536", "host:12a", "host:-1", "::1:7700",
                          "[::1:7700", "[]:7700", "ho]st:1", "host:000001"}) {
    EXPECT_FALSE(server::ParseHostPort(bad).ok()) << bad;
    EXPECT_FALSE(ParseHostPort(bad, true).has_value()) << bad;
  }
  EXPECT_FALSE(ParseHostPort("host:0", false).has_value()) << "a client needs a port";
  EXPECT_EQ(FormatHostPort("::1", 7700), "[::1]:7700");
  EXPECT_EQ(ParseHostPort(FormatHostPort("::1", 7700), false), (HostPort{"::1", 7700}));
}

TEST(Config, ConfigFileUsesTheFlagNames) {
  TempDir dir;
  const std::string file = dir.Sub("loanledgerd.toml");
  {
    std::ofstream out(file);
    out << "listen = \"127.0.0.1:7777\"\nmetrics-listen = \"127.0.0.1:0\"\ndata = \"/var/x\"\n"
           "tokens = \"/etc/t\"\nidle-timeout-ms = 1234\nready-file = \"/run/ll/ready\"\n";
  }
  server::ServerConfig c;
  std::vector<std::string> args = {"loanledgerd", "--config", file, "--read-timeout-ms", "55"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  EXPECT_EQ(server::ParseFlags(static_cast<int>(argv.size()), argv.data(), c), std::nullopt);
  EXPECT_EQ(c.listen, "127.0.0.1:7777");
  EXPECT_EQ(c.metrics_listen, "127.0.0.1:0");
  EXPECT_EQ(c.data_dir, "/var/x");
  EXPECT_EQ(c.tokens_file, "/etc/t");
  EXPECT_EQ(c.idle_timeout_ms, 1234u);
  EXPECT_EQ(c.read_timeout_ms, 55u);
  EXPECT_EQ(c.ready_file, "/run/ll/ready");
}

TEST(Config, UnknownConfigFileKeyIsAUsageError) {
  TempDir dir;
  const std::string file = dir.Sub("typo.toml");
  {
    std::ofstream out(file);
    out << "data = \"/var/x\"\nverfy = true\n";
  }
  server::ServerConfig c;
  std::vector<std::string> args = {"loanledgerd", "--config", file};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  EXPECT_EQ(server::ParseFlags(static_cast<int>(argv.size()), argv.data(), c), 1);
  EXPECT_FALSE(c.verify);
}

// The batch writer wakes a session waiting for room in its queue (issue 17,
// item 4: no polling): the waiter's callback runs once the writer takes
// batches off a full queue, and at Stop.
TEST(BatchWriterRoom, AFullQueueWakesItsWaiterWhenTheWriterTakesBatches) {
  TempDir dir;
  storage::LedgerOptions options;
  options.path = dir.Sub("data");
  options.sync = false;
  Result<std::unique_ptr<storage::Ledger>> ledger = storage::Ledger::Open(options);
  ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
  server::Metrics metrics("test");
  server::BatchWriter writer(**ledger, metrics, /*queue_batches_max=*/1, /*group_batches_max=*/1);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> done{0};
  auto job = [&](std::string loan, bool hold) {
    server::BatchWriter::Job j;
    j.batch.submitter = "test";
    j.batch.events = {MakeEvent("B0001", loan, 1, "2024-01-02", EventKind::kDisburse, 100)};
    j.done = [&done, released, hold](Result<storage::ApplyResult> r) {
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      ++done;
      if (hold) released.wait();  // holds the writer thread
    };
    return j;
  };
  using Enqueue = server::BatchWriter::Enqueue;
  writer.Start();
  server::BatchWriter::Job a = job("L1", true);
  ASSERT_EQ(writer.TryEnqueue(a), Enqueue::kQueued);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (done.load() == 0) {  // the writer is now held in a's done
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  server::BatchWriter::Job b = job("L2", false);
  ASSERT_EQ(writer.TryEnqueue(b), Enqueue::kQueued);
  std::promise<void> room;
  std::future<void> woken = room.get_future();
  server::BatchWriter::Job c = job("L3", false);
  ASSERT_EQ(writer.TryEnqueue(c, [&room] { room.set_value(); }), Enqueue::kFull);
  EXPECT_EQ(woken.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout)
      << "woken while the queue was still full";
  release.set_value();
  ASSERT_EQ(woken.wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "the writer took b but did not wake the waiter";
  EXPECT_EQ(writer.TryEnqueue(c), Enqueue::kQueued);
  writer.Stop();
  EXPECT_EQ(done.load(), 3);
}

TEST(BatchWriterRoom, StopWakesTheWaiters) {
  TempDir dir;
  storage::LedgerOptions options;
  options.path = dir.Sub("data");
  options.sync = false;
  Result<std::unique_ptr<storage::Ledger>> ledger = storage::Ledger::Open(options);
  ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
  server::Metrics metrics("test");
  server::BatchWriter writer(**ledger, metrics, 1, 1);  // not started: nothing leaves the queue
  server::BatchWriter::Job a;
  a.batch.events = {MakeEvent("B0001", "L1", 1, "2024-01-02", EventKind::kDisburse, 100)};
  bool a_unavailable = false;
  a.done = [&](Result<storage::ApplyResult> r) {
    a_unavailable = r.status().code() == Status::Code::kUnavailable;
  };
  server::BatchWriter::Job b = a;
  ASSERT_EQ(writer.TryEnqueue(a), server::BatchWriter::Enqueue::kQueued);
  int woken = 0;
  ASSERT_EQ(writer.TryEnqueue(b, [&] { ++woken; }), server::BatchWriter::Enqueue::kFull);
  writer.Stop();
  EXPECT_EQ(woken, 1);
  EXPECT_TRUE(a_unavailable);
  EXPECT_EQ(writer.TryEnqueue(b), server::BatchWriter::Enqueue::kStopped);
}

// The server-wide byte budget wakes a session waiting for room (issue 17,
// item 4: no polling): a refused reservation's callback runs once, at the
// next release.
TEST(ByteBudgetRoom, ARefusedReservationIsWokenOnceByTheNextRelease) {
  server::ByteBudget budget(100);
  ASSERT_TRUE(budget.TryReserve(60, [] { ADD_FAILURE() << "kept although it fitted"; }));
  int woken = 0;
  EXPECT_FALSE(budget.TryReserve(50, [&] { ++woken; }));
  EXPECT_EQ(woken, 0);
  EXPECT_EQ(budget.used(), 60u);
  budget.Release(10);
  EXPECT_EQ(woken, 1);
  EXPECT_TRUE(budget.TryReserve(50, nullptr));  // 50 + 50 fits now
  budget.Release(100);
  EXPECT_EQ(woken, 1) << "called once";
  EXPECT_EQ(budget.used(), 0u);
}

TEST(ByteBudgetRoom, AFrameAloneIsAdmittedAndAddIgnoresTheBound) {
  server::ByteBudget budget(100);
  EXPECT_TRUE(budget.TryReserve(500, nullptr));  // nothing else reserved
  budget.Add(10);                                // small frames: whatever the bound
  EXPECT_EQ(budget.used(), 510u);
  EXPECT_FALSE(budget.TryReserve(1, nullptr));
  budget.Release(510);
  EXPECT_TRUE(budget.TryReserve(100, nullptr));
  budget.Release(100);
}

// A release racing with a refusal either lets the reservation through or
// wakes it: no waiter is ever left asleep.
TEST(ByteBudgetRoom, AReleaseRacingARefusalLosesNoWakeUp) {
  server::ByteBudget budget(100);
  for (int round = 0; round < 2000; ++round) {
    ASSERT_TRUE(budget.TryReserve(100, nullptr));
    std::thread releaser([&] { budget.Release(100); });
    std::promise<void> room;
    std::future<void> woken = room.get_future();
    const bool reserved = budget.TryReserve(100, [&room] { room.set_value(); });
    releaser.join();
    if (!reserved) {
      ASSERT_EQ(woken.wait_for(std::chrono::seconds(10)), std::future_status::ready)
          << "round " << round << ": refused, and the release did not wake it";
      ASSERT_TRUE(budget.TryReserve(100, nullptr));
    }
    budget.Release(100);
    ASSERT_EQ(budget.used(), 0u);
  }
}

}  // namespace
}  // namespace loanledger::testing
