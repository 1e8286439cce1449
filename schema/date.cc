#include "schema/date.h"

#include <cstdio>

#include "schema/check.h"

namespace loanledger {

// Howard Hinnant's civil-calendar algorithms (public domain description,
// written here from the published math).
Day DaysFromCivil(CivilDate c) {
  int32_t y = c.year - (c.month <= 2 ? 1 : 0);
  const int32_t era = (y >= 0 ? y : y - 399) / 400;
  const uint32_t yoe = static_cast<uint32_t>(y - era * 400);
  const uint32_t mp = c.month > 2 ? c.month - 3 : c.month + 9;
  const uint32_t doy = (153 * mp + 2) / 5 + c.day - 1;
  const uint32_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int32_t>(doe) - 719468;
}

CivilDate CivilFromDays(Day d) {
  // 64-bit: d + 719468 overflows int32 for d near INT32_MAX, and any Day can
  // arrive here (ValidateEvent formats an out-of-range wire date for its
  // message; found by tests/fuzz). Every int32 day has an int32 year.
  const int64_t z = int64_t{d} + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const uint32_t doe = static_cast<uint32_t>(z - era * 146097);
  const uint32_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const auto y = static_cast<int32_t>(int64_t{yoe} + era * 400);
  const uint32_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const uint32_t mp = (5 * doy + 2) / 153;
  const uint32_t day = doy - (153 * mp + 2) / 5 + 1;
  const uint32_t month = mp < 10 ? mp + 3 : mp - 9;
  return CivilDate{y + (month <= 2 ? 1 : 0), month, day};
}

bool IsLeapYear(int32_t year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

uint32_t DaysInMonth(int32_t year, uint32_t month) {
  LL_CHECK(month >= 1 && month <= 12);
  static constexpr uint32_t kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeapYear(year) ? 29 : kDays[month - 1];
}

std::optional<Day> ParseDate(std::string_view t) {
  if (t.size() != 10 || t[4] != '-' || t[7] != '-') return std::nullopt;
  auto digits = [&](size_t pos, size_t n, uint32_t* out) {
    uint32_t v = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (t[i] < '0' || t[i] > '9') return false;
      v = v * 10 + static_cast<uint32_t>(t[i] - '0');
    }
    *out = v;
    return true;
  };
  uint32_t y = 0, m = 0, d = 0;
  if (!digits(0, 4, &y) || !digits(5, 2, &m) || !digits(8, 2, &d)) return std::nullopt;
  if (m < 1 || m > 12 || d < 1 || d > DaysInMonth(static_cast<int32_t>(y), m)) return std::nullopt;
  return DaysFromCivil(CivilDate{static_cast<int32_t>(y), m, d});
}

std::string FormatDate(Day d) {
  const CivilDate c = CivilFromDays(d);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", c.year, c.month, c.day);
  return std::string(buf);
}

Day YearAgo(Day d) {
  CivilDate c = CivilFromDays(d);
  c.year -= 1;
  if (c.month == 2 && c.day == 29) c.day = 28;  // docs/figures.md: Feb 29 -> Feb 28
  return DaysFromCivil(c);
}

Day PreviousYearEnd(Day d) {
  const CivilDate c = CivilFromDays(d);
  return DaysFromCivil(CivilDate{c.year - 1, 12, 31});
}

std::optional<Step> ParseStep(std::string_view text) {
  if (text == "day") return Step::kDay;
  if (text == "month") return Step::kMonth;
  if (text == "quarter") return Step::kQuarter;
  if (text == "year") return Step::kYear;
  return std::nullopt;
}

std::string_view StepName(Step step) {
  switch (step) {
    case Step::kDay:
      return "day";
    case Step::kMonth:
      return "month";
    case Step::kQuarter:
      return "quarter";
    case Step::kYear:
      return "year";
  }
  return "?";
}

Day PeriodEnd(Day d, Step step) {
  const CivilDate c = CivilFromDays(d);
  switch (step) {
    case Step::kDay:
      return d;
    case Step::kMonth:
      return DaysFromCivil(CivilDate{c.year, c.month, DaysInMonth(c.year, c.month)});
    case Step::kQuarter: {
      const uint32_t m = ((c.month - 1) / 3) * 3 + 3;
      return DaysFromCivil(CivilDate{c.year, m, DaysInMonth(c.year, m)});
    }
    case Step::kYear:
      return DaysFromCivil(CivilDate{c.year, 12, 31});
  }
  LL_CHECK(false);
  return d;
}

}  // namespace loanledger
