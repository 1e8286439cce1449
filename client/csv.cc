#include "client/csv.h"

#include <array>
#include <charconv>
#include <limits>
#include <string>

#include "schema/check.h"
#include "schema/limits.h"

namespace loanledger::client {
namespace {

constexpr size_t kCsvFieldCount = 17;
// A valid line is at most ~260 bytes (32 + 64 + 20 + 10 + ... + 16 commas);
// anything much longer is malformed, and the bound keeps the reader's memory
// fixed whatever the file holds.
constexpr size_t kCsvLineBytesMax = 4096;
constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
// What an error message echoes of a bad field (a hostile field is not quoted whole).
constexpr size_t kEchoBytesMax = 40;

// Column positions, in kCsvHeader order.
enum Field : size_t {
  kInstitutionId,
  kLoanId,
  kSeq,
  kBusinessDate,
  kEvent,
  kAmountFen,
  kBorrowerType,
  kEnterpriseSize,
  kIndustryCode,
  kRegionCode,
  kTermMonths,
  kCreditLineFen,
  kSrdi,
  kTechEnterprise,
  kGreen,
  kElderlyCare,
  kDigitalEconomy,
};
constexpr std::array<std::string_view, kCsvFieldCount> kFieldNames = {
    "institution_id", "loan_id",         "seq",
    "business_date",  "event",           "amount_fen",
    "borrower_type",  "enterprise_size", "industry_code",
    "region_code",    "term_months",     "credit_line_fen",
    "srdi",           "tech_enterprise", "green",
    "elderly_care",   "digital_economy",
};

std::string Echo(std::string_view s) {
  std::string out = "\"";
  for (char c : s.substr(0, kEchoBytesMax)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > kEchoBytesMax) out += "...";
  out += '"';
  return out;
}

CsvParseError FieldErrorFor(Reason reason, Field field, std::string_view what,
                            std::string_view value) {
  std::string message(kFieldNames[field]);
  message += ": ";
  message += what;
  message += " (got ";
  message += Echo(value);
  message += ')';
  return CsvParseError{reason, std::move(message)};
}

// Splits on ','; returns the number of fields found (may exceed kCsvFieldCount,
// in which case only the first kCsvFieldCount are stored).
size_t SplitFields(std::string_view line, std::array<std::string_view, kCsvFieldCount>& fields) {
  size_t count = 0;
  size_t start = 0;
  while (true) {
    const size_t comma = line.find(',', start);
    const std::string_view field = line.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (count < kCsvFieldCount) fields[count] = field;
    ++count;
    if (comma == std::string_view::npos) return count;
    start = comma + 1;
  }
}

// Digits only (no sign, no space), the whole field, within [0, max].
template <typename T>
bool ParseUnsigned(std::string_view s, T max, T& out) {
  if (s.empty() || s[0] < '0' || s[0] > '9')
    return false;  // from_chars would take '-' for signed T
  T value{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || value > max) return false;
  out = value;
  return true;
}

std::optional<CsvParseError> ParseFlag(std::string_view s, Field field, bool& out) {
  if (s == "0" || s == "1") {
    out = s[0] == '1';
    return std::nullopt;
  }
  return FieldErrorFor(Reason::kBadFlag, field, "must be 0 or 1", s);
}

// The leading fields: identity, order, kind and amount.
std::optional<CsvParseError> ParseEventFields(const std::array<std::string_view, kCsvFieldCount>& f,
                                              LoanEvent& e) {
  if (!IsValidInstitutionId(f[kInstitutionId])) {
    return FieldErrorFor(Reason::kBadInstitutionId, kInstitutionId, "must be 1-32 of A-Z 0-9 _ -",
                         f[kInstitutionId]);
  }
  e.institution_id.assign(f[kInstitutionId]);
  if (!IsValidLoanId(f[kLoanId])) {
    return FieldErrorFor(Reason::kBadLoanId, kLoanId, "must be 1-64 printable ASCII without comma",
                         f[kLoanId]);
  }
  e.loan_id.assign(f[kLoanId]);
  if (!ParseUnsigned<uint64_t>(f[kSeq], std::numeric_limits<uint64_t>::max(), e.seq) ||
      e.seq == 0) {
    return FieldErrorFor(Reason::kBadSeq, kSeq, "must be an integer >= 1 (digits only)", f[kSeq]);
  }
  const std::optional<Day> date = ParseDate(f[kBusinessDate]);
  if (!date || *date < kDayMin || *date > kDayMax) {
    return FieldErrorFor(Reason::kBadBusinessDate, kBusinessDate,
                         "must be YYYY-MM-DD within 1990-01-01..2199-12-31", f[kBusinessDate]);
  }
  e.business_date = *date;
  const std::optional<EventKind> kind = ParseEventKind(f[kEvent]);
  if (!kind) {
    return FieldErrorFor(Reason::kBadEventKind, kEvent,
                         "must be DISBURSE, REPAY, WRITE_OFF or RECLASSIFY", f[kEvent]);
  }
  e.kind = *kind;
  if (!ParseUnsigned<int64_t>(f[kAmountFen], kAmountFenMax, e.amount_fen)) {
    return FieldErrorFor(Reason::kBadAmount, kAmountFen,
                         "must be an integer 0..10^15 (digits only)", f[kAmountFen]);
  }
  return std::nullopt;
}

// The classifying attributes.
std::optional<CsvParseError> ParseAttributeFields(
    const std::array<std::string_view, kCsvFieldCount>& f, LoanAttributes& a) {
  const std::optional<BorrowerType> borrower = ParseBorrowerType(f[kBorrowerType]);
  if (!borrower) {
    return FieldErrorFor(Reason::kBadBorrowerType, kBorrowerType,
                         "must be ENTERPRISE, INDIVIDUAL_BUSINESS, SMALL_MICRO_OWNER or INDIVIDUAL",
                         f[kBorrowerType]);
  }
  a.borrower_type = *borrower;
  const std::optional<EnterpriseSize> size = ParseEnterpriseSize(f[kEnterpriseSize]);
  if (!size) {
    return FieldErrorFor(Reason::kBadEnterpriseSize, kEnterpriseSize,
                         "must be LARGE, MEDIUM, SMALL, MICRO or NA", f[kEnterpriseSize]);
  }
  a.enterprise_size = *size;
  a.industry_code.assign(f[kIndustryCode]);
  a.region_code.assign(f[kRegionCode]);
  uint16_t term = 0;
  if (!ParseUnsigned<uint16_t>(f[kTermMonths], kTermMonthsMax, term)) {
    return FieldErrorFor(Reason::kBadTermMonths, kTermMonths,
                         "must be an integer 1..600 (digits only)", f[kTermMonths]);
  }
  a.term_months = term;
  if (!ParseUnsigned<int64_t>(f[kCreditLineFen], kCreditLineFenMax, a.credit_line_fen)) {
    return FieldErrorFor(Reason::kBadCreditLine, kCreditLineFen,
                         "must be an integer 0..9223372036854775807 (digits only)",
                         f[kCreditLineFen]);
  }
  bool* const flags[] = {&a.srdi, &a.tech_enterprise, &a.green, &a.elderly_care,
                         &a.digital_economy};
  for (size_t i = 0; i < 5; ++i) {
    const auto field = static_cast<Field>(kSrdi + i);
    if (auto error = ParseFlag(f[field], field, *flags[i])) return error;
  }
  return std::nullopt;
}

void AppendInteger(std::string& out, uint64_t value) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  LL_CHECK(ec == std::errc());
  out.append(buf, end);
}

void AppendSigned(std::string& out, int64_t value) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  LL_CHECK(ec == std::errc());
  out.append(buf, end);
}

}  // namespace

