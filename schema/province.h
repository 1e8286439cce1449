// Province names (docs/categories.md, "Provinces"): every output that groups by
// province shows the name next to the two-digit code.
#pragma once

#include <span>
#include <string_view>

namespace loanledger {

struct ProvinceName {
  std::string_view code;     // "31"
  std::string_view chinese;  // "上海市" (the official short-form administrative name)
  std::string_view english;  // "Shanghai" (pinyin, the customary English form)
};

// The 31 province-level divisions of the mainland, codes ascending.
std::span<const ProvinceName> ProvinceNames();

// The Chinese name of a two-digit province code ("31" -> "上海市"); empty
// for anything else.
std::string_view ProvinceChineseName(std::string_view code);
// The English (pinyin) name ("31" -> "Shanghai"); empty for anything else.
std::string_view ProvinceEnglishName(std::string_view code);

}  // namespace loanledger
