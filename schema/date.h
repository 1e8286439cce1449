// Business dates as day numbers: days since 1970-01-01 in the proleptic
// Gregorian calendar. No time zones anywhere: a business date is a calendar
// day, not an instant.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace loanledger {

// Days since 1970-01-01; on disk as a big-endian u32 offset (storage/README.md).
using Day = int32_t;

struct CivilDate {
  int32_t year;    // e.g. 2024
  uint32_t month;  // 1..12
  uint32_t day;    // 1..31
};

// docs/data.md: business dates lie in 1990-01-01..2199-12-31.
inline constexpr Day kDayMin = 7305;   // 1990-01-01
inline constexpr Day kDayMax = 84005;  // 2199-12-31

Day DaysFromCivil(CivilDate c);
CivilDate CivilFromDays(Day d);
bool IsLeapYear(int32_t year);
uint32_t DaysInMonth(int32_t year, uint32_t month);

// Parses exactly `YYYY-MM-DD` (a real calendar date, any year 0000..9999).
// Range checks against kDayMin/kDayMax are the caller's (validation's) job.
std::optional<Day> ParseDate(std::string_view text);
std::string FormatDate(Day d);  // `YYYY-MM-DD`

// docs/figures.md: the same month and day a year earlier; Feb 29 becomes Feb 28.
Day YearAgo(Day d);
// Dec 31 of the year before d's year.
Day PreviousYearEnd(Day d);

// Period ends for series (docs/figures.md).
enum class Step : uint8_t { kDay = 0, kMonth = 1, kQuarter = 2, kYear = 3 };  // on the wire
std::optional<Step> ParseStep(std::string_view text);  // day|month|quarter|year
std::string_view StepName(Step step);
// The last day of the period (of kind `step`) that contains d.
Day PeriodEnd(Day d, Step step);

}  // namespace loanledger
