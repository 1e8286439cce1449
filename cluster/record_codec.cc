#include "cluster/record_codec.h"

#include <zstd.h>

#include <cstring>
#include <memory>

namespace loanledger::cluster {
namespace {

// Level 1: the fastest of zstd's regular levels. A journal record (about
// 61 bytes per event: ids, dates, amounts, codes) shrinks several times at
// a small fraction of the leader's time per batch (bench/RESULTS.md).
constexpr int kLevel = 1;

struct CctxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DctxDeleter {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

}  // namespace

std::string EncodeRecord(std::string_view record, bool* compressed) {
  // One context per thread (the leader's writer, the republishing thread),
  // kept: creating one per record costs more than compressing a small one.
  // Each frame carries a checksum of its content, so that a damaged message
  // is refused rather than applied as another record.
  thread_local std::unique_ptr<ZSTD_CCtx, CctxDeleter> cctx([] {
    ZSTD_CCtx* c = ZSTD_createCCtx();
    if (c != nullptr && (ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, kLevel)) ||
                         ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1)))) {
      ZSTD_freeCCtx(c);
      c = nullptr;
    }
    return c;
  }());
  *compressed = false;
  if (cctx == nullptr || record.size() < 64) return std::string(record);
  std::string out(ZSTD_compressBound(record.size()), '\0');
  const size_t n = ZSTD_compress2(cctx.get(), out.data(), out.size(), record.data(), record.size());
  if (ZSTD_isError(n) || n >= record.size()) return std::string(record);
  out.resize(n);
  *compressed = true;
  return out;
}

Result<std::string_view> DecodeRecord(std::string_view body, const char* encoding,
                                      std::string* buffer) {
  if (encoding == nullptr || *encoding == '\0') return body;
  if (std::strcmp(encoding, kZstdEncoding) != 0) {
    return Status::Corruption("a stream message in an unknown encoding \"" + std::string(encoding) +
                              "\"");
  }
  const unsigned long long size = ZSTD_getFrameContentSize(body.data(), body.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) {
    return Status::Corruption("a compressed stream message that is not a zstd frame");
  }
  if (size > kRecordBytesMax) {
    return Status::Corruption("a compressed stream message of " + std::to_string(size) +
                              " bytes, more than a record can be");
  }
  thread_local std::unique_ptr<ZSTD_DCtx, DctxDeleter> dctx(ZSTD_createDCtx());
  if (dctx == nullptr) return Status::Internal("zstd: no decompression context");
  buffer->resize(static_cast<size_t>(size));
  const size_t n =
      ZSTD_decompressDCtx(dctx.get(), buffer->data(), buffer->size(), body.data(), body.size());
  if (ZSTD_isError(n) || n != size) {
    return Status::Corruption(std::string("a compressed stream message does not decompress: ") +
                              (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short"));
  }
  return std::string_view(*buffer);
}

Result<std::string_view> DecodeRecord(natsMsg* msg, std::string* buffer) {
  const char* encoding = nullptr;
  if (natsMsgHeader_Get(msg, kEncodingHeader, &encoding) != NATS_OK) encoding = nullptr;
  return DecodeRecord(
      std::string_view(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg))),
      encoding, buffer);
}

}  // namespace loanledger::cluster
