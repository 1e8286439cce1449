// Fuzz target: the wire protocol's receive side (schema/wire.h, docs/protocol.md).
//
// The input is a byte stream as a peer would send it: frames back to back,
// each a 4-byte little-endian length and a FlatBuffers body. It is read
// twice, once as the server reads requests (kRequestLimits, OnBody) and once
// as the client reads replies (kReplyLimits, TakeMessage), with
// frame_bytes_max lowered to kFuzzFrameBytesMax so that a crafted length
// cannot make every run allocate 17 or 256 MiB.
//
// Properties, for any bytes:
//   1. OnHeader accepts exactly the lengths within [kFrameBodyBytesMin,
//      frame_bytes_max]; the reader never crashes or reads outside the frame
//      (ASan; the frame is also verified from an exact-size copy with
//      VerifyFrame, which must agree with the reader).
//   2. Every message that verifies converts to domain types without crashing
//      (every Decode* function for its body type; every event of a batch
//      through ValidateEvent); request decoders that accept return values
//      within range.
//   3. What a decoder returns encodes again (Encode*) into a frame that
//      verifies and decodes to the same value.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "schema/category.h"
#include "schema/date.h"
#include "schema/event.h"
#include "schema/rules.h"
#include "schema/wire.h"

namespace loanledger::fuzz {
namespace {

namespace w = loanledger::wire;

constexpr size_t kFuzzFrameBytesMax = size_t{1} << 20;  // well above libFuzzer's input sizes
constexpr size_t kFramesPerStreamMax = 64;              // frames read from one input

// Limits for re-verifying our own encodings (they may exceed the fuzz bound).
constexpr w::FrameLimits kReencodeLimits{w::kReplyFrameBytesMax, w::kVerifierDepthMax,
                                         w::kReplyTablesMax};

// Verifies a frame we encoded; it must pass.
const w::Message& Reverify(const w::Frame& frame, std::vector<uint8_t>& storage) {
  Result<const w::Message*> m = w::VerifyFrame(std::span<const uint8_t>(frame.data(), frame.size()),
                                               kReencodeLimits, storage);
  FUZZ_CHECK(m.ok(), "a re-encoded frame fails verification: %s", m.status().ToString().c_str());
  return **m;
}

bool SameDouble(const std::optional<double>& a, const std::optional<double>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  return std::memcmp(&*a, &*b, sizeof(double)) == 0;  // NaN-safe, bit for bit
}

bool SameRows(const std::vector<ReportRow>& a, const std::vector<ReportRow>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    ReportRow x = a[i], y = b[i];
    if (!SameDouble(x.yoy_growth_pct, y.yoy_growth_pct)) return false;
    x.yoy_growth_pct.reset();
    y.yoy_growth_pct.reset();
    if (!(x == y)) return false;
  }
  return true;
}

void ConvertSubmitBatch(const w::SubmitBatch& body) {
  Result<std::vector<LoanEvent>> events = w::DecodeSubmitBatch(body);
  if (!events.ok()) return;
  FUZZ_CHECK(!events->empty() && events->size() <= kBatchEventsMax, "a decoded batch of %zu events",
             events->size());
  for (const LoanEvent& e : *events) {
    if (std::optional<FieldError> invalid = ValidateEvent(e)) {
      FUZZ_CHECK(invalid->reason != Reason::kOk && !invalid->message.empty(),
                 "ValidateEvent refused without a reason");
    }
  }
  std::vector<uint8_t> storage;
  const w::Frame again = w::EncodeSubmitBatch(7, *events, body.stream(), body.stream_batch());
  const w::Message& m = Reverify(again, storage);
  FUZZ_CHECK(m.body_type() == w::Body::SubmitBatch, "re-encoded batch has another type");
  Result<std::vector<LoanEvent>> reread = w::DecodeSubmitBatch(*m.body_as_SubmitBatch());
  FUZZ_CHECK(reread.ok() && *reread == *events, "a batch does not survive encode + decode");
  FUZZ_CHECK(m.body_as_SubmitBatch()->stream() == body.stream() &&
                 m.body_as_SubmitBatch()->stream_batch() == body.stream_batch(),
             "a batch's stream does not survive encode + decode");
}

void ConvertReportRequest(const w::ReportRequest& body) {
  Result<ReportQuery> q = w::DecodeReportRequest(body);
  if (!q.ok()) return;
  FUZZ_CHECK(q->date >= kDayMin && q->date <= kDayMax, "report date %d accepted", q->date);
  for (Category c : q->categories) {
    // TOTAL and the ids of a rules file's categories (the ledger checks its own rules).
    FUZZ_CHECK(static_cast<size_t>(c) <= kRuleCategoriesMax, "category %u accepted", unsigned(c));
  }
  FUZZ_CHECK(q->by <= GroupBy::kRegionGroup, "group-by %u accepted", unsigned(q->by));
  FUZZ_CHECK(!q->scope_institution, "the wire set a scope");
  std::vector<uint8_t> storage;
  const w::Message& m = Reverify(w::EncodeReportRequest(1, *q), storage);
  Result<ReportQuery> reread = w::DecodeReportRequest(*m.body_as_ReportRequest());
  FUZZ_CHECK(reread.ok() && reread->date == q->date && reread->categories == q->categories &&
                 reread->by == q->by,
             "a report request does not survive encode + decode");
}

void ConvertSeriesRequest(const w::SeriesRequest& body) {
  Result<SeriesQuery> q = w::DecodeSeriesRequest(body);
  if (!q.ok()) return;
  FUZZ_CHECK(q->from >= kDayMin && q->to <= kDayMax && q->from <= q->to, "series %d..%d accepted",
             q->from, q->to);
  FUZZ_CHECK(static_cast<size_t>(q->category) <= kRuleCategoriesMax &&
                 static_cast<unsigned>(q->step) <= 3 && q->by <= GroupBy::kRegionGroup,
             "series category %u step %u by %u accepted", unsigned(q->category), unsigned(q->step),
             unsigned(q->by));
  std::vector<uint8_t> storage;
  const w::Message& m = Reverify(w::EncodeSeriesRequest(1, *q), storage);
  Result<SeriesQuery> reread = w::DecodeSeriesRequest(*m.body_as_SeriesRequest());
  FUZZ_CHECK(reread.ok() && reread->category == q->category && reread->from == q->from &&
                 reread->to == q->to && reread->step == q->step && reread->by == q->by,
             "a series request does not survive encode + decode");
}

void ConvertReplies(const w::Message& message) {
  std::vector<uint8_t> storage;
  switch (message.body_type()) {
    case w::Body::HelloOk: {
      const w::HelloOkInfo info = w::DecodeHelloOk(*message.body_as_HelloOk());
      const w::Message& m = Reverify(w::EncodeHelloOk(1, info), storage);
      const w::HelloOkInfo again = w::DecodeHelloOk(*m.body_as_HelloOk());
      FUZZ_CHECK(again.role == info.role && again.institution_id == info.institution_id &&
                     again.server_version == info.server_version,
                 "HelloOk does not survive encode + decode");
      break;
    }
    case w::Body::Ack: {
      const w::AckInfo ack = w::DecodeAck(*message.body_as_Ack());
      const w::Message& m = Reverify(w::EncodeAck(1, ack), storage);
      const w::AckInfo again = w::DecodeAck(*m.body_as_Ack());
      FUZZ_CHECK(again.batch_no == ack.batch_no && again.events_applied == ack.events_applied &&
                     again.events_duplicate == ack.events_duplicate,
                 "Ack does not survive encode + decode");
      break;
    }
    case w::Body::Rejected: {
      const std::vector<w::RejectionEntry> r = w::DecodeRejected(*message.body_as_Rejected());
      for (const w::RejectionEntry& e : r) (void)ReasonName(e.reason);
      const bool skipped = message.body_as_Rejected()->skipped();
      const w::Message& m = Reverify(w::EncodeRejected(1, r, skipped), storage);
      const std::vector<w::RejectionEntry> again = w::DecodeRejected(*m.body_as_Rejected());
      bool same = again.size() == r.size() && m.body_as_Rejected()->skipped() == skipped;
      for (size_t i = 0; same && i < r.size(); ++i) {
        same = again[i].index == r[i].index && again[i].reason == r[i].reason &&
               again[i].message == r[i].message;
      }
      FUZZ_CHECK(same, "Rejected does not survive encode + decode");
      break;
    }
    case w::Body::ReportReply: {
      const Report report = w::DecodeReportReply(*message.body_as_ReportReply());
      const w::Message& m = Reverify(w::EncodeReportReply(1, report), storage);
      const Report again = w::DecodeReportReply(*m.body_as_ReportReply());
      FUZZ_CHECK(again.date == report.date && SameRows(again.rows, report.rows),
                 "ReportReply does not survive encode + decode");
      break;
    }
    case w::Body::SeriesReply: {
      const Series series = w::DecodeSeriesReply(*message.body_as_SeriesReply());
      const w::Message& m = Reverify(w::EncodeSeriesReply(1, series), storage);
      const Series again = w::DecodeSeriesReply(*m.body_as_SeriesReply());
      FUZZ_CHECK(again.category == series.category && again.step == series.step &&
                     again.by == series.by && again.points == series.points,
                 "SeriesReply does not survive encode + decode");
      break;
    }
    case w::Body::LoanReply: {
      // Category ids come from the server's rules (up to kRuleCategoriesMax, names beside
      // them); the mask keeps those below 32 and the round trip below must keep it whole.
      const LoanView loan = w::DecodeLoanReply(*message.body_as_LoanReply());
      const w::Message& m = Reverify(w::EncodeLoanReply(1, loan), storage);
      const LoanView again = w::DecodeLoanReply(*m.body_as_LoanReply());
      FUZZ_CHECK(again.institution_id == loan.institution_id && again.loan_id == loan.loan_id &&
                     again.last_seq == loan.last_seq &&
                     again.last_business_date == loan.last_business_date &&
                     again.balance_fen == loan.balance_fen && again.attributes == loan.attributes &&
                     again.categories == loan.categories,
                 "LoanReply does not survive encode + decode");
      break;
    }
    case w::Body::VerifyReply: {
      const w::VerifySummary s = w::DecodeVerifyReply(*message.body_as_VerifyReply());
      const w::Message& m = Reverify(w::EncodeVerifyReply(1, s), storage);
      const w::VerifySummary again = w::DecodeVerifyReply(*m.body_as_VerifyReply());
      bool same = again.batches_replayed == s.batches_replayed &&
                  again.events_replayed == s.events_replayed &&
                  again.loans_checked == s.loans_checked &&
                  again.cells_checked == s.cells_checked &&
                  again.differences.size() == s.differences.size();
      for (size_t i = 0; same && i < s.differences.size(); ++i) {
        same = again.differences[i].what == s.differences[i].what &&
               again.differences[i].expected == s.differences[i].expected &&
               again.differences[i].actual == s.differences[i].actual;
      }
      FUZZ_CHECK(same, "VerifyReply does not survive encode + decode");
      break;
    }
    case w::Body::StatsReply:
      (void)w::View(message.body_as_StatsReply()->text());
      break;
    case w::Body::CompactReply: {
      const w::CompactSummary s = w::DecodeCompactReply(*message.body_as_CompactReply());
      const w::Message& m = Reverify(w::EncodeCompactReply(1, s), storage);
      const w::CompactSummary again = w::DecodeCompactReply(*m.body_as_CompactReply());
      FUZZ_CHECK(again.duration_ms == s.duration_ms &&
                     again.live_sst_bytes_before == s.live_sst_bytes_before &&
                     again.live_sst_bytes_after == s.live_sst_bytes_after,
                 "CompactReply does not survive encode + decode");
      break;
    }
    case w::Body::Error: {
      const Status s = w::StatusFromError(*message.body_as_Error());
      FUZZ_CHECK(!s.ok(), "an Error frame converts to OK");
      break;
    }
    default:
      break;
  }
}

// Property 2 and 3 for one verified message.
void Convert(const w::Message& message) {
  (void)message.request_id();
  const std::string_view name = w::BodyName(message.body_type());
  FUZZ_CHECK(!name.empty() && name != "UNKNOWN" && message.body() != nullptr,
             "a verified message of unknown type %u", unsigned(message.body_type()));
  switch (message.body_type()) {
    case w::Body::Hello: {
      const w::Hello* hello = message.body_as_Hello();
      (void)w::View(hello->token());
      (void)w::View(hello->client_name());
      break;
    }
    case w::Body::SubmitBatch:
      ConvertSubmitBatch(*message.body_as_SubmitBatch());
      break;
    case w::Body::ReportRequest:
      ConvertReportRequest(*message.body_as_ReportRequest());
      break;
    case w::Body::SeriesRequest:
      ConvertSeriesRequest(*message.body_as_SeriesRequest());
      break;
    case w::Body::LoanRequest: {
      const w::LoanRequest* r = message.body_as_LoanRequest();
      (void)IsValidInstitutionId(w::View(r->institution_id()));
      (void)IsValidLoanId(w::View(r->loan_id()));
      break;
    }
    default:
      ConvertReplies(message);
      break;
  }
}

// Reads the input as a frame stream, as a session would, until the stream
// ends or a frame is refused (the peer would be disconnected there).
void ReadStream(std::span<const uint8_t> data, w::FrameLimits limits, bool take) {
  w::FrameReader reader(limits);
  size_t pos = 0;
  for (size_t frames = 0; frames < kFramesPerStreamMax; ++frames) {
    if (data.size() - pos < w::kFrameHeaderBytes) return;
    const size_t frame_start = pos;
    std::memcpy(reader.header(), data.data() + pos, w::kFrameHeaderBytes);
    pos += w::kFrameHeaderBytes;
    const uint32_t n = w::DecodeFrameLength(reader.header());
    const Status header = reader.OnHeader();
    const bool length_ok = n >= w::kFrameBodyBytesMin && n <= limits.frame_bytes_max;
    FUZZ_CHECK(header.ok() == length_ok, "OnHeader %s a length of %u",
               header.ok() ? "accepted" : "refused", n);
    if (!header.ok()) {
      FUZZ_CHECK(header.code() == (n > limits.frame_bytes_max ? Status::Code::kResourceExhausted
                                                              : Status::Code::kInvalidArgument),
                 "OnHeader refused length %u with %s", n, header.ToString().c_str());
      return;
    }
    FUZZ_CHECK(reader.body_size() == n, "body_size %zu for a length of %u", reader.body_size(), n);
    if (data.size() - pos < n) return;  // the peer stopped inside the frame
    std::memcpy(reader.body(), data.data() + pos, n);
    pos += n;

    // The same frame from an exact-size copy: an over-read is an ASan report.
    const std::vector<uint8_t> frame(data.begin() + frame_start, data.begin() + pos);
    std::vector<uint8_t> storage;
    Result<const w::Message*> verified = w::VerifyFrame(frame, limits, storage);

    if (take) {
      Result<w::OwnedMessage> owned = reader.TakeMessage();
      FUZZ_CHECK(owned.ok() == verified.ok(), "TakeMessage and VerifyFrame disagree: %s / %s",
                 owned.status().ToString().c_str(), verified.status().ToString().c_str());
      if (!owned.ok()) return;
      w::OwnedMessage moved = std::move(*owned);  // the message must survive the move
      Convert(*moved.message);
    } else {
      Result<const w::Message*> message = reader.OnBody();
      FUZZ_CHECK(message.ok() == verified.ok(), "OnBody and VerifyFrame disagree: %s / %s",
                 message.status().ToString().c_str(), verified.status().ToString().c_str());
      if (!message.ok()) return;
      Convert(**message);
      reader.Shrink();
    }
    Convert(**verified);
  }
}

}  // namespace
}  // namespace loanledger::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loanledger::fuzz;
  const std::span<const uint8_t> input(data, size);
  loanledger::wire::FrameLimits server = loanledger::wire::kRequestLimits;
  server.frame_bytes_max = kFuzzFrameBytesMax;
  ReadStream(input, server, /*take=*/false);
  loanledger::wire::FrameLimits client = loanledger::wire::kReplyLimits;
  client.frame_bytes_max = kFuzzFrameBytesMax;
  ReadStream(input, client, /*take=*/true);
  return 0;
}
