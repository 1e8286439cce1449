// Journal records as messages of the partition's stream (docs/cluster.md,
// "Records in the stream"): a record is published zstd-compressed when that
// makes it smaller, with the header "Loanledger-Encoding: zstd"; any other
// message is the record's bytes as they are. Storage sees only records: the
// encoding lives in cluster/ alone.
#pragma once

#include <nats/nats.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "schema/status.h"

namespace loanledger::cluster {

inline constexpr char kEncodingHeader[] = "Loanledger-Encoding";
inline constexpr char kZstdEncoding[] = "zstd";
// The largest record a message may expand to (a batch frame is at most
// 16 MiB; its record is smaller).
inline constexpr size_t kRecordBytesMax = size_t{64} << 20;

// The message body for `record`: compressed (and *compressed = true) when
// smaller, else the record itself.
std::string EncodeRecord(std::string_view record, bool* compressed);

// The record a message body holds: `body` itself when `encoding` is null or
// empty, decompressed into *buffer (and viewed there) when it is "zstd";
// Corruption for another encoding, a body that does not decompress, or one
// that would exceed kRecordBytesMax.
Result<std::string_view> DecodeRecord(std::string_view body, const char* encoding,
                                      std::string* buffer);

// DecodeRecord of a stream message (its data and its encoding header).
Result<std::string_view> DecodeRecord(natsMsg* msg, std::string* buffer);

}  // namespace loanledger::cluster
