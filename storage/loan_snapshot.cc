#include "storage/loan_snapshot.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "schema/check.h"
#include "schema/limits.h"
#include "storage/codec.h"

namespace loanledger::storage {
namespace {

// File header (64 bytes, little-endian): magic, u32 format, u32 block
// bytes, u64 replay_from, u64 loans, u64 blocks, u64 bytes after the
// header, 12 bytes (format 1: zero; format 2: the RulesDigest of the
// masks), u32 CRC-32 of the 60 bytes before it.
constexpr char kMagic[8] = {'L', 'L', 'L', 'O', 'A', 'N', 'S', '\n'};
constexpr uint32_t kFormatNoMasks = 1;
constexpr uint32_t kFormatMasks = 2;  // this version writes it (format 1 is read, and test-written)
constexpr size_t kHeaderBytes = 64;
// Block header (16 bytes): u32 payload bytes, u32 loans, u32 CRC-32 of the
// payload, u32 zero. Payload: per loan u8 key length, key, u8 value
// length, value (EncodeLoanState); format 2 adds per loan a u16 index into
// the block's mask table (0xFFFF: no mask), and after the loans the table,
// u64 masks, then u16 its count.
constexpr size_t kBlockHeaderBytes = 16;
constexpr size_t kRecordBytesMax = 2 + 255 + 255;
constexpr size_t kMaskIndexBytes = 2;
constexpr size_t kMaskCountBytes = 2;
constexpr uint16_t kNoMask = 0xFFFF;

uint32_t Crc(const char* p, size_t n) {
  return static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(p), static_cast<uInt>(n)));
}

Status Errno(std::string_view what, const std::string& path) {
  return Status::IoError(std::string(what) + " " + path + ": " + std::strerror(errno));
}

}  // namespace

RulesDigest DigestOfRules(const Rules& rules) {
  std::string data = "loanledger classify " + std::to_string(kClassifyVersion) + "\n";
  data += rules.text();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  const int ok = EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  LL_CHECK(ok == 1 && length >= sizeof(RulesDigest));
  RulesDigest out;
  std::memcpy(out.data(), digest, out.size());
  return out;
}

bool DecodeLoanSlot(std::string_view value, LoanSlot* out) {
  LoanState state;
  if (!DecodeLoanState(value, &state)) return false;
  if (state.last_seq == 0 || state.balance_fen < 0 || state.balance_fen > kLoanBalanceFenMax)
    return false;
  // The field rules of the attributes and the date, checked as an event.
  if (ValidateEvent(LoanEvent{"X", "X", state.last_seq, state.last_date, EventKind::kDisburse, 1,
                              state.attributes})) {
    return false;
  }
  *out = LoanSlot::FromState(state);
  return true;
}

SnapshotWriter::SnapshotWriter(std::string path, int fd, uint64_t replay_from,
                               const RulesDigest* rules)
    : path_(std::move(path)), fd_(fd), replay_from_(replay_from), with_masks_(rules != nullptr) {
  if (rules != nullptr) rules_ = *rules;
  block_.assign(kBlockHeaderBytes, '\0');
}

Result<std::unique_ptr<SnapshotWriter>> SnapshotWriter::Create(std::string path,
                                                               uint64_t replay_from,
                                                               const RulesDigest* rules) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("create", tmp);
  std::unique_ptr<SnapshotWriter> w(new SnapshotWriter(std::move(path), fd, replay_from, rules));
  const std::string zeros(kHeaderBytes, '\0');  // the header is written by Commit
  if (Status s = w->WriteAll(zeros.data(), zeros.size(), 0); !s.ok()) return s;
  return w;
}

SnapshotWriter::~SnapshotWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink((path_ + ".tmp").c_str());
}

void SnapshotWriter::Add(std::string_view key, const LoanSlot& slot, const RuleMask* mask) {
  LL_CHECK(key.size() <= 255);
  // Room for this record (and, format 2, its index, a new table entry, and
  // the table and its count after it).
  const size_t room = with_masks_ ? kRecordBytesMax + kMaskIndexBytes + 8 +
                                        block_masks_.size() * 8 + kMaskCountBytes
                                  : kRecordBytesMax;
  if (block_.size() + room > kSnapshotBlockBytes) SealBlock();
  EncodeLoanState(slot.ToState(), &value_);
  LL_CHECK(value_.size() <= 255);
  block_.push_back(static_cast<char>(key.size()));
  block_.append(key);
  block_.push_back(static_cast<char>(value_.size()));
  block_.append(value_);
  if (with_masks_) {
    uint16_t index = kNoMask;
    if (mask != nullptr) {
      auto [it, added] = block_mask_ids_.emplace(*mask, static_cast<uint16_t>(block_masks_.size()));
      if (added) block_masks_.push_back(*mask);
      index = it->second;
    }
    char index_bytes[kMaskIndexBytes];
    index_bytes[0] = static_cast<char>(index & 0xFF);
    index_bytes[1] = static_cast<char>(index >> 8);
    block_.append(index_bytes, kMaskIndexBytes);
  }
  ++block_loans_;
  ++loans_;
}

