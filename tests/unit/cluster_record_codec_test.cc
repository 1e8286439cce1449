// cluster/record_codec.h: a journal record survives compression byte for
// byte, is sent as it is when compression would not shrink it, and a
// message that cannot be a record is Corruption, never a wrong record.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "cluster/record_codec.h"

namespace loanledger::cluster {
namespace {

// Shaped like a journal record: repeated institution and loan ids, dates,
// amounts and codes.
std::string RecordLike(size_t events) {
  std::string r;
  for (size_t i = 0; i < events; ++i) {
    r += "B0001|L" + std::to_string(100000 + i) + "|2024-0" + std::to_string(1 + i % 9) +
         "-15|disburse|" + std::to_string(1000000 + 37 * i) + "|C3|310115|";
  }
  return r;
}

TEST(ClusterRecordCodec, ARecordRoundTripsCompressedAndSmaller) {
  const std::string record = RecordLike(5000);
  bool compressed = false;
  const std::string body = EncodeRecord(record, &compressed);
  ASSERT_TRUE(compressed);
  EXPECT_LT(body.size() * 3, record.size());  // ids, dates and codes repeat
  std::string buffer;
  Result<std::string_view> back = DecodeRecord(body, kZstdEncoding, &buffer);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, record);
}

TEST(ClusterRecordCodec, WhatWouldNotShrinkIsSentAsItIs) {
  bool compressed = true;
  EXPECT_EQ(EncodeRecord("short", &compressed), "short");
  EXPECT_FALSE(compressed);
  std::mt19937_64 rng(7);
  std::string noise(4096, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  EXPECT_EQ(EncodeRecord(noise, &compressed), noise);
  EXPECT_FALSE(compressed);
  // A message without the header is the record itself (and so is every
  // message published before records were compressed).
  std::string buffer;
  Result<std::string_view> same = DecodeRecord(noise, nullptr, &buffer);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, noise);
  same = DecodeRecord(noise, "", &buffer);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, noise);
}

TEST(ClusterRecordCodec, WhatCannotBeARecordIsCorruption) {
  std::string buffer;
  bool compressed = false;
  const std::string body = EncodeRecord(RecordLike(1000), &compressed);
  ASSERT_TRUE(compressed);
  EXPECT_EQ(DecodeRecord(body, "gzip", &buffer).status().code(), Status::Code::kCorruption);
  EXPECT_EQ(DecodeRecord("not zstd at all", kZstdEncoding, &buffer).status().code(),
            Status::Code::kCorruption);
  std::string cut = body.substr(0, body.size() / 2);
  EXPECT_EQ(DecodeRecord(cut, kZstdEncoding, &buffer).status().code(), Status::Code::kCorruption);
  // Every frame carries a checksum of its content: one flipped byte
  // anywhere after the frame header is refused, never decoded into another
  // record.
  for (size_t at = 8; at < body.size(); at += 7) {
    std::string flipped = body;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x5a);
    EXPECT_EQ(DecodeRecord(flipped, kZstdEncoding, &buffer).status().code(),
              Status::Code::kCorruption)
        << "byte " << at;
  }
}

TEST(ClusterRecordCodec, AMessageExpandingPastTheRecordLimitIsRefused) {
  const std::string huge(kRecordBytesMax + 1, 'z');
  bool compressed = false;
  const std::string body = EncodeRecord(huge, &compressed);
  ASSERT_TRUE(compressed);
  std::string buffer;
  Result<std::string_view> r = DecodeRecord(body, kZstdEncoding, &buffer);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(buffer.empty());  // refused before allocating
}

}  // namespace
}  // namespace loanledger::cluster
