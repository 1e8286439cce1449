// LoanSlot: one loan in the in-memory loan table, packed into one cache
// line (the table holds every loan: 10M loans must fit in memory, and a
// batch's lookups are cache misses). Internal to storage/.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

#include "schema/category.h"
#include "schema/check.h"
#include "schema/event.h"
#include "storage/codec.h"

namespace loanledger::storage {

// LoanAttributes without its strings: the industry code (at most 5 chars)
// inline, the 6-digit region code as a number.
struct PackedAttributes {
  int64_t credit_line_fen = 0;
  uint32_t region = 0;    // region_code as a number, 0 = none
  char industry[5] = {};  // industry_code, industry_len chars, no NUL
  uint8_t industry_len = 0;
  uint16_t term_months = 0;
  uint8_t borrower_type = 0;
  uint8_t enterprise_size = 0;
  uint8_t flags = 0;  // srdi 1, tech 2, green 4, elderly 8, digital 16

  // REQUIRES: a passes ValidateEvent's attribute rules.
  static PackedAttributes From(const LoanAttributes& a) {
    PackedAttributes p;
    p.credit_line_fen = a.credit_line_fen;
    LL_CHECK(a.region_code.size() == 6 && a.industry_code.size() <= sizeof p.industry);
    for (char c : a.region_code) p.region = p.region * 10 + static_cast<uint32_t>(c - '0');
    std::memcpy(p.industry, a.industry_code.data(), a.industry_code.size());
    p.industry_len = static_cast<uint8_t>(a.industry_code.size());
    p.term_months = a.term_months;
    p.borrower_type = static_cast<uint8_t>(a.borrower_type);
    p.enterprise_size = static_cast<uint8_t>(a.enterprise_size);
    p.flags =
        static_cast<uint8_t>((a.srdi ? 1 : 0) | (a.tech_enterprise ? 2 : 0) | (a.green ? 4 : 0) |
                             (a.elderly_care ? 8 : 0) | (a.digital_economy ? 16 : 0));
    return p;
  }

  LoanAttributes Unpack() const {
    LoanAttributes a;
    a.borrower_type = static_cast<BorrowerType>(borrower_type);
    a.enterprise_size = static_cast<EnterpriseSize>(enterprise_size);
    a.industry_code.assign(industry, industry_len);
    char region_text[6];
    uint32_t r = region;
    for (int i = 5; i >= 0; --i, r /= 10) region_text[i] = static_cast<char>('0' + r % 10);
    a.region_code.assign(region_text, 6);
    a.term_months = term_months;
    a.credit_line_fen = credit_line_fen;
    a.srdi = flags & 1;
    a.tech_enterprise = flags & 2;
    a.green = flags & 4;
    a.elderly_care = flags & 8;
    a.digital_economy = flags & 16;
    return a;
  }

  bool operator==(const PackedAttributes& o) const {
    return credit_line_fen == o.credit_line_fen && region == o.region &&
           industry_len == o.industry_len && std::memcmp(industry, o.industry, industry_len) == 0 &&
           term_months == o.term_months && borrower_type == o.borrower_type &&
           enterprise_size == o.enterprise_size && flags == o.flags;
  }
  uint8_t province() const { return static_cast<uint8_t>(region / 10000); }
};

// LoanSlot::mask before the writer's Classifier (classifier.h) resolves it.
inline constexpr uint16_t kMaskUnresolved = 0xFFFF;

// A loan as the writer sees it.
struct LoanSlot {
  uint64_t last_seq = 0;
  int64_t balance_fen = 0;
  uint64_t stamp = 0;           // the batch that last took an undo copy of it (writer only)
  PackedAttributes attributes;  // as of the latest event
  Day last_date = 0;
  uint16_t mask = kMaskUnresolved;  // the id of its categories in the Classifier, when exists
  bool exists = false;              // the loan has at least one applied event

  uint8_t province() const { return attributes.province(); }

  LoanState ToState() const {
    return LoanState{last_seq, last_date, balance_fen, attributes.Unpack()};
  }
  static LoanSlot FromState(const LoanState& s) {
    LoanSlot slot;
    slot.last_seq = s.last_seq;
    slot.last_date = s.last_date;
    slot.balance_fen = s.balance_fen;
    slot.attributes = PackedAttributes::From(s.attributes);
    slot.mask = kMaskUnresolved;  // classified when the writer next touches it
    slot.exists = true;
    return slot;
  }
};
// 56 bytes: with its key's position, one 64-byte LoanTable entry.
static_assert(sizeof(LoanSlot) <= 56, "a loan slot and its key position fill one cache line");

}  // namespace loanledger::storage