void SnapshotWriter::SealBlock() {
  if (block_loans_ == 0) return;
  if (with_masks_) {
    LL_CHECK(block_masks_.size() < kNoMask);  // a block holds far fewer loans
    char word[8];
    for (const RuleMask m : block_masks_) {
      StoreU64(word, m);
      block_.append(word, 8);
    }
    word[0] = static_cast<char>(block_masks_.size() & 0xFF);
    word[1] = static_cast<char>(block_masks_.size() >> 8);
    block_.append(word, kMaskCountBytes);
    block_masks_.clear();
    block_mask_ids_.clear();
  }
  const size_t payload = block_.size() - kBlockHeaderBytes;
  LL_CHECK(block_.size() <= kSnapshotBlockBytes);  // the reader reads blocks of this size
  StoreU32(&block_[0], static_cast<uint32_t>(payload));
  StoreU32(&block_[4], block_loans_);
  StoreU32(&block_[8], Crc(block_.data() + kBlockHeaderBytes, payload));
  StoreU32(&block_[12], 0);
  // Every block but the last fills kSnapshotBlockBytes, so block k starts
  // at a known offset: pad the previous block now that it is not the last.
  if (blocks_ > 0) {
    const uint64_t end = written_ + pending_.size();
    pending_.append((kSnapshotBlockBytes - end % kSnapshotBlockBytes) % kSnapshotBlockBytes, '\0');
  }
  pending_.append(block_);
  ++blocks_;
  block_.assign(kBlockHeaderBytes, '\0');
  block_loans_ = 0;
}

Status SnapshotWriter::WriteAll(const char* data, size_t n, uint64_t offset) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd_, data, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return Errno("write", path_ + ".tmp");
    }
    data += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

Status SnapshotWriter::WritePending() {
  if (pending_.empty()) return Status::Ok();
  Status s = WriteAll(pending_.data(), pending_.size(), kHeaderBytes + written_);
  written_ += pending_.size();
  pending_.clear();
  return s;
}

Status SnapshotWriter::Commit() {
  SealBlock();
  if (Status s = WritePending(); !s.ok()) return s;
  char header[kHeaderBytes] = {};
  std::memcpy(header, kMagic, 8);
  StoreU32(header + 8, with_masks_ ? kFormatMasks : kFormatNoMasks);
  StoreU32(header + 12, static_cast<uint32_t>(kSnapshotBlockBytes));
  StoreU64(header + 16, replay_from_);
  StoreU64(header + 24, loans_);
  StoreU64(header + 32, blocks_);
  StoreU64(header + 40, written_);
  if (with_masks_) std::memcpy(header + 48, rules_.data(), rules_.size());
  StoreU32(header + 60, Crc(header, 60));
  if (Status s = WriteAll(header, kHeaderBytes, 0); !s.ok()) return s;
  const std::string tmp = path_ + ".tmp";
  if (::fdatasync(fd_) != 0) return Errno("sync", tmp);
  if (::close(fd_) != 0) {
    fd_ = -1;
    return Errno("close", tmp);
  }
  fd_ = -1;
  if (::rename(tmp.c_str(), path_.c_str()) != 0) return Errno("rename", tmp);
  committed_ = true;
  const std::string dir = std::filesystem::path(path_).parent_path().string();
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Errno("open", dir);
  const int rc = ::fsync(dfd);
  ::close(dfd);
  if (rc != 0) return Errno("sync", dir);
  return Status::Ok();
}

namespace {

// An open file, closed on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Status ReadAt(int fd, char* data, size_t n, uint64_t offset, const std::string& path) {
  while (n > 0) {
    const ssize_t r = ::pread(fd, data, n, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Errno("read", path);
    }
    if (r == 0) return Status::Corruption("snapshot " + path + " is truncated");
    data += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return Status::Ok();
}

Result<SnapshotInfo> ReadInfo(int fd, const std::string& path, uint64_t* data_bytes) {
  char header[kHeaderBytes];
  if (Status s = ReadAt(fd, header, kHeaderBytes, 0, path); !s.ok()) return s;
  if (std::memcmp(header, kMagic, 8) != 0 || Crc(header, 60) != LoadU32(header + 60)) {
    return Status::Corruption("snapshot " + path + ": bad header");
  }
  const uint32_t format = LoadU32(header + 8);
  if ((format != kFormatNoMasks && format != kFormatMasks) ||
      LoadU32(header + 12) != kSnapshotBlockBytes) {
    return Status::Corruption("snapshot " + path + ": unsupported format " +
                              std::to_string(format));
  }
  SnapshotInfo info;
  info.format = format;
  if (format == kFormatMasks) {
    std::memcpy(info.rules_digest.data(), header + 48, info.rules_digest.size());
  } else if (std::any_of(header + 48, header + 60, [](char c) { return c != 0; })) {
    return Status::Corruption("snapshot " + path + ": bad header");
  }
  info.replay_from = LoadU64(header + 16);
  info.loans = LoadU64(header + 24);
  info.blocks = LoadU64(header + 32);
  *data_bytes = LoadU64(header + 40);
  const uint64_t full = info.blocks == 0 ? 0 : (info.blocks - 1) * kSnapshotBlockBytes;
  if (info.blocks == 0 ? *data_bytes != 0
                       : (*data_bytes <= full || *data_bytes > full + kSnapshotBlockBytes)) {
    return Status::Corruption("snapshot " + path + ": header's sizes disagree");
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Errno("stat", path);
  if (static_cast<uint64_t>(st.st_size) != kHeaderBytes + *data_bytes) {
    return Status::Corruption("snapshot " + path + " is " + std::to_string(st.st_size) +
                              " bytes, header says " + std::to_string(kHeaderBytes + *data_bytes));
  }
  return info;
}

}  // namespace

Result<SnapshotInfo> ReadSnapshotInfo(const std::string& path) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) return Errno("open", path);
  uint64_t data_bytes = 0;
  return ReadInfo(f.fd, path, &data_bytes);
}

