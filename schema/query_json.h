// The JSON form of query answers: the CLI's `--format json` (docs/cli.md) and
// the bodies of loanledgerd's HTTP API (docs/http.md), one function each so that
// both print the same bytes. One line ending in '\n', keys in docs/cli.md order,
// amounts as JSON integers in fen (exact), growth as a double or null.
//
// Grouped by province, every row or point also carries `group_name`, the
// province's Chinese name (schema/province.h), right after `group`.
#pragma once

#include <string>
#include <vector>

#include "schema/category.h"
#include "schema/query.h"

namespace loanledger {

std::string ReportJson(const Report& report);  // shape depends on report.by
std::string SeriesJson(const Series& series);  // shape depends on series.by
std::string LoanJson(const LoanView& loan);

// Names of the categories in mask, in the rules' order.
std::vector<std::string> CategoryNamesOf(CategoryMask mask);

}  // namespace loanledger
