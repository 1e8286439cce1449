// Output of the `loanledger` CLI (docs/cli.md) as pure functions from schema
// types to strings, so every format is testable without a server.
//
// Three formats per query: `table` (aligned columns for people; amounts in
// yuan with two decimals, which is the fen figure exactly), `csv` (a header
// then one line per row; amounts in fen) and `json` (the docs/cli.md shapes, keys
// in that order, amounts in fen, one line).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "schema/query.h"
#include "schema/reason.h"

namespace loanledger::client::cli {

enum class OutputFormat : uint8_t { kTable, kCsv, kJson };
std::optional<OutputFormat> ParseOutputFormat(std::string_view text);  // table|csv|json

// Each returns the whole output, ending in '\n'.
std::string FormatReport(const Report& report, OutputFormat format);
// The caller's step and grouping are part of the JSON shape (`step`, `group_by`).
std::string FormatSeries(const Series& series, OutputFormat format);
std::string FormatLoan(const LoanView& loan, OutputFormat format);

// Fen as yuan with thousands separators and exactly two decimals:
// 123456789 -> "1,234,567.89", -5 -> "-0.05". Exact for every int64.
std::string FormatYuan(int64_t fen);

// The figures `submit` reports (docs/cli.md).
struct SubmitCounts {
  uint64_t applied = 0;     // events applied, in acknowledged batches
  uint64_t duplicates = 0;  // events skipped as duplicates, in acknowledged batches
  uint64_t batches = 0;     // batches acknowledged (applied)
  uint64_t rejected = 0;    // events rejected (by the server or unparsable in the file)
  bool operator==(const SubmitCounts&) const = default;
};
// "applied=N duplicates=N batches=N rejected=N" (no newline).
std::string FormatSubmitCounts(const SubmitCounts& counts);

// "FILE:LINE: REASON_NAME: message" (no newline); the reason's description
// stands in for an empty message.
std::string FormatRejectionLine(std::string_view file, uint64_t line, Reason reason,
                                std::string_view message);

}  // namespace loanledger::client::cli