void AppendCsvLine(const LoanEvent& e, std::string& out) {
  const LoanAttributes& a = e.attributes;
  out += e.institution_id;
  out += ',';
  out += e.loan_id;
  out += ',';
  AppendInteger(out, e.seq);
  out += ',';
  out += FormatDate(e.business_date);
  out += ',';
  out += EventKindName(e.kind);
  out += ',';
  AppendSigned(out, e.amount_fen);
  out += ',';
  out += BorrowerTypeName(a.borrower_type);
  out += ',';
  out += EnterpriseSizeName(a.enterprise_size);
  out += ',';
  out += a.industry_code;
  out += ',';
  out += a.region_code;
  out += ',';
  AppendInteger(out, a.term_months);
  out += ',';
  AppendSigned(out, a.credit_line_fen);
  for (bool flag : {a.srdi, a.tech_enterprise, a.green, a.elderly_care, a.digital_economy}) {
    out += ',';
    out += flag ? '1' : '0';
  }
  out += '\n';
}

std::optional<CsvParseError> ParseCsvLine(std::string_view line, LoanEvent& out) {
  std::array<std::string_view, kCsvFieldCount> fields;
  const size_t count = SplitFields(line, fields);
  if (count != kCsvFieldCount) {
    return CsvParseError{Reason::kMalformedRecord, "expected " + std::to_string(kCsvFieldCount) +
                                                       " comma-separated fields, got " +
                                                       std::to_string(count)};
  }
  LoanEvent event;
  if (auto error = ParseEventFields(fields, event)) return error;
  if (auto error = ParseAttributeFields(fields, event.attributes)) return error;
  // The rules that span fields (amount vs kind, size vs borrower, industry,
  // region, term range) and a second look at every single-field rule.
  if (std::optional<FieldError> invalid = ValidateEvent(event)) {
    return CsvParseError{invalid->reason, std::move(invalid->message)};
  }
  out = std::move(event);
  return std::nullopt;
}