Status ReadSnapshotBlocks(const std::string& path, const SnapshotInfo& info, uint64_t first,
                          uint64_t stride, const std::function<bool(LoanBlock&&)>& sink) {
  LL_CHECK(stride >= 1);
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) return Errno("open", path);
  uint64_t data_bytes = 0;
  Result<SnapshotInfo> own = ReadInfo(f.fd, path, &data_bytes);
  if (!own.ok()) return own.status();
  if (own->replay_from != info.replay_from || own->loans != info.loans ||
      own->blocks != info.blocks || own->format != info.format ||
      own->rules_digest != info.rules_digest) {
    return Status::Corruption("snapshot " + path + " changed while read");
  }
  ::posix_fadvise(f.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::string buf(kSnapshotBlockBytes, '\0');
  for (uint64_t b = first; b < info.blocks; b += stride) {
    const uint64_t offset = b * kSnapshotBlockBytes;
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(kSnapshotBlockBytes, data_bytes - offset));
    const std::string where = "snapshot " + path + " block " + std::to_string(b);
    if (n < kBlockHeaderBytes) return Status::Corruption(where + " is truncated");
    if (Status s = ReadAt(f.fd, buf.data(), n, kHeaderBytes + offset, path); !s.ok()) return s;
    const uint32_t payload = LoadU32(buf.data());
    const uint32_t loans = LoadU32(buf.data() + 4);
    if (payload > n - kBlockHeaderBytes || loans == 0 ||
        Crc(buf.data() + kBlockHeaderBytes, payload) != LoadU32(buf.data() + 8)) {
      return Status::Corruption(where + ": bad checksum");
    }
    LoanBlock block;
    block.ends.reserve(loans);
    block.slots.reserve(loans);
    std::string_view rest(buf.data() + kBlockHeaderBytes, payload);
    const bool with_masks = info.format == kFormatMasks;
    if (with_masks) {  // the mask table ends the payload
      const char* end = buf.data() + kBlockHeaderBytes + payload;
      const size_t count = payload < kMaskCountBytes
                               ? 0
                               : static_cast<uint8_t>(end[-2]) |
                                     (static_cast<size_t>(static_cast<uint8_t>(end[-1])) << 8);
      if (payload < kMaskCountBytes || count >= kNoMask || count * 8 > payload - kMaskCountBytes) {
        return Status::Corruption(where + ": bad mask table");
      }
      const char* table = end - kMaskCountBytes - count * 8;
      block.masks.resize(count);
      for (size_t j = 0; j < count; ++j) block.masks[j] = LoadU64(table + 8 * j);
      rest = rest.substr(0, rest.size() - kMaskCountBytes - count * 8);
    }
    for (uint32_t i = 0; i < loans; ++i) {
      LoanSlot slot;
      std::string_view key, value, inst, loan;
      bool ok = !rest.empty() && rest.size() > static_cast<uint8_t>(rest[0]);
      if (ok) {
        key = rest.substr(1, static_cast<uint8_t>(rest[0]));
        rest.remove_prefix(1 + key.size());
        ok = !rest.empty() && rest.size() > static_cast<uint8_t>(rest[0]);
      }
      if (ok) {
        value = rest.substr(1, static_cast<uint8_t>(rest[0]));
        rest.remove_prefix(1 + value.size());
        ok = SplitLoanKey(key, &inst, &loan) && IsValidInstitutionId(inst) && IsValidLoanId(loan) &&
             DecodeLoanSlot(value, &slot);
      }
      if (ok && with_masks) {
        ok = rest.size() >= kMaskIndexBytes;
        if (ok) {
          const uint16_t index = static_cast<uint16_t>(static_cast<uint8_t>(rest[0]) |
                                                       (static_cast<uint8_t>(rest[1]) << 8));
          rest.remove_prefix(kMaskIndexBytes);
          ok = index == kNoMask || index < block.masks.size();
          slot.mask = index == kNoMask ? kMaskUnresolved : index;
        }
      }
      if (!ok) return Status::Corruption(where + ": bad loan record " + std::to_string(i));
      block.Add(key, slot);
    }
    if (!rest.empty()) return Status::Corruption(where + ": bytes after its loans");
    if (!sink(std::move(block))) break;
  }
  return Status::Ok();
}

}  // namespace loanledger::storage
