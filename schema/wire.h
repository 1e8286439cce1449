// The wire protocol in code (docs/protocol.md): frames and the
// conversions between the domain types and the FlatBuffers tables of
// schema/loanledger.fbs. Used by both the server and the client; knows no
// sockets (the transport reads bytes into a FrameReader and writes Frames).
//
// Entry points: FrameReader (receive side), the Encode* functions (send
// side, each returns one complete frame), the Decode* functions (verified
// message -> domain types).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "schema/event.h"
#include "schema/limits.h"
#include "schema/loanledger_generated.h"
#include "schema/query.h"
#include "schema/reason.h"
#include "schema/status.h"

namespace loanledger::wire {

// A frame is a 4-byte little-endian length N, then N bytes of FlatBuffer.
inline constexpr size_t kFrameHeaderBytes = 4;
// The smallest valid body: root offset + file identifier + a table; below
// this the verifier cannot succeed, so such lengths are refused early.
inline constexpr size_t kFrameBodyBytesMin = 12;

// Verifier bounds, passed explicitly (STYLE.md "Limits").
// Message > body > vector > Event > string is 5 levels; 16 leaves headroom
// without letting a crafted buffer recurse deeply.
inline constexpr uint32_t kVerifierDepthMax = 16;
// A request holds Message + body + one table per event.
inline constexpr uint32_t kRequestTablesMax = static_cast<uint32_t>(kBatchEventsMax) + 64;
// Replies from the server can be larger than requests (a report by
// institution, a long daily series, 65,536 rejections). The client trusts its
// server but still bounds what it buffers.
inline constexpr size_t kReplyFrameBytesMax = size_t{256} << 20;
// At least ~12 bytes per table, so 256 MiB holds fewer than 2^25 tables.
inline constexpr uint32_t kReplyTablesMax = uint32_t{1} << 25;

struct FrameLimits {
  size_t frame_bytes_max = kFrameBytesMaxDefault;  // largest accepted N (body bytes)
  uint32_t depth_max = kVerifierDepthMax;          // flatbuffers::Verifier max_depth
  uint32_t tables_max = kRequestTablesMax;         // flatbuffers::Verifier max_tables
};
// What the server accepts from clients (frame_bytes_max is configurable there).
inline constexpr FrameLimits kRequestLimits{kFrameBytesMaxDefault, kVerifierDepthMax,
                                            kRequestTablesMax};
// What the client accepts from the server.
inline constexpr FrameLimits kReplyLimits{kReplyFrameBytesMax, kVerifierDepthMax, kReplyTablesMax};

// A verified message that owns its bytes (moving it keeps `message` valid:
// it points into the heap buffer of `bytes`).
struct OwnedMessage {
  std::vector<uint8_t> bytes;        // the frame as laid out by FrameReader
  const Message* message = nullptr;  // root, inside bytes
};

// Receives one frame at a time from any byte transport:
//   1. read kFrameHeaderBytes into header();
//   2. OnHeader() checks the declared length (error: the caller answers
//      BAD_FRAME and closes; nothing of the body need be read);
//   3. read body_size() bytes into body();
//   4. OnBody() runs the FlatBuffers verifier and returns the Message, which
//      points into this reader and stays valid until the next OnHeader().
// Not thread-safe; one per connection.
class FrameReader {
 public:
  explicit FrameReader(FrameLimits limits) : limits_(limits) {}

  uint8_t* header() { return header_; }
  [[nodiscard]] Status OnHeader();
  size_t body_size() const { return body_size_; }
  uint8_t* body() { return buffer_.data() + body_offset_; }
  // REQUIRES: OnHeader() succeeded and body_size() bytes were written to body().
  Result<const Message*> OnBody();
  // Like OnBody, but moves the buffer out with the message (for callers that
  // keep messages beyond the next frame).
  Result<OwnedMessage> TakeMessage();
  // Drops a large buffer after use so that an idle connection holds little.
  void Shrink();

