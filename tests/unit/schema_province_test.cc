// Province names (docs/categories.md): one name per province code, nothing else named.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "schema/category.h"
#include "schema/province.h"

namespace loanledger {
namespace {

TEST(ProvinceNames, NameEveryProvinceCodeAndNoOther) {
  ASSERT_EQ(ProvinceNames().size(), ProvinceCodes().size());
  size_t i = 0;
  for (const uint8_t code : ProvinceCodes()) {
    const std::string text = std::to_string(code);
    EXPECT_EQ(ProvinceNames()[i].code, text);
    EXPECT_FALSE(ProvinceChineseName(text).empty()) << text;
    EXPECT_FALSE(ProvinceEnglishName(text).empty()) << text;
    ++i;
  }
  std::set<std::string_view> names;
  for (const ProvinceName& p : ProvinceNames()) names.insert(p.chinese);
  EXPECT_EQ(names.size(), ProvinceNames().size());
  for (const char* other : {"", "1", "10", "16", "71", "81", "99", "310", "A1"}) {
    EXPECT_TRUE(ProvinceChineseName(other).empty()) << other;
  }
}

TEST(ProvinceNames, KnownNames) {
  EXPECT_EQ(ProvinceChineseName("31"), "上海市");
  EXPECT_EQ(ProvinceChineseName("11"), "北京市");
  EXPECT_EQ(ProvinceChineseName("44"), "广东省");
  EXPECT_EQ(ProvinceChineseName("65"), "新疆维吾尔自治区");
  EXPECT_EQ(ProvinceEnglishName("31"), "Shanghai");
  EXPECT_EQ(ProvinceEnglishName("61"), "Shaanxi");
  EXPECT_EQ(ProvinceEnglishName("14"), "Shanxi");
}

}  // namespace
}  // namespace loanledger