CsvReader::CsvReader(std::istream& in) : in_(in) {}

namespace {

enum class LineRead { kLine, kTooLong, kEnd };

// Reads one physical line into buffer (without its "\n" or "\r\n"), never
// holding more than kCsvLineBytesMax bytes of it.
LineRead ReadPhysicalLine(std::istream& in, std::string& buffer, std::string_view& line) {
  if (buffer.size() != kCsvLineBytesMax + 1) buffer.resize(kCsvLineBytesMax + 1);
  in.getline(buffer.data(), static_cast<std::streamsize>(buffer.size()));
  const auto extracted = static_cast<size_t>(in.gcount());
  if (in.bad()) return LineRead::kEnd;
  if (in.fail() && !in.eof()) {
    if (extracted == 0) return LineRead::kEnd;
    // More than kCsvLineBytesMax bytes before the newline: skip the rest.
    in.clear();
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
    return LineRead::kTooLong;
  }
  if (extracted == 0 && in.eof()) return LineRead::kEnd;
  // On success gcount counts the '\n' too; at end of file without one, it does not.
  size_t length = in.eof() ? extracted : extracted - 1;
  if (length > 0 && buffer[length - 1] == '\r') --length;
  line = std::string_view(buffer.data(), length);
  return LineRead::kLine;
}

}  // namespace

bool CsvReader::ReadHeader() {
  std::string_view line;
  while (true) {
    const LineRead read = ReadPhysicalLine(in_, line_, line);
    if (read == LineRead::kEnd) {
      error_ = "missing header: the file is empty";
      return false;
    }
    ++line_number_;
    if (read == LineRead::kTooLong) {
      error_ = "the header line is too long";
      return false;
    }
    if (line_number_ == 1 && line.starts_with(kUtf8Bom)) line.remove_prefix(kUtf8Bom.size());
    if (!line.empty()) break;  // blank lines before the header are skipped like any other
  }
  if (line != kCsvHeader) {
    error_ = "the header must be exactly: " + std::string(kCsvHeader);
    return false;
  }
  return true;
}

CsvReader::Next CsvReader::ReadNext(LoanEvent& event) {
  std::string_view line;
  while (true) {
    const LineRead read = ReadPhysicalLine(in_, line_, line);
    if (read == LineRead::kEnd) return Next::kEnd;
    ++line_number_;
    if (read == LineRead::kTooLong) {
      parse_error_ =
          CsvParseError{Reason::kMalformedRecord,
                        "line longer than " + std::to_string(kCsvLineBytesMax) + " bytes"};
      return Next::kBadLine;
    }
    if (line.empty()) continue;
    if (std::optional<CsvParseError> error = ParseCsvLine(line, event)) {
      parse_error_ = std::move(*error);
      return Next::kBadLine;
    }
    return Next::kEvent;
  }
}

}  // namespace loanledger::client
