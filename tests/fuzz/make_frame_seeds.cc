// Writes the seed corpus of fuzz_frame: one file per message type, made
// with schema/wire.h's own encoders, plus a few multi-frame streams and
// edge cases. Deterministic, so the checked-in files can be regenerated:
//
//   build/tests/fuzz/make_frame_seeds tests/fuzz/corpus/fuzz_frame
//
// CTest also runs it into the build tree and replays fuzz_frame on the
// result (fuzz_frame_generated_seeds), so the seeds track the encoders.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "schema/date.h"
#include "schema/event.h"
#include "schema/wire.h"

namespace {

namespace fs = std::filesystem;
namespace w = loanledger::wire;
using namespace loanledger;  // NOLINT(google-build-using-namespace): a small tool

using Bytes = std::vector<uint8_t>;

Bytes Of(const w::Frame& f) { return Bytes(f.data(), f.data() + f.size()); }

Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

LoanEvent SpecEvent() {
  // The docs/data.md example line.
  LoanEvent e;
  e.institution_id = "B0001";
  e.loan_id = "L000000001";
  e.seq = 1;
  e.business_date = *ParseDate("2023-01-05");
  e.kind = EventKind::kDisburse;
  e.amount_fen = 5'000'000'000;
  e.attributes.borrower_type = BorrowerType::kEnterprise;
  e.attributes.enterprise_size = EnterpriseSize::kSmall;
  e.attributes.industry_code = "C3911";
  e.attributes.region_code = "310115";
  e.attributes.term_months = 36;
  e.attributes.credit_line_fen = 8'000'000'000;
  e.attributes.srdi = true;
  e.attributes.tech_enterprise = true;
  e.attributes.digital_economy = true;
  return e;
}

std::vector<LoanEvent> Batch() {
  LoanEvent repay = SpecEvent();
  repay.seq = 2;
  repay.business_date = *ParseDate("2023-06-30");
  repay.kind = EventKind::kRepay;
  repay.amount_fen = 1'000'000'000;
  LoanEvent household = SpecEvent();
  household.loan_id = "L000000002";
  household.attributes.borrower_type = BorrowerType::kIndividual;
  household.attributes.enterprise_size = EnterpriseSize::kNa;
  household.attributes.industry_code = "";
  household.attributes.region_code = "110101";
  household.attributes.green = true;
  LoanEvent bad =
      SpecEvent();  // out-of-range enum bytes and a bad date: a rejection, not a bad frame
  bad.loan_id = "L000000003";
  bad.kind = static_cast<EventKind>(9);
  bad.attributes.enterprise_size = static_cast<EnterpriseSize>(200);
  bad.business_date =
      std::numeric_limits<int32_t>::max();  // once overflowed FormatDate (regressions/)
  return {SpecEvent(), repay, household, bad};
}

// The same message laid out with Finish (not size-prefixed) and a length
// written in front: the other alignment convention FrameReader accepts.
Bytes UnprefixedHello() {
  flatbuffers::FlatBufferBuilder b(256);
  const auto token = b.CreateString("ll_0123456789abcdef");
  const auto name = b.CreateString("seed");
  const auto hello = w::CreateHello(b, token, name);
  const auto message = w::CreateMessage(b, 1, w::Body::Hello, hello.Union());
  w::FinishMessageBuffer(b, message);
  Bytes body(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  while (body.size() % 8 != 0) body.push_back(0);  // N % 8 == 0 selects this layout
  const auto n = static_cast<uint32_t>(body.size());
  Bytes out = {static_cast<uint8_t>(n), static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n >> 16),
               static_cast<uint8_t>(n >> 24)};
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

Report SampleReport() {
  Report r;
  r.date = *ParseDate("2024-09-30");
  ReportRow row;
  row.category = Category::kManufacturingMlt;
  row.balance_fen = 1'388'000'000;
  row.loan_count = 12;
  row.balance_year_ago_fen = 1'209'000'000;
  row.yoy_growth_pct = 14.8;
  row.ytd_increase_fen = 100'000;
  row.disbursed_ytd_fen = 500'000;
  row.repaid_ytd_fen = 300'000;
  row.written_off_ytd_fen = 100'000;
  r.rows.push_back(row);
  row.category = Category::kGreen;
  row.group = "31";
  row.balance_year_ago_fen = 0;
  row.yoy_growth_pct.reset();
  r.rows.push_back(row);
  return r;
}

// A growth of -0.0: FlatBuffers would drop it as equal to the default 0.0
// (found by fuzz_frame in CI; tests/fuzz/regressions/fuzz_frame has it too).
Report NegativeZeroGrowthReport() {
  Report r = SampleReport();
  r.rows[0].yoy_growth_pct = -0.0;
  return r;
}

Series SampleSeries() {
  Series s;
  s.category = Category::kGreen;
  s.step = Step::kMonth;
  s.by = GroupBy::kProvince;
  s.points.push_back(SeriesPoint{*ParseDate("2024-01-31"), "31", 1000, 1});
  s.points.push_back(SeriesPoint{*ParseDate("2024-02-15"), "44", 2000, 2});
  return s;
}

LoanView SampleLoan() {
  LoanView v;
  v.institution_id = "B0001";
  v.loan_id = "L000000001";
  v.last_seq = 2;
  v.last_business_date = *ParseDate("2023-06-30");
  v.balance_fen = 4'000'000'000;
  v.attributes = SpecEvent().attributes;
  v.categories = Bit(Category::kTotal) | Bit(Category::kManufacturing) | Bit(Category::kSrdi);
  return v;
}

bool Write(const fs::path& dir, const std::string& name, const Bytes& bytes) {
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 1;
  }
  const fs::path dir(argv[1]);
  fs::create_directories(dir);

  ReportQuery report_query;
  report_query.date = *ParseDate("2024-09-30");
  report_query.categories = {Category::kManufacturingMlt, Category::kSrdi};
  report_query.by = GroupBy::kProvince;
  SeriesQuery series_query;
  series_query.category = Category::kGreen;
  series_query.from = *ParseDate("2023-01-01");
  series_query.to = *ParseDate("2024-09-30");
  series_query.step = Step::kQuarter;
  series_query.by = GroupBy::kInstitution;
  w::VerifySummary verify{10, 200, 50, 400, {{"cell GREEN/31/B0001/2024-03-01 balance_fen", 5, 6}}};
  const std::vector<w::RejectionEntry> rejections = {
      {1, Reason::kOverdraw, "REPAY above the outstanding balance"},
      {3, Reason::kBadEventKind, "unknown event kind 9"}};
  const std::vector<LoanEvent> batch = Batch();

  const Bytes hello = Of(w::EncodeHello(1, "ll_0123456789abcdef", "seed"));
  const Bytes submit = Of(w::EncodeSubmitBatch(2, batch));
  const Bytes report = Of(w::EncodeReportRequest(3, report_query));
  const std::vector<std::pair<std::string, Bytes>> seeds = {
      {"hello", hello},
      {"hello_unprefixed_layout", UnprefixedHello()},
      {"submit_batch", submit},
      {"submit_batch_stream", Of(w::EncodeSubmitBatch(2, batch, 0x5eed5eed5eed5eedull, 3))},
      {"report_request", report},
      {"series_request", Of(w::EncodeSeriesRequest(4, series_query))},
      {"loan_request", Of(w::EncodeLoanRequest(5, "B0001", "L000000001"))},
      {"verify_request", Of(w::EncodeVerifyRequest(6))},
      {"stats_request", Of(w::EncodeStatsRequest(7))},
      {"compact_request", Of(w::EncodeCompactRequest(8))},
      {"compact_reply", Of(w::EncodeCompactReply(8, w::CompactSummary{1234, 5 << 20, 3 << 20}))},
      {"hello_ok", Of(w::EncodeHelloOk(1, w::HelloOkInfo{w::Role::INSTITUTION, "B0001", "0.1.0"}))},
      {"ack", Of(w::EncodeAck(2, w::AckInfo{42, 3, 1}))},
      {"rejected", Of(w::EncodeRejected(2, rejections))},
      {"rejected_skipped", Of(w::EncodeRejected(2, {}, true))},
      {"report_reply", Of(w::EncodeReportReply(3, SampleReport()))},
      {"report_reply_negative_zero_yoy", Of(w::EncodeReportReply(3, NegativeZeroGrowthReport()))},
      {"series_reply", Of(w::EncodeSeriesReply(4, SampleSeries()))},
      {"loan_reply", Of(w::EncodeLoanReply(5, SampleLoan()))},
      {"verify_reply", Of(w::EncodeVerifyReply(6, verify))},
      {"stats_reply", Of(w::EncodeStatsReply(7, "loans 3\nbatches 10\n"))},
      {"error",
       Of(w::EncodeError(0, w::ErrorCode::BAD_FRAME, "frame failed the FlatBuffers verifier"))},
      // A session: Hello, a batch, a query, back to back.
      {"stream_session", Cat({hello, submit, report})},
      // A valid frame then one whose length is over any maximum.
      {"stream_then_oversize", Cat({hello, Bytes{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0}})},
      // A valid frame then a truncated one.
      {"stream_then_truncated",
       Cat({hello, Bytes(submit.begin(), submit.begin() + submit.size() / 2)})},
      // Lengths below the minimum, and a body of zeros that cannot verify.
      {"short_length", Bytes{3, 0, 0, 0, 1, 2, 3}},
      {"zero_body", Cat({Bytes{16, 0, 0, 0}, Bytes(16, 0)})},
  };
  for (const auto& [name, bytes] : seeds) {
    if (!Write(dir, name, bytes)) {
      std::fprintf(stderr, "cannot write %s\n", (dir / name).c_str());
      return 1;
    }
  }
  std::printf("wrote %zu seeds to %s\n", seeds.size(), dir.c_str());
  return 0;
}
