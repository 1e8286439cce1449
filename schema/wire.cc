#include "schema/wire.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "schema/category.h"
#include "schema/check.h"
#include "schema/rules.h"

namespace loanledger::wire {
namespace {

namespace fb = flatbuffers;

// FlatBuffers align every scalar relative to the END of the buffer. A frame
// made with FinishSizePrefixed has (4 + N) % 8 == 0, one made with Finish and
// a length written in front has N % 8 == 0. The verifier checks alignment
// relative to where verification starts, so we start at the length prefix
// (size-prefixed verification) when N % 8 == 4 and at the body otherwise, and
// lay the bytes out so that this start is 16-aligned in memory: both
// conventions are accepted and no read is misaligned.
bool SizePrefixedLayout(size_t body_size) { return body_size % 8 == 4; }

Status CheckLength(size_t n, const FrameLimits& limits) {
  if (n < kFrameBodyBytesMin) {
    return Status::InvalidArgument("frame of " + std::to_string(n) + " bytes is too short");
  }
  if (n > limits.frame_bytes_max) {
    return Status::ResourceExhausted("frame of " + std::to_string(n) +
                                     " bytes exceeds the maximum of " +
                                     std::to_string(limits.frame_bytes_max));
  }
  return Status::Ok();
}

// The FlatBuffers 2.0.8 verifier checks a vector's length word for 4-byte
// alignment but not its elements for their own: a crafted frame can place a
// [ulong] at 4 mod 8, and reading it would be a misaligned load (undefined
// behaviour; found by fuzz_frame). Our encoders always align the elements,
// so such a frame is refused like any other the verifier would refuse.
template <typename T>
bool Aligned(const fb::Vector<T>* v) {
  return v == nullptr || reinterpret_cast<uintptr_t>(v->Data()) % alignof(T) == 0;
}

Status CheckVectorAlignment(const Message& message) {
  bool ok = true;
  switch (message.body_type()) {
    case Body::ReportReply:
      ok = Aligned(message.body_as_ReportReply()->stream_positions());
      break;
    case Body::SeriesReply:
      ok = Aligned(message.body_as_SeriesReply()->stream_positions());
      break;
    default:
      break;
  }
  if (ok) return Status::Ok();
  return Status::InvalidArgument("frame failed the FlatBuffers verifier: misaligned vector");
}

Result<const Message*> Verify(const uint8_t* base, size_t len, bool size_prefixed,
                              const FrameLimits& limits) {
  fb::Verifier::Options options;
  options.max_depth = limits.depth_max;
  options.max_tables = limits.tables_max;
  options.check_alignment = true;
  options.check_nested_flatbuffers = true;
  fb::Verifier verifier(base, len, options);
  const bool ok =
      size_prefixed ? VerifySizePrefixedMessageBuffer(verifier) : VerifyMessageBuffer(verifier);
  if (!ok) return Status::InvalidArgument("frame failed the FlatBuffers verifier");
  const Message* message = size_prefixed ? GetSizePrefixedMessage(base) : GetMessage(base);
  // The generated verifier accepts union types it does not know and a
  // missing body; neither is a request we could act on.
  const auto type = static_cast<uint8_t>(message->body_type());
  if (type == 0 || type > static_cast<uint8_t>(Body::MAX)) {
    return Status::InvalidArgument("unknown message type " + std::to_string(type));
  }
  if (message->body() == nullptr) {
    return Status::InvalidArgument(std::string("message ") +
                                   std::string(BodyName(message->body_type())) + " has no body");
  }
  if (Status s = CheckVectorAlignment(*message); !s.ok()) return s;
  return message;
}

template <typename T>
Frame Finish(fb::FlatBufferBuilder& b, uint64_t request_id, Body type, fb::Offset<T> body) {
  const auto message = CreateMessage(b, request_id, type, body.Union());
  FinishSizePrefixedMessageBuffer(b, message);
  Frame frame = b.Release();
  LL_CHECK(frame.size() >= kFrameHeaderBytes + kFrameBodyBytesMin);
  LL_CHECK(DecodeFrameLength(frame.data()) == frame.size() - kFrameHeaderBytes);
  return frame;
}

fb::Offset<Event> BuildEvent(fb::FlatBufferBuilder& b, const LoanEvent* e,
                             const LoanAttributes& a) {
  fb::Offset<fb::String> institution_id, loan_id;
  if (e != nullptr) {
    institution_id = b.CreateString(e->institution_id);
    loan_id = b.CreateString(e->loan_id);
  }
  const auto industry_code = b.CreateString(a.industry_code);
  const auto region_code = b.CreateString(a.region_code);
  EventBuilder eb(b);
  if (e != nullptr) {
    eb.add_institution_id(institution_id);
    eb.add_loan_id(loan_id);
    eb.add_seq(e->seq);
    eb.add_business_date(e->business_date);
    eb.add_kind(static_cast<EventKind>(e->kind));
    eb.add_amount_fen(e->amount_fen);
  }
  eb.add_borrower_type(static_cast<BorrowerType>(a.borrower_type));
  eb.add_enterprise_size(static_cast<EnterpriseSize>(a.enterprise_size));
  eb.add_industry_code(industry_code);
  eb.add_region_code(region_code);
  eb.add_term_months(a.term_months);
  eb.add_credit_line_fen(a.credit_line_fen);
  eb.add_srdi(a.srdi);
  eb.add_tech_enterprise(a.tech_enterprise);
  eb.add_green(a.green);
  eb.add_elderly_care(a.elderly_care);
  eb.add_digital_economy(a.digital_economy);
  return eb.Finish();
}

LoanAttributes DecodeAttributes(const Event& e) {
  LoanAttributes a;
  a.borrower_type = static_cast<loanledger::BorrowerType>(e.borrower_type());
  a.enterprise_size = static_cast<loanledger::EnterpriseSize>(e.enterprise_size());
  a.industry_code = std::string(View(e.industry_code()));
  a.region_code = std::string(View(e.region_code()));
  a.term_months = e.term_months();
  a.credit_line_fen = e.credit_line_fen();
  a.srdi = e.srdi();
  a.tech_enterprise = e.tech_enterprise();
  a.green = e.green();
  a.elderly_care = e.elderly_care();
  a.digital_economy = e.digital_economy();
  return a;
}

bool DayInRange(int32_t d) { return d >= kDayMin && d <= kDayMax; }

Result<loanledger::GroupBy> CheckGroupBy(wire::GroupBy by) {
  const auto v = static_cast<uint8_t>(by);
  if (v > static_cast<uint8_t>(wire::GroupBy::MAX)) {
    return Status::InvalidArgument("unknown group-by " + std::to_string(v));
  }
  return static_cast<loanledger::GroupBy>(v);
}

Result<Category> CheckCategory(uint8_t v) {
  // TOTAL and up to kRuleCategoriesMax of a rules file; the ledger checks its own.
  if (v > kRuleCategoriesMax)
    return Status::InvalidArgument("unknown category " + std::to_string(v));
  return static_cast<Category>(v);
}

}  // namespace

uint32_t DecodeFrameLength(const uint8_t header[kFrameHeaderBytes]) {
  return uint32_t{header[0]} | (uint32_t{header[1]} << 8) | (uint32_t{header[2]} << 16) |
         (uint32_t{header[3]} << 24);
}

Status FrameReader::OnHeader() {
  const size_t n = DecodeFrameLength(header_);
  body_size_ = 0;
  if (Status s = CheckLength(n, limits_); !s.ok()) return s;
  body_size_ = n;
  body_offset_ = SizePrefixedLayout(n) ? kFrameHeaderBytes : 0;
  // vector::resize zero-fills only growth; the body is overwritten anyway.
  buffer_.resize(body_offset_ + n);
  std::memcpy(buffer_.data(), header_, body_offset_);
  LL_CHECK(buffer_.size() == body_offset_ + body_size_);
  return Status::Ok();
}

Result<const Message*> FrameReader::OnBody() {
  LL_CHECK(body_size_ >= kFrameBodyBytesMin);
  LL_CHECK(buffer_.size() == body_offset_ + body_size_);
  return Verify(buffer_.data(), buffer_.size(), body_offset_ == kFrameHeaderBytes, limits_);
}

Result<OwnedMessage> FrameReader::TakeMessage() {
  Result<const Message*> message = OnBody();
  if (!message.ok()) return message.status();
  OwnedMessage owned;
  owned.bytes = std::move(buffer_);
  owned.message = *message;
  buffer_ = std::vector<uint8_t>();
  body_size_ = 0;
  LL_CHECK(reinterpret_cast<const uint8_t*>(owned.message) >= owned.bytes.data());
  return owned;
}

void FrameReader::Shrink() {
  // Keep up to 64 KiB: queries and acks fit; a batch buffer is given back.
  constexpr size_t kKeepBytesMax = 64u << 10;
  if (buffer_.capacity() > kKeepBytesMax) std::vector<uint8_t>().swap(buffer_);
}

Result<const Message*> VerifyFrame(std::span<const uint8_t> frame, const FrameLimits& limits,
                                   std::vector<uint8_t>& storage) {
  if (frame.size() < kFrameHeaderBytes) return Status::InvalidArgument("frame without a header");
  const size_t n = DecodeFrameLength(frame.data());
  if (Status s = CheckLength(n, limits); !s.ok()) return s;
  if (frame.size() != kFrameHeaderBytes + n) {
    return Status::InvalidArgument("frame length does not match the bytes given");
  }
  const bool prefixed = SizePrefixedLayout(n);
  const auto* begin = frame.data() + (prefixed ? 0 : kFrameHeaderBytes);
  storage.assign(begin, frame.data() + frame.size());
  return Verify(storage.data(), storage.size(), prefixed, limits);
}

// ---------------------------------------------------------------------------
// Encoders

Frame EncodeHello(uint64_t request_id, std::string_view token, std::string_view client_name) {
  fb::FlatBufferBuilder b(256);
  const auto t = b.CreateString(token);
  const auto n = b.CreateString(client_name);
  return Finish(b, request_id, Body::Hello, CreateHello(b, t, n));
}

Frame EncodeHelloOk(uint64_t request_id, const HelloOkInfo& info) {
  fb::FlatBufferBuilder b(256);
  const auto i = b.CreateString(info.institution_id);
  const auto v = b.CreateString(info.server_version);
  return Finish(b, request_id, Body::HelloOk, CreateHelloOk(b, info.role, i, v));
}

Frame EncodeSubmitBatch(uint64_t request_id, std::span<const LoanEvent> events, uint64_t stream,
                        uint64_t stream_batch) {
  // ~120 bytes per event on the wire.
  fb::FlatBufferBuilder b(256 + events.size() * 128);
  std::vector<fb::Offset<Event>> offsets;
  offsets.reserve(events.size());
  for (const LoanEvent& e : events) offsets.push_back(BuildEvent(b, &e, e.attributes));
  const auto v = b.CreateVector(offsets);
  return Finish(b, request_id, Body::SubmitBatch, CreateSubmitBatch(b, v, stream, stream_batch));
}

Frame EncodeAck(uint64_t request_id, const AckInfo& ack) {
  fb::FlatBufferBuilder b(128);
  return Finish(b, request_id, Body::Ack,
                CreateAck(b, ack.batch_no, ack.events_applied, ack.events_duplicate));
}

Frame EncodeRejected(uint64_t request_id, std::span<const RejectionEntry> rejections,
                     bool skipped) {
  fb::FlatBufferBuilder b(256 + rejections.size() * 96);
  std::vector<fb::Offset<EventRejection>> offsets;
  offsets.reserve(rejections.size());
  for (const RejectionEntry& r : rejections) {
    const auto name = b.CreateString(ReasonName(r.reason));
    const auto message = b.CreateString(r.message);
    offsets.push_back(
        CreateEventRejection(b, r.index, static_cast<uint16_t>(r.reason), name, message));
  }
  const auto v = b.CreateVector(offsets);
  return Finish(b, request_id, Body::Rejected, CreateRejected(b, v, skipped));
}

Frame EncodeReportRequest(uint64_t request_id, const ReportQuery& query) {
  fb::FlatBufferBuilder b(256);
  std::vector<uint8_t> categories;
  categories.reserve(query.categories.size());
  for (Category c : query.categories) categories.push_back(static_cast<uint8_t>(c));
  const auto v = b.CreateVector(categories);
  fb::Offset<fb::Vector<fb::Offset<fb::String>>> names;
  if (!query.category_names.empty()) names = b.CreateVectorOfStrings(query.category_names);
  return Finish(b, request_id, Body::ReportRequest,
                CreateReportRequest(b, query.date, v, static_cast<wire::GroupBy>(query.by), names));
}

Frame EncodeReportReply(uint64_t request_id, const Report& report) {
  fb::FlatBufferBuilder b(256 + report.rows.size() * 128);
  std::vector<fb::Offset<wire::ReportRow>> rows;
  rows.reserve(report.rows.size());
  for (const loanledger::ReportRow& r : report.rows) {
    fb::Offset<fb::String> group;
    if (!r.group.empty()) group = b.CreateString(r.group);
    fb::Offset<fb::String> name;
    if (!r.category_name.empty()) name = b.CreateString(r.category_name);
    // FlatBuffers leaves out a field equal to its default, and -0.0 == 0.0:
    // a growth of -0.0 is written explicitly so that it arrives as sent.
    const bool negative_zero =
        r.yoy_growth_pct && *r.yoy_growth_pct == 0.0 && std::signbit(*r.yoy_growth_pct);
    b.ForceDefaults(negative_zero);
    rows.push_back(CreateReportRow(
        b, static_cast<uint8_t>(r.category), group, r.balance_fen, r.loan_count,
        r.balance_year_ago_fen, r.yoy_growth_pct.has_value(), r.yoy_growth_pct.value_or(0.0),
        r.ytd_increase_fen, r.disbursed_ytd_fen, r.repaid_ytd_fen, r.written_off_ytd_fen, name));
    b.ForceDefaults(false);
  }
  const auto v = b.CreateVector(rows);
  fb::Offset<fb::String> version;
  if (!report.rules_version.empty()) version = b.CreateString(report.rules_version);
  fb::Offset<fb::Vector<uint64_t>> positions;
  if (!report.stream_positions.empty()) positions = b.CreateVector(report.stream_positions);
  return Finish(b, request_id, Body::ReportReply,
                CreateReportReply(b, report.date, v, version, positions));
}

Frame EncodeSeriesRequest(uint64_t request_id, const SeriesQuery& query) {
  fb::FlatBufferBuilder b(128);
  fb::Offset<fb::String> name;
  if (!query.category_name.empty()) name = b.CreateString(query.category_name);
  return Finish(b, request_id, Body::SeriesRequest,
                CreateSeriesRequest(b, static_cast<uint8_t>(query.category), query.from, query.to,
                                    static_cast<wire::Step>(query.step),
                                    static_cast<wire::GroupBy>(query.by), name));
}

Frame EncodeSeriesReply(uint64_t request_id, const Series& series) {
  fb::FlatBufferBuilder b(256 + series.points.size() * 48);
  std::vector<fb::Offset<wire::SeriesPoint>> points;
  points.reserve(series.points.size());
  for (const loanledger::SeriesPoint& p : series.points) {
    fb::Offset<fb::String> group;
    if (!p.group.empty()) group = b.CreateString(p.group);
    points.push_back(CreateSeriesPoint(b, p.date, group, p.balance_fen, p.loan_count));
  }
  const auto v = b.CreateVector(points);
  fb::Offset<fb::String> name, version;
  if (!series.category_name.empty()) name = b.CreateString(series.category_name);
  if (!series.rules_version.empty()) version = b.CreateString(series.rules_version);
  fb::Offset<fb::Vector<uint64_t>> positions;
  if (!series.stream_positions.empty()) positions = b.CreateVector(series.stream_positions);
  return Finish(b, request_id, Body::SeriesReply,
                CreateSeriesReply(
                    b, static_cast<uint8_t>(series.category), static_cast<wire::Step>(series.step),
                    static_cast<wire::GroupBy>(series.by), v, name, version, positions));
}

Frame EncodeLoanRequest(uint64_t request_id, std::string_view institution_id,
                        std::string_view loan_id) {
  fb::FlatBufferBuilder b(256);
  const auto i = b.CreateString(institution_id);
  const auto l = b.CreateString(loan_id);
  return Finish(b, request_id, Body::LoanRequest, CreateLoanRequest(b, i, l));
}

Frame EncodeLoanReply(uint64_t request_id, const LoanView& loan) {
  fb::FlatBufferBuilder b(512);
  const auto i = b.CreateString(loan.institution_id);
  const auto l = b.CreateString(loan.loan_id);
  const auto attributes = BuildEvent(b, nullptr, loan.attributes);
  std::vector<uint8_t> categories;
  for (uint8_t c = 0; c < 32; ++c) {
    if (loan.categories & (CategoryMask{1} << c)) categories.push_back(c);
  }
  const auto c = b.CreateVector(categories);
  fb::Offset<fb::Vector<fb::Offset<fb::String>>> names;
  if (!loan.category_names.empty()) names = b.CreateVectorOfStrings(loan.category_names);
  return Finish(b, request_id, Body::LoanReply,
                CreateLoanReply(b, i, l, loan.last_seq, loan.last_business_date, loan.balance_fen,
                                attributes, c, names));
}

Frame EncodeVerifyRequest(uint64_t request_id) {
  fb::FlatBufferBuilder b(64);
  return Finish(b, request_id, Body::VerifyRequest, CreateVerifyRequest(b));
}

Frame EncodeVerifyReply(uint64_t request_id, const VerifySummary& s) {
  fb::FlatBufferBuilder b(256 + s.differences.size() * 96);
  std::vector<fb::Offset<VerifyDifference>> diffs;
  diffs.reserve(s.differences.size());
  for (const VerifyDiff& d : s.differences) {
    const auto what = b.CreateString(d.what);
    diffs.push_back(CreateVerifyDifference(b, what, d.expected, d.actual));
  }
  const auto v = b.CreateVector(diffs);
  return Finish(b, request_id, Body::VerifyReply,
                CreateVerifyReply(b, s.batches_replayed, s.events_replayed, s.loans_checked,
                                  s.cells_checked, v));
}

Frame EncodeCompactRequest(uint64_t request_id) {
  fb::FlatBufferBuilder b(64);
  return Finish(b, request_id, Body::CompactRequest, CreateCompactRequest(b));
}

Frame EncodeCompactReply(uint64_t request_id, const CompactSummary& s) {
  fb::FlatBufferBuilder b(128);
  return Finish(
      b, request_id, Body::CompactReply,
      CreateCompactReply(b, s.duration_ms, s.live_sst_bytes_before, s.live_sst_bytes_after));
}

Frame EncodeStatsRequest(uint64_t request_id) {
  fb::FlatBufferBuilder b(64);
  return Finish(b, request_id, Body::StatsRequest, CreateStatsRequest(b));
}

Frame EncodeStatsReply(uint64_t request_id, std::string_view text) {
  fb::FlatBufferBuilder b(256 + text.size());
  const auto t = b.CreateString(text);
  return Finish(b, request_id, Body::StatsReply, CreateStatsReply(b, t));
}

Frame EncodeCheckpointRequest(uint64_t request_id, std::string_view dir) {
  fb::FlatBufferBuilder b(256 + dir.size());
  const auto d = b.CreateString(dir);
  return Finish(b, request_id, Body::CheckpointRequest, CreateCheckpointRequest(b, d));
}

Frame EncodeCheckpointReply(uint64_t request_id, const CheckpointSummary& s) {
  fb::FlatBufferBuilder b(256 + s.dir.size());
  const auto d = b.CreateString(s.dir);
  return Finish(b, request_id, Body::CheckpointReply,
                CreateCheckpointReply(b, d, s.stream_seq, s.batches));
}

Frame EncodeBackupRequest(uint64_t request_id, std::string_view dir, uint32_t keep) {
  fb::FlatBufferBuilder b(256 + dir.size());
  const auto d = b.CreateString(dir);
  return Finish(b, request_id, Body::BackupRequest, CreateBackupRequest(b, d, keep));
}

Frame EncodeBackupReply(uint64_t request_id, const BackupSummary& s) {
  fb::FlatBufferBuilder b(256 + s.dir.size());
  const auto d = b.CreateString(s.dir);
  return Finish(b, request_id, Body::BackupReply,
                CreateBackupReply(b, d, s.backup_id, s.batches, s.stream_seq, s.size_bytes,
                                  s.new_bytes, s.files, s.backups_kept));
}

Frame EncodeError(uint64_t request_id, ErrorCode code, std::string_view message,
                  std::string_view leader) {
  fb::FlatBufferBuilder b(256);
  const auto m = b.CreateString(message);
  const auto l = leader.empty() ? fb::Offset<fb::String>() : b.CreateString(leader);
  return Finish(b, request_id, Body::Error, CreateError(b, code, m, l));
}

// ---------------------------------------------------------------------------
// Decoders

LoanEvent DecodeEvent(const Event& e) {
  LoanEvent out;
  out.institution_id = std::string(View(e.institution_id()));
  out.loan_id = std::string(View(e.loan_id()));
  out.seq = e.seq();
  out.business_date = e.business_date();
  out.kind = static_cast<loanledger::EventKind>(e.kind());
  out.amount_fen = e.amount_fen();
  out.attributes = DecodeAttributes(e);
  return out;
}

Result<std::vector<LoanEvent>> DecodeSubmitBatch(const SubmitBatch& batch) {
  const auto* events = batch.events();
  if (events == nullptr || events->size() == 0) {
    return Status::InvalidArgument("a batch needs at least one event");
  }
  if (events->size() > kBatchEventsMax) {
    return Status::InvalidArgument("a batch holds at most " + std::to_string(kBatchEventsMax) +
                                   " events, this one " + std::to_string(events->size()));
  }
  std::vector<LoanEvent> out;
  out.reserve(events->size());
  for (const Event* e : *events) out.push_back(DecodeEvent(*e));
  return out;
}

Result<ReportQuery> DecodeReportRequest(const ReportRequest& request) {
  ReportQuery q;
  if (!DayInRange(request.date())) {
    return Status::InvalidArgument("report date " + std::to_string(request.date()) +
                                   " outside 1990-01-01..2199-12-31");
  }
  q.date = request.date();
  if (const auto* categories = request.categories()) {
    if (categories->size() > (kRuleCategoriesMax + 1) * 4) {
      return Status::InvalidArgument("too many categories");
    }
    for (uint8_t c : *categories) {
      Result<Category> category = CheckCategory(c);
      if (!category.ok()) return category.status();
      q.categories.push_back(*category);
    }
  }
  if (const auto* names = request.category_names()) {
    if (names->size() > (kRuleCategoriesMax + 1) * 4) {
      return Status::InvalidArgument("too many categories");
    }
    for (const fb::String* name : *names) {
      if (name == nullptr || name->size() == 0 || name->size() > kRuleNameBytesMax)
        return Status::InvalidArgument("bad category name");
      q.category_names.emplace_back(View(name));
    }
  }
  Result<loanledger::GroupBy> by = CheckGroupBy(request.by());
  if (!by.ok()) return by.status();
  q.by = *by;
  return q;
}

Result<SeriesQuery> DecodeSeriesRequest(const SeriesRequest& request) {
  SeriesQuery q;
  Result<Category> category = CheckCategory(request.category());
  if (!category.ok()) return category.status();
  q.category = *category;
  if (!DayInRange(request.from()) || !DayInRange(request.to())) {
    return Status::InvalidArgument("series dates outside 1990-01-01..2199-12-31");
  }
  if (request.from() > request.to()) {
    return Status::InvalidArgument("series from " + FormatDate(request.from()) + " is after to " +
                                   FormatDate(request.to()));
  }
  q.from = request.from();
  q.to = request.to();
  const auto step = static_cast<uint8_t>(request.step());
  if (step > static_cast<uint8_t>(wire::Step::MAX)) {
    return Status::InvalidArgument("unknown step " + std::to_string(step));
  }
  q.step = static_cast<loanledger::Step>(step);
  if (request.category_name() != nullptr) {
    if (request.category_name()->size() > kRuleNameBytesMax)
      return Status::InvalidArgument("bad category name");
    q.category_name = std::string(View(request.category_name()));
  }
  Result<loanledger::GroupBy> by = CheckGroupBy(request.by());
  if (!by.ok()) return by.status();
  q.by = *by;
  return q;
}

HelloOkInfo DecodeHelloOk(const HelloOk& hello_ok) {
  return HelloOkInfo{hello_ok.role(), std::string(View(hello_ok.institution_id())),
                     std::string(View(hello_ok.server_version()))};
}

AckInfo DecodeAck(const Ack& ack) {
  return AckInfo{ack.batch_no(), ack.events_applied(), ack.events_duplicate()};
}

std::vector<RejectionEntry> DecodeRejected(const Rejected& rejected) {
  std::vector<RejectionEntry> out;
  if (const auto* v = rejected.rejections()) {
    out.reserve(v->size());
    for (const EventRejection* r : *v) {
      out.push_back(RejectionEntry{r->index(), static_cast<Reason>(r->reason()),
                                   std::string(View(r->message()))});
    }
  }
  return out;
}

Report DecodeReportReply(const ReportReply& reply) {
  Report report;
  report.date = reply.date();
  if (const auto* rows = reply.rows()) {
    report.rows.reserve(rows->size());
    for (const wire::ReportRow* r : *rows) {
      loanledger::ReportRow row;
      row.category = static_cast<Category>(r->category());
      row.group = std::string(View(r->group()));
      row.balance_fen = r->balance_fen();
      row.loan_count = r->loan_count();
      row.balance_year_ago_fen = r->balance_year_ago_fen();
      if (r->has_yoy()) row.yoy_growth_pct = r->yoy_growth_pct();
      row.ytd_increase_fen = r->ytd_increase_fen();
      row.disbursed_ytd_fen = r->disbursed_ytd_fen();
      row.repaid_ytd_fen = r->repaid_ytd_fen();
      row.written_off_ytd_fen = r->written_off_ytd_fen();
      row.category_name = std::string(View(r->category_name()));
      report.rows.push_back(std::move(row));
    }
  }
  report.rules_version = std::string(View(reply.rules_version()));
  if (const auto* positions = reply.stream_positions())
    report.stream_positions.assign(positions->begin(), positions->end());
  return report;
}

Series DecodeSeriesReply(const SeriesReply& reply) {
  Series series;
  series.category = static_cast<Category>(reply.category());
  series.step = static_cast<loanledger::Step>(reply.step());
  series.by = static_cast<loanledger::GroupBy>(reply.by());
  series.category_name = std::string(View(reply.category_name()));
  series.rules_version = std::string(View(reply.rules_version()));
  if (const auto* positions = reply.stream_positions())
    series.stream_positions.assign(positions->begin(), positions->end());
  if (const auto* points = reply.points()) {
    series.points.reserve(points->size());
    for (const wire::SeriesPoint* p : *points) {
      series.points.push_back(loanledger::SeriesPoint{p->date(), std::string(View(p->group())),
                                                      p->balance_fen(), p->loan_count()});
    }
  }
  return series;
}

LoanView DecodeLoanReply(const LoanReply& reply) {
  LoanView view;
  view.institution_id = std::string(View(reply.institution_id()));
  view.loan_id = std::string(View(reply.loan_id()));
  view.last_seq = reply.last_seq();
  view.last_business_date = reply.last_business_date();
  view.balance_fen = reply.balance_fen();
  if (reply.attributes() != nullptr) view.attributes = DecodeAttributes(*reply.attributes());
  if (const auto* categories = reply.categories()) {
    for (uint8_t c : *categories) {
      if (c < 32) view.categories |= CategoryMask{1} << c;
    }
  }
  if (const auto* names = reply.category_names()) {
    for (const fb::String* name : *names) view.category_names.emplace_back(View(name));
  }
  return view;
}

VerifySummary DecodeVerifyReply(const VerifyReply& reply) {
  VerifySummary s;
  s.batches_replayed = reply.batches_replayed();
  s.events_replayed = reply.events_replayed();
  s.loans_checked = reply.loans_checked();
  s.cells_checked = reply.cells_checked();
  if (const auto* diffs = reply.differences()) {
    for (const VerifyDifference* d : *diffs) {
      s.differences.push_back(VerifyDiff{std::string(View(d->what())), d->expected(), d->actual()});
    }
  }
  return s;
}

namespace {
fb::Offset<wire::RulesVersion> BuildRulesVersion(fb::FlatBufferBuilder& b,
                                                 const RulesVersionInfo& v) {
  const auto version = b.CreateString(v.version);
  const auto text = b.CreateString(v.text);
  return CreateRulesVersion(b, v.number, version, text, v.applied_ms);
}
RulesVersionInfo ReadRulesVersion(const wire::RulesVersion* v) {
  if (v == nullptr) return {};
  return RulesVersionInfo{v->number(), std::string(View(v->version())),
                          std::string(View(v->text())), v->applied_ms()};
}
}  // namespace

Frame EncodeRulesShowRequest(uint64_t request_id) {
  fb::FlatBufferBuilder b(64);
  return Finish(b, request_id, Body::RulesShowRequest, CreateRulesShowRequest(b));
}

Frame EncodeRulesShowReply(uint64_t request_id, const RulesShowInfo& info) {
  fb::FlatBufferBuilder b(1024 + info.current.text.size());
  const auto current = BuildRulesVersion(b, info.current);
  std::vector<fb::Offset<wire::RulesVersion>> history;
  for (const RulesVersionInfo& v : info.history) history.push_back(BuildRulesVersion(b, v));
  const auto h = b.CreateVector(history);
  const auto rv = b.CreateString(info.recompute_version);
  return Finish(b, request_id, Body::RulesShowReply,
                CreateRulesShowReply(b, current, h, info.recompute_running, rv,
                                     info.recompute_batches_done, info.recompute_batches_total));
}

Frame EncodeRulesApplyRequest(uint64_t request_id, std::string_view text) {
  fb::FlatBufferBuilder b(256 + text.size());
  const auto t = b.CreateString(text);
  return Finish(b, request_id, Body::RulesApplyRequest, CreateRulesApplyRequest(b, t));
}

Frame EncodeRulesApplyReply(uint64_t request_id, const RulesVersionInfo& applied) {
  fb::FlatBufferBuilder b(256 + applied.text.size());
  const auto v = BuildRulesVersion(b, applied);
  return Finish(b, request_id, Body::RulesApplyReply, CreateRulesApplyReply(b, v));
}

RulesShowInfo DecodeRulesShowReply(const RulesShowReply& reply) {
  RulesShowInfo info;
  info.current = ReadRulesVersion(reply.current());
  if (const auto* h = reply.history()) {
    for (const wire::RulesVersion* v : *h) info.history.push_back(ReadRulesVersion(v));
  }
  info.recompute_running = reply.recompute_running();
  info.recompute_version = std::string(View(reply.recompute_version()));
  info.recompute_batches_done = reply.recompute_batches_done();
  info.recompute_batches_total = reply.recompute_batches_total();
  return info;
}

RulesVersionInfo DecodeRulesApplyReply(const RulesApplyReply& reply) {
  return ReadRulesVersion(reply.applied());
}

CompactSummary DecodeCompactReply(const CompactReply& reply) {
  return CompactSummary{reply.duration_ms(), reply.live_sst_bytes_before(),
                        reply.live_sst_bytes_after()};
}

CheckpointSummary DecodeCheckpointReply(const CheckpointReply& reply) {
  return CheckpointSummary{std::string(View(reply.dir())), reply.stream_seq(), reply.batches()};
}

BackupSummary DecodeBackupReply(const BackupReply& reply) {
  return BackupSummary{std::string(View(reply.dir())),
                       reply.backup_id(),
                       reply.batches(),
                       reply.stream_seq(),
                       reply.size_bytes(),
                       reply.new_bytes(),
                       reply.files(),
                       reply.backups_kept()};
}

ErrorCode ErrorCodeFor(Status::Code code) {
  // The numeric values are shared on purpose (loanledger.fbs: "Mirrors
  // loanledger::Status::Code").
  static_assert(static_cast<int>(ErrorCode::INTERNAL) == static_cast<int>(Status::Code::kInternal));
  static_assert(static_cast<int>(ErrorCode::NOT_LEADER) ==
                static_cast<int>(Status::Code::kNotLeader));
  static_assert(static_cast<int>(ErrorCode::RESOURCE_EXHAUSTED) ==
                static_cast<int>(Status::Code::kResourceExhausted));
  return static_cast<ErrorCode>(static_cast<int>(code));
}

Status StatusFromError(const Error& error) {
  const std::string message(View(error.message()));
  const auto code = static_cast<uint8_t>(error.code());
  if (error.code() == ErrorCode::BAD_FRAME) return Status::InvalidArgument("bad frame: " + message);
  if (error.code() == ErrorCode::NOT_LEADER)
    return Status::NotLeader(std::string(View(error.leader())));
  if (code == 0 ||
      code > static_cast<uint8_t>(ErrorCode::INTERNAL)) {  // BAD_FRAME, NOT_LEADER: above
    return Status::Internal("server error code " + std::to_string(code) + ": " + message);
  }
  return Status(static_cast<Status::Code>(code), message);
}

std::string_view BodyName(Body body) {
  const auto v = static_cast<uint8_t>(body);
  if (v > static_cast<uint8_t>(Body::MAX)) return "UNKNOWN";
  return EnumNameBody(body);
}

}  // namespace loanledger::wire
