// Status and Result<T>: the one error-as-value type of the project (STYLE.md).
// An operational failure (I/O, bad frame, not found, peer gone) is a Status;
// a rejected event is business and travels as a reason code instead.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "schema/check.h"

namespace loanledger {

class [[nodiscard]] Status {
 public:
  // Values are stable: they appear in logs and on the wire (ErrorCode in the
  // FlatBuffers schema mirrors them).
  enum class Code : int {
    kOk = 0,
    kInvalidArgument = 1,    // a request the caller can fix
    kNotFound = 2,           // the loan (or thing) does not exist
    kPermissionDenied = 3,   // the caller's role may not do this
    kIoError = 4,            // storage failed; nothing was made durable
    kCorruption = 5,         // stored data does not decode
    kUnavailable = 6,        // connection refused/lost, server shutting down
    kUnauthenticated = 7,    // missing or wrong token
    kResourceExhausted = 8,  // a bound was hit (frame size, connections, capacity)
    kInternal = 9,           // a bug somewhere else surfaced as a value
    // Cluster mode: this node does not lead the partition, so it cannot take
    // a submission; the message is the leader's client address (HOST:PORT),
    // empty while no leader is known. (10 is the wire's BAD_FRAME.)
    kNotLeader = 11,
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) {
    return Status(Code::kInvalidArgument, std::move(m));
  }
  static Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
  static Status PermissionDenied(std::string m) {
    return Status(Code::kPermissionDenied, std::move(m));
  }
  static Status IoError(std::string m) { return Status(Code::kIoError, std::move(m)); }
  static Status Corruption(std::string m) { return Status(Code::kCorruption, std::move(m)); }
  static Status Unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
  static Status Unauthenticated(std::string m) {
    return Status(Code::kUnauthenticated, std::move(m));
  }
  static Status ResourceExhausted(std::string m) {
    return Status(Code::kResourceExhausted, std::move(m));
  }
  static Status Internal(std::string m) { return Status(Code::kInternal, std::move(m)); }
  static Status NotLeader(std::string leader) {
    return Status(Code::kNotLeader, std::move(leader));
  }

  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;  // kOk means success; message_ is then empty
  std::string message_;    // human-readable detail
};

std::string_view StatusCodeName(Status::Code code);

inline std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s(StatusCodeName(code_));
  s += ": ";
  s += message_;
  return s;
}

inline std::string_view StatusCodeName(Status::Code code) {
  switch (code) {
    case Status::Code::kOk:
      return "OK";
    case Status::Code::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case Status::Code::kNotFound:
      return "NOT_FOUND";
    case Status::Code::kPermissionDenied:
      return "PERMISSION_DENIED";
    case Status::Code::kIoError:
      return "IO_ERROR";
    case Status::Code::kCorruption:
      return "CORRUPTION";
    case Status::Code::kUnavailable:
      return "UNAVAILABLE";
    case Status::Code::kUnauthenticated:
      return "UNAUTHENTICATED";
    case Status::Code::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case Status::Code::kInternal:
      return "INTERNAL";
    case Status::Code::kNotLeader:
      return "NOT_LEADER";
  }
  return "UNKNOWN";
}

// Result<T>: a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    LL_CHECK(!std::get<Status>(v_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & {
    LL_CHECK(ok());
    return std::get<T>(v_);
  }
  const T& value() const& {
    LL_CHECK(ok());
    return std::get<T>(v_);
  }
  T&& value() && {
    LL_CHECK(ok());
    return std::get<T>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace loanledger