  const FrameLimits& limits() const { return limits_; }

 private:
  FrameLimits limits_;                      // bounds checked on every frame
  uint8_t header_[kFrameHeaderBytes] = {};  // the length prefix as received
  size_t body_size_ = 0;                    // N of the current frame
  size_t body_offset_ = 0;                  // where the body starts in buffer_ (0 or 4, see .cc)
  std::vector<uint8_t> buffer_;             // [header copy][body], reused between frames
};

// Verifies a complete frame held in memory (header + body). For tests, fuzzers
// and tools; the same checks as FrameReader.
Result<const Message*> VerifyFrame(std::span<const uint8_t> frame, const FrameLimits& limits,
                                   std::vector<uint8_t>& storage);

// Reads the length prefix.
uint32_t DecodeFrameLength(const uint8_t header[kFrameHeaderBytes]);

// One complete frame ready to write (length prefix included).
using Frame = flatbuffers::DetachedBuffer;

// Items of replies that have no domain type in schema/ (storage has its own;
// the server converts).
struct RejectionEntry {
  uint32_t index = 0;           // position of the event in its batch
  Reason reason = Reason::kOk;  // why it was refused
  std::string message;          // readable detail
};
struct VerifyDiff {
  std::string what;      // which figure
  int64_t expected = 0;  // recomputed
  int64_t actual = 0;    // stored
};
struct VerifySummary {
  uint64_t batches_replayed = 0;
  uint64_t events_replayed = 0;
  uint64_t loans_checked = 0;
  uint64_t cells_checked = 0;
  std::vector<VerifyDiff> differences;  // empty = consistent
};
struct CompactSummary {
  uint64_t duration_ms = 0;
  uint64_t live_sst_bytes_before = 0;
  uint64_t live_sst_bytes_after = 0;
};
struct CheckpointSummary {
  std::string dir;
  uint64_t stream_seq = 0;
  uint64_t batches = 0;
};
struct BackupSummary {
  std::string dir;
  uint32_t backup_id = 0;
  uint64_t batches = 0;
  uint64_t stream_seq = 0;
  uint64_t size_bytes = 0;
  uint64_t new_bytes = 0;
  uint32_t files = 0;
  uint32_t backups_kept = 0;
};
// Admin: category rules (docs/categories.md).
struct RulesVersionInfo {
  uint64_t number = 0;
  std::string version;
  std::string text;
  int64_t applied_ms = 0;
};
struct RulesShowInfo {
  RulesVersionInfo current;
  std::vector<RulesVersionInfo> history;  // oldest first; texts empty but the current one's
  bool recompute_running = false;
  std::string recompute_version;
  uint64_t recompute_batches_done = 0;
  uint64_t recompute_batches_total = 0;
};
struct AckInfo {
  uint64_t batch_no = 0;  // 0 when every event was a duplicate
  uint32_t events_applied = 0;
  uint32_t events_duplicate = 0;
};
struct HelloOkInfo {
  Role role = Role::NONE;
  std::string institution_id;  // for INSTITUTION
  std::string server_version;
};

// Encoders: each builds one Message with the given request id.
Frame EncodeHello(uint64_t request_id, std::string_view token, std::string_view client_name);
Frame EncodeHelloOk(uint64_t request_id, const HelloOkInfo& info);
// stream: 0 or the submitter's stream id, stream_batch the batch's
// position in it (SubmitBatch in loanledger.fbs).
Frame EncodeSubmitBatch(uint64_t request_id, std::span<const LoanEvent> events, uint64_t stream = 0,
                        uint64_t stream_batch = 0);
Frame EncodeAck(uint64_t request_id, const AckInfo& ack);
// skipped: the batch was not applied because an earlier batch of its stream
// was rejected (rejections is then empty).
Frame EncodeRejected(uint64_t request_id, std::span<const RejectionEntry> rejections,
                     bool skipped = false);
// scope_institution is not sent: the server derives it from the token.
Frame EncodeReportRequest(uint64_t request_id, const ReportQuery& query);
Frame EncodeReportReply(uint64_t request_id, const Report& report);
Frame EncodeSeriesRequest(uint64_t request_id, const SeriesQuery& query);
Frame EncodeSeriesReply(uint64_t request_id, const Series& series);
Frame EncodeLoanRequest(uint64_t request_id, std::string_view institution_id,
                        std::string_view loan_id);
Frame EncodeLoanReply(uint64_t request_id, const LoanView& loan);
Frame EncodeVerifyRequest(uint64_t request_id);
Frame EncodeVerifyReply(uint64_t request_id, const VerifySummary& summary);
Frame EncodeStatsRequest(uint64_t request_id);
Frame EncodeStatsReply(uint64_t request_id, std::string_view text);
Frame EncodeCompactRequest(uint64_t request_id);
Frame EncodeCompactReply(uint64_t request_id, const CompactSummary& summary);
Frame EncodeCheckpointRequest(uint64_t request_id, std::string_view dir);
Frame EncodeCheckpointReply(uint64_t request_id, const CheckpointSummary& summary);
Frame EncodeBackupRequest(uint64_t request_id, std::string_view dir, uint32_t keep);
Frame EncodeBackupReply(uint64_t request_id, const BackupSummary& summary);
// `leader`: only with NOT_LEADER, the leader's client address.
Frame EncodeRulesShowRequest(uint64_t request_id);
Frame EncodeRulesShowReply(uint64_t request_id, const RulesShowInfo& info);
Frame EncodeRulesApplyRequest(uint64_t request_id, std::string_view text);
Frame EncodeRulesApplyReply(uint64_t request_id, const RulesVersionInfo& applied);
Frame EncodeError(uint64_t request_id, ErrorCode code, std::string_view message,
                  std::string_view leader = {});

// Decoders. Request decoders validate what the server must not pass on
// (enum ranges, date ranges, counts) and return kInvalidArgument; event
// fields are passed through as sent (ValidateEvent judges them, so that a
// bad event is a rejection with a reason, not a protocol error).
LoanEvent DecodeEvent(const Event& event);
Result<std::vector<LoanEvent>> DecodeSubmitBatch(const SubmitBatch& batch);
Result<ReportQuery> DecodeReportRequest(const ReportRequest& request);
Result<SeriesQuery> DecodeSeriesRequest(const SeriesRequest& request);
HelloOkInfo DecodeHelloOk(const HelloOk& hello_ok);
AckInfo DecodeAck(const Ack& ack);
std::vector<RejectionEntry> DecodeRejected(const Rejected& rejected);
Report DecodeReportReply(const ReportReply& reply);
Series DecodeSeriesReply(const SeriesReply& reply);
LoanView DecodeLoanReply(const LoanReply& reply);
VerifySummary DecodeVerifyReply(const VerifyReply& reply);
CompactSummary DecodeCompactReply(const CompactReply& reply);
RulesShowInfo DecodeRulesShowReply(const RulesShowReply& reply);
RulesVersionInfo DecodeRulesApplyReply(const RulesApplyReply& reply);
CheckpointSummary DecodeCheckpointReply(const CheckpointReply& reply);
BackupSummary DecodeBackupReply(const BackupReply& reply);

// Error codes <-> Status. BAD_FRAME has no Status code of its own and maps
// to kInvalidArgument; an unknown code maps to kInternal.
ErrorCode ErrorCodeFor(Status::Code code);
Status StatusFromError(const Error& error);
std::string_view BodyName(Body body);

// Null-safe view of an optional FlatBuffers string.
inline std::string_view View(const flatbuffers::String* s) {
  return s == nullptr ? std::string_view() : std::string_view(s->data(), s->size());
}

}  // namespace loanledger::wire
