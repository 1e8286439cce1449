#include "schema/province.h"

#include <algorithm>
#include <array>

namespace loanledger {
namespace {

// GB/T 2260 province-level codes with their names; ascending by code.
constexpr std::array<ProvinceName, 31> kProvinces = {{
    {"11", "北京市", "Beijing"},
    {"12", "天津市", "Tianjin"},
    {"13", "河北省", "Hebei"},
    {"14", "山西省", "Shanxi"},
    {"15", "内蒙古自治区", "Inner Mongolia"},
    {"21", "辽宁省", "Liaoning"},
    {"22", "吉林省", "Jilin"},
    {"23", "黑龙江省", "Heilongjiang"},
    {"31", "上海市", "Shanghai"},
    {"32", "江苏省", "Jiangsu"},
    {"33", "浙江省", "Zhejiang"},
    {"34", "安徽省", "Anhui"},
    {"35", "福建省", "Fujian"},
    {"36", "江西省", "Jiangxi"},
    {"37", "山东省", "Shandong"},
    {"41", "河南省", "Henan"},
    {"42", "湖北省", "Hubei"},
    {"43", "湖南省", "Hunan"},
    {"44", "广东省", "Guangdong"},
    {"45", "广西壮族自治区", "Guangxi"},
    {"46", "海南省", "Hainan"},
    {"50", "重庆市", "Chongqing"},
    {"51", "四川省", "Sichuan"},
    {"52", "贵州省", "Guizhou"},
    {"53", "云南省", "Yunnan"},
    {"54", "西藏自治区", "Tibet"},
    {"61", "陕西省", "Shaanxi"},
    {"62", "甘肃省", "Gansu"},
    {"63", "青海省", "Qinghai"},
    {"64", "宁夏回族自治区", "Ningxia"},
    {"65", "新疆维吾尔自治区", "Xinjiang"},
}};

const ProvinceName* Find(std::string_view code) {
  const auto it =
      std::lower_bound(kProvinces.begin(), kProvinces.end(), code,
                       [](const ProvinceName& p, std::string_view c) { return p.code < c; });
  return it != kProvinces.end() && it->code == code ? &*it : nullptr;
}

}  // namespace

std::span<const ProvinceName> ProvinceNames() { return kProvinces; }

std::string_view ProvinceChineseName(std::string_view code) {
  const ProvinceName* p = Find(code);
  return p ? p->chinese : std::string_view();
}

std::string_view ProvinceEnglishName(std::string_view code) {
  const ProvinceName* p = Find(code);
  return p ? p->english : std::string_view();
}

}  // namespace loanledger
