#include "storage/codec.h"

#include <bit>
#include <cstring>
#include <type_traits>

#include "schema/check.h"
#include "schema/limits.h"

namespace loanledger::storage {
namespace {

constexpr uint8_t kLoanStateFormat = 1;
constexpr uint8_t kJournalFormat = 1;

void PutFixed(std::string* out, const void* p, size_t n) {
  out->append(static_cast<const char*>(p), n);
}
template <typename T>
void PutLe(std::string* out, T v) {
  static_assert(std::is_integral_v<T>);
  // x86-64 and every target we build for is little-endian; the static_assert
  // below keeps a big-endian port from silently writing another format.
  static_assert(std::endian::native == std::endian::little);
  PutFixed(out, &v, sizeof v);
}
void PutString8(std::string* out, std::string_view s) {
  LL_CHECK(s.size() <= 255);
  out->push_back(static_cast<char>(s.size()));
  out->append(s);
}
void PutBe(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A bounds-checked reader over an encoded value.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  template <typename T>
  bool Le(T* v) {
    if (data_.size() < sizeof(T)) return false;
    std::memcpy(v, data_.data(), sizeof(T));
    data_.remove_prefix(sizeof(T));
    return true;
  }
  bool String8(std::string* s) {
    uint8_t n = 0;
    if (!Le(&n) || data_.size() < n) return false;
    s->assign(data_.data(), n);
    data_.remove_prefix(n);
    return true;
  }
  bool String16(std::string* s) {
    uint16_t n = 0;
    if (!Le(&n) || data_.size() < n) return false;
    s->assign(data_.data(), n);
    data_.remove_prefix(n);
    return true;
  }
  bool empty() const { return data_.empty(); }

 private:
  std::string_view data_;
};

uint64_t GetBe(std::string_view s, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(s[pos + i]);
  return v;
}

// What a cell key may hold: asserted when one is written, checked (damage
// is Corruption) when one is read. PackCell's bounds are within it.
bool CellKeyInRange(const CellKey& k) {
  const bool place =
      IsProvinceCode(k.province) || (k.province >= kRegionGroupCellByteMin &&
                                     k.province < kRegionGroupCellByteMin + kRegionGroupsMax);
  return static_cast<uint8_t>(k.category) <= kRuleCategoriesMax && place && k.institution >= 1 &&
         k.institution <= kInstitutionsMax && k.day >= 0 && k.day < (1 << 24);
}

uint8_t Flags(const LoanAttributes& a) {
  return static_cast<uint8_t>((a.srdi ? 1 : 0) | (a.tech_enterprise ? 2 : 0) | (a.green ? 4 : 0) |
                              (a.elderly_care ? 8 : 0) | (a.digital_economy ? 16 : 0));
}
void SetFlags(uint8_t f, LoanAttributes* a) {
  a->srdi = f & 1;
  a->tech_enterprise = f & 2;
  a->green = f & 4;
  a->elderly_care = f & 8;
  a->digital_economy = f & 16;
}

void PutAttributes(std::string* out, const LoanAttributes& a) {
  PutLe<uint8_t>(out, static_cast<uint8_t>(a.borrower_type));
  PutLe<uint8_t>(out, static_cast<uint8_t>(a.enterprise_size));
  PutLe<uint16_t>(out, a.term_months);
  PutLe<int64_t>(out, a.credit_line_fen);
  PutLe<uint8_t>(out, Flags(a));
  PutString8(out, a.industry_code);
  PutString8(out, a.region_code);
}
bool GetAttributes(Reader& r, LoanAttributes* a) {
  uint8_t borrower = 0, size = 0, flags = 0;
  if (!r.Le(&borrower) || !r.Le(&size) || !r.Le(&a->term_months) || !r.Le(&a->credit_line_fen) ||
      !r.Le(&flags) || !r.String8(&a->industry_code) || !r.String8(&a->region_code)) {
    return false;
  }
  a->borrower_type = static_cast<BorrowerType>(borrower);
  a->enterprise_size = static_cast<EnterpriseSize>(size);
  SetFlags(flags, a);
  return true;
}

}  // namespace

uint64_t PackCell(const CellKey& k) {
  LL_CHECK(k.institution <= kInstitutionsMax);
  LL_CHECK(k.day >= 0 && k.day < (1 << 24));
  return (uint64_t{static_cast<uint8_t>(k.category)} << 56) | (uint64_t{k.province} << 48) |
         (uint64_t{k.institution} << 24) | static_cast<uint64_t>(k.day);
}

CellKey UnpackCell(uint64_t p) {
  return CellKey{static_cast<Category>(p >> 56), static_cast<uint8_t>((p >> 48) & 0xff),
                 static_cast<uint32_t>((p >> 24) & 0xffffff), static_cast<Day>(p & 0xffffff)};
}

std::string EncodeCellKey(const CellKey& k) {
  LL_CHECK(CellKeyInRange(k));  // DecodeCellKey refuses any other key
  std::string out;
  out.reserve(10);
  out.push_back(static_cast<char>(k.category));
  out.push_back(static_cast<char>(k.province));
  PutBe(&out, k.institution, 4);
  PutBe(&out, static_cast<uint32_t>(k.day), 4);
  return out;
}

bool DecodeCellKey(std::string_view key, CellKey* out) {
  if (key.size() != 10) return false;
  const auto cat = static_cast<uint8_t>(key[0]);
  if (cat > kRuleCategoriesMax) return false;  // TOTAL and a rules file's 64 (docs/categories.md)
  out->category = static_cast<Category>(cat);
  out->province = static_cast<uint8_t>(key[1]);
  out->institution = static_cast<uint32_t>(GetBe(key, 2, 4));
  out->day = static_cast<Day>(GetBe(key, 6, 4));
  return CellKeyInRange(*out);  // as EncodeCellKey asserted
}

std::string EncodeMeasures(const Measures& m) {
  std::string out;
  out.reserve(kCellValueBytes);
  PutLe(&out, m.balance_fen);
  PutLe(&out, m.loan_count);
  PutLe(&out, m.disbursed_fen);
  PutLe(&out, m.repaid_fen);
  PutLe(&out, m.written_off_fen);
  return out;
}

bool DecodeMeasures(std::string_view value, Measures* out) {
  if (value.size() != kCellValueBytes) return false;
  Reader r(value);
  return r.Le(&out->balance_fen) && r.Le(&out->loan_count) && r.Le(&out->disbursed_fen) &&
         r.Le(&out->repaid_fen) && r.Le(&out->written_off_fen);
}

std::string LoanKey(std::string_view institution_id, std::string_view loan_id) {
  std::string key;
  key.reserve(institution_id.size() + 1 + loan_id.size());
  key.append(institution_id);
  key.push_back('\0');
  key.append(loan_id);
  return key;
}

bool SplitLoanKey(std::string_view key, std::string_view* institution_id,
                  std::string_view* loan_id) {
  const size_t nul = key.find('\0');
  if (nul == std::string_view::npos) return false;
  *institution_id = key.substr(0, nul);
  *loan_id = key.substr(nul + 1);
  return true;
}

void EncodeLoanState(const LoanState& s, std::string* out) {
  out->clear();
  PutLe<uint8_t>(out, kLoanStateFormat);
  PutLe<uint64_t>(out, s.last_seq);
  PutLe<int32_t>(out, s.last_date);
  PutLe<int64_t>(out, s.balance_fen);
  PutAttributes(out, s.attributes);
}

bool DecodeLoanState(std::string_view value, LoanState* out) {
  Reader r(value);
  uint8_t format = 0;
  if (!r.Le(&format) || format != kLoanStateFormat) return false;
  return r.Le(&out->last_seq) && r.Le(&out->last_date) && r.Le(&out->balance_fen) &&
         GetAttributes(r, &out->attributes) && r.empty();
}

std::string EncodeJournalKey(uint64_t batch_no) {
  std::string out;
  PutBe(&out, batch_no, 8);
  return out;
}

bool DecodeJournalKey(std::string_view key, uint64_t* batch_no) {
  if (key.size() != 8) return false;
  *batch_no = GetBe(key, 0, 8);
  return true;
}

void EncodeJournalRecord(int64_t received_ms, std::string_view submitter,
                         std::span<const LoanEvent> events, std::string* out) {
  // The apply path journals accepted batches only; DecodeJournalRecord
  // refuses a record that breaks these.
  LL_CHECK(!events.empty() && events.size() <= kBatchEventsMax);
  out->clear();
  out->reserve(32 + submitter.size() + events.size() * 64);
  PutLe<uint8_t>(out, kJournalFormat);
  PutLe<int64_t>(out, received_ms);
  LL_CHECK(submitter.size() <= 0xffff);
  PutLe<uint16_t>(out, static_cast<uint16_t>(submitter.size()));
  out->append(submitter);
  PutLe<uint32_t>(out, static_cast<uint32_t>(events.size()));
  for (const LoanEvent& e : events) {
    LL_CHECK(e.kind >= EventKind::kDisburse && e.kind <= EventKind::kReclassify &&
             e.amount_fen >= 0);  // validated events only
    PutString8(out, e.institution_id);
    PutString8(out, e.loan_id);
    PutLe<uint64_t>(out, e.seq);
    PutLe<int32_t>(out, e.business_date);
    PutLe<uint8_t>(out, static_cast<uint8_t>(e.kind));
    PutLe<int64_t>(out, e.amount_fen);
    PutAttributes(out, e.attributes);
  }
}

bool DecodeJournalRecord(std::string_view value, JournalRecord* out) {
  Reader r(value);
  uint8_t format = 0;
  uint32_t count = 0;
  if (!r.Le(&format) || format != kJournalFormat || !r.Le(&out->received_ms) ||
      !r.String16(&out->submitter) || !r.Le(&count) || count == 0 || count > kBatchEventsMax) {
    return false;  // EncodeJournalRecord writes 1..kBatchEventsMax events
  }
  out->events.clear();
  out->events.resize(count);
  for (LoanEvent& e : out->events) {
    uint8_t kind = 0;
    if (!r.String8(&e.institution_id) || !r.String8(&e.loan_id) || !r.Le(&e.seq) ||
        !r.Le(&e.business_date) || !r.Le(&kind) || !r.Le(&e.amount_fen) ||
        !GetAttributes(r, &e.attributes)) {
      return false;
    }
    e.kind = static_cast<EventKind>(kind);
  }
  return r.empty();
}

std::string EncodeU64(uint64_t v) {
  std::string out;
  PutLe(&out, v);
  return out;
}

bool DecodeU64(std::string_view value, uint64_t* out) {
  if (value.size() != 8) return false;
  Reader r(value);
  return r.Le(out);
}

std::string EncodeU32(uint32_t v) {
  std::string out;
  PutLe(&out, v);
  return out;
}

bool DecodeU32(std::string_view value, uint32_t* out) {
  if (value.size() != 4) return false;
  Reader r(value);
  return r.Le(out);
}

// memcpy of a native integer is its little-endian bytes: PutLe asserts the
// host is little-endian.
void StoreU32(char* p, uint32_t v) {
  static_assert(std::endian::native == std::endian::little);
  std::memcpy(p, &v, 4);
}
void StoreU64(char* p, uint64_t v) {
  static_assert(std::endian::native == std::endian::little);
  std::memcpy(p, &v, 8);
}
uint32_t LoadU32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t LoadU64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

std::string InstitutionKey(std::string_view name) {
  std::string key(kMetaInstitutionPrefix);
  key.append(name);
  return key;
}

bool DecodeInstitutionEntry(std::string_view key, std::string_view value, std::string* name,
                            uint32_t* id) {
  if (!key.starts_with(kMetaInstitutionPrefix) || !DecodeU32(value, id)) return false;
  if (*id == 0 || *id > kInstitutionsMax) return false;
  name->assign(key.substr(kMetaInstitutionPrefix.size()));
  return true;
}

}  // namespace loanledger::storage
