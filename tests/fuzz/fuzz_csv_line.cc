// Fuzz target: the CSV form of events (client/csv.h, docs/data.md).
//
// Properties, for any bytes:
//   1. ParseCsvLine never crashes; an event it accepts passes ValidateEvent
//      and round-trips through AppendCsvLine to an equal event (and the
//      written line is canonical: writing the re-read event gives the same
//      bytes).
//   2. CsvReader over the input as a whole file never crashes, and every
//      event it returns has property 1.
//   3. CsvReader over the input behind a valid header agrees, line by line,
//      with ParseCsvLine applied to each physical line (line numbers, blank
//      lines skipped, "\r\n" accepted, over-long lines refused).
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

#include "client/csv.h"
#include "fuzz_support.h"
#include "schema/event.h"

namespace loanledger::fuzz {
namespace {

using client::CsvParseError;
using client::CsvReader;

// Mirrors kCsvLineBytesMax in client/csv.cc: a physical line (without its
// '\n') longer than this is refused as a whole.
constexpr size_t kLineBytesMax = 4096;

void CheckAcceptedEvent(const LoanEvent& event, std::string_view source) {
  const std::optional<FieldError> invalid = ValidateEvent(event);
  FUZZ_CHECK(!invalid, "accepted line fails ValidateEvent: %s\n  line: %s",
             invalid->message.c_str(), Printable(source).c_str());
  std::string written;
  client::AppendCsvLine(event, written);
  FUZZ_CHECK(!written.empty() && written.back() == '\n' && written.find('\n') == written.size() - 1,
             "AppendCsvLine did not write exactly one line: %s", Printable(written).c_str());
  const std::string_view line(written.data(), written.size() - 1);
  LoanEvent reread;
  const std::optional<CsvParseError> error = client::ParseCsvLine(line, reread);
  FUZZ_CHECK(!error, "written line does not parse: %s\n  written: %s\n  source: %s",
             error->message.c_str(), Printable(line).c_str(), Printable(source).c_str());
  FUZZ_CHECK(reread == event, "round trip changed the event\n  written: %s\n  source: %s",
             Printable(line).c_str(), Printable(source).c_str());
  std::string rewritten;
  client::AppendCsvLine(reread, rewritten);
  FUZZ_CHECK(rewritten == written, "written form is not canonical: %s vs %s",
             Printable(written).c_str(), Printable(rewritten).c_str());
}

void CheckOneLine(std::string_view line) {
  LoanEvent event;
  if (const std::optional<CsvParseError> error = client::ParseCsvLine(line, event)) {
    FUZZ_CHECK(error->reason != Reason::kOk, "a parse error with reason OK: %s",
               error->message.c_str());
    FUZZ_CHECK(!error->message.empty(), "a parse error without a message");
    return;
  }
  CheckAcceptedEvent(event, line);
}

// Property 2: the input as a file, header and all.
void CheckAsFile(std::string_view input) {
  std::istringstream in{std::string(input)};
  CsvReader reader(in);
  if (!reader.ReadHeader()) {
    FUZZ_CHECK(!reader.error().empty(), "ReadHeader failed without an error message");
    return;
  }
  LoanEvent event;
  uint64_t last_line = reader.line_number();
  while (true) {
    const CsvReader::Next next = reader.ReadNext(event);
    if (next == CsvReader::Next::kEnd) break;
    FUZZ_CHECK(reader.line_number() > last_line, "line numbers did not advance");
    last_line = reader.line_number();
    if (next == CsvReader::Next::kEvent) CheckAcceptedEvent(event, "(stream)");
  }
}

// Property 3: the input behind a valid header, against a line-by-line reference.
void CheckStreamAgainstLines(std::string_view input) {
  std::string file(client::kCsvHeader);
  file += '\n';
  file.append(input);
  std::istringstream in(file);
  CsvReader reader(in);
  FUZZ_CHECK(reader.ReadHeader(), "the canonical header was refused: %s", reader.error().c_str());
  FUZZ_CHECK(reader.line_number() == 1, "header read as line %llu",
             static_cast<unsigned long long>(reader.line_number()));

  size_t pos = 0;        // start of the next physical line in input
  uint64_t line_no = 1;  // physical line number of the last line consumed
  LoanEvent got;
  while (true) {
    // The reference: the next non-blank physical line.
    bool have_line = false;
    bool too_long = false;
    std::string_view line;
    while (pos < input.size()) {
      const size_t nl = input.find('\n', pos);
      const size_t end = nl == std::string_view::npos ? input.size() : nl;
      std::string_view raw = input.substr(pos, end - pos);
      pos = nl == std::string_view::npos ? input.size() : nl + 1;
      ++line_no;
      if (raw.size() > kLineBytesMax) {
        too_long = true;
        have_line = true;
        break;
      }
      if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
      if (raw.empty()) continue;
      line = raw;
      have_line = true;
      break;
    }
    const CsvReader::Next next = reader.ReadNext(got);
    if (!have_line) {
      FUZZ_CHECK(next == CsvReader::Next::kEnd,
                 "reader returned a line after the last one (line %llu)",
                 static_cast<unsigned long long>(reader.line_number()));
      return;
    }
    FUZZ_CHECK(next != CsvReader::Next::kEnd, "reader ended before line %llu",
               static_cast<unsigned long long>(line_no));
    FUZZ_CHECK(reader.line_number() == line_no, "reader says line %llu, reference %llu",
               static_cast<unsigned long long>(reader.line_number()),
               static_cast<unsigned long long>(line_no));
    if (too_long) {
      FUZZ_CHECK(next == CsvReader::Next::kBadLine &&
                     reader.parse_error().reason == Reason::kMalformedRecord,
                 "over-long line %llu not refused as malformed",
                 static_cast<unsigned long long>(line_no));
      continue;
    }
    LoanEvent expected;
    const std::optional<CsvParseError> error = client::ParseCsvLine(line, expected);
    if (error) {
      FUZZ_CHECK(next == CsvReader::Next::kBadLine,
                 "line %llu: reader accepted what ParseCsvLine refuses: %s",
                 static_cast<unsigned long long>(line_no), Printable(line).c_str());
      FUZZ_CHECK(reader.parse_error().reason == error->reason &&
                     reader.parse_error().message == error->message,
                 "line %llu: reader error '%s' differs from ParseCsvLine's '%s'",
                 static_cast<unsigned long long>(line_no), reader.parse_error().message.c_str(),
                 error->message.c_str());
    } else {
      FUZZ_CHECK(next == CsvReader::Next::kEvent,
                 "line %llu: reader refused what ParseCsvLine accepts: %s (%s)",
                 static_cast<unsigned long long>(line_no), Printable(line).c_str(),
                 reader.parse_error().message.c_str());
      FUZZ_CHECK(got == expected, "line %llu: reader's event differs from ParseCsvLine's",
                 static_cast<unsigned long long>(line_no));
    }
  }
}

}  // namespace
}  // namespace loanledger::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loanledger::fuzz;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  CheckOneLine(input);
  // The first line alone, as the CLI would hand it over.
  CheckOneLine(input.substr(0, input.find('\n')));
  CheckAsFile(input);
  CheckStreamAgainstLines(input);
  return 0;
}
