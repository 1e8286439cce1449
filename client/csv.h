// The CSV form of loan events (docs/data.md): header required, fixed column
// order, comma-separated, booleans 0/1. Streaming: never loads a file whole.
#pragma once

#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <string_view>

#include "schema/event.h"
#include "schema/reason.h"

namespace loanledger::client {

inline constexpr std::string_view kCsvHeader =
    "institution_id,loan_id,seq,business_date,event,amount_fen,borrower_type,enterprise_size,"
    "industry_code,region_code,term_months,credit_line_fen,srdi,tech_enterprise,green,"
    "elderly_care,digital_economy";

// Appends one event as a CSV line (with '\n') to out.
void AppendCsvLine(const LoanEvent& event, std::string& out);

// Parses one CSV data line (without the line terminator). On failure
// returns the reason (kMalformedRecord for a wrong field count, else the
// field's own reason, e.g. kBadBusinessDate) and a message naming the field.
struct CsvParseError {
  Reason reason = Reason::kMalformedRecord;
  std::string message;
};
std::optional<CsvParseError> ParseCsvLine(std::string_view line, LoanEvent& out);

// Reads a CSV stream line by line, tracking physical line numbers (the
// header is line 1). Accepts "\n" and "\r\n" line ends; skips empty lines.
class CsvReader {
 public:
  explicit CsvReader(std::istream& in);
  // Checks the header line. False (with error()) when it is missing or wrong.
  bool ReadHeader();
  enum class Next { kEvent, kBadLine, kEnd };
  // Reads the next data line into event; kBadLine fills parse_error().
  Next ReadNext(LoanEvent& event);
  uint64_t line_number() const { return line_number_; }  // of the line last read
  const CsvParseError& parse_error() const { return parse_error_; }
  const std::string& error() const { return error_; }

 private:
  std::istream& in_;
  std::string line_;
  uint64_t line_number_ = 0;
  CsvParseError parse_error_;
  std::string error_;
};

}  // namespace loanledger::client
