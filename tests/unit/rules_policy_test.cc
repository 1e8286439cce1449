// rules/policy-2025.json (docs/policy-2025.md): it parses, its first ten
// categories are the default file's exactly, STRATEGIC_EMERGING,
// TRADITIONAL_UPGRADE_MLT and the three region groups place hand-picked
// loans as the mapping says, and a ledger under it gives hand-computed
// figures.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "schema/rules.h"
#include "tests/unit/ledger_test_support.h"

namespace loanledger::storage::test {
namespace {

std::string PolicyText() {
  std::ifstream in(std::string(LOANLEDGER_SOURCE_DIR) + "/rules/policy-2025.json");
  EXPECT_TRUE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::shared_ptr<const Rules> Policy() {
  static const std::shared_ptr<const Rules> rules = [] {
    Result<std::shared_ptr<const Rules>> r = Rules::Parse(PolicyText());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : nullptr;
  }();
  return rules;
}

// The file's bit of a category (RuleMask bit = id - 1).
RuleMask Bit(const Rules& rules, std::string_view name) {
  const std::optional<Category> id = rules.FindCategory(name);
  EXPECT_TRUE(id.has_value()) << name;
  return id ? RuleMask{1} << (static_cast<size_t>(*id) - 1) : 0;
}

LoanAttributes Loan(std::string industry, uint16_t term_months, std::string region = "310115") {
  LoanAttributes a = Attrs();
  a.industry_code = std::move(industry);
  a.term_months = term_months;
  a.region_code = std::move(region);
  return a;
}

TEST(RulesPolicy2025, ParsesWithTheNamedCategoriesAndGroups) {
  auto rules = Policy();
  ASSERT_NE(rules, nullptr);
  EXPECT_EQ(rules->version(), "2025-policy");
  ASSERT_EQ(rules->category_count(), kCategoryCount + 2);
  EXPECT_EQ(rules->CategoryName(static_cast<Category>(kCategoryCount)), "STRATEGIC_EMERGING");
  EXPECT_EQ(rules->CategoryName(static_cast<Category>(kCategoryCount + 1)),
            "TRADITIONAL_UPGRADE_MLT");
  ASSERT_EQ(rules->region_group_count(), 3u);
  EXPECT_EQ(rules->RegionGroupName(0), "JING_JIN_JI");
  EXPECT_EQ(rules->RegionGroupName(1), "YANGTZE_RIVER_DELTA");
  EXPECT_EQ(rules->RegionGroupName(2), "GREATER_BAY_AREA");
}

TEST(RulesPolicy2025, TheDefaultCategoriesAreUnchanged) {
  auto rules = Policy();
  ASSERT_NE(rules, nullptr);
  const std::shared_ptr<const Rules>& def = DefaultRules();
  for (size_t c = 0; c < kCategoryCount; ++c) {
    EXPECT_EQ(rules->CategoryName(static_cast<Category>(c)),
              def->CategoryName(static_cast<Category>(c)));
  }
  // Random loans over codes of every kind: the low ten bits agree.
  static const char* kCodes[] = {"C",     "C05",   "C13",   "C2710", "C2761", "C3110", "C3240",
                                 "C2511", "C2651", "C3911", "C3587", "C3741", "C4343", "I6532",
                                 "I6513", "G5621", "F5211", "M7340", "A0111", ""};
  std::mt19937_64 rng(2025);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  const RuleMask low = (RuleMask{1} << (kCategoryCount - 1)) - 1;
  for (int i = 0; i < 50'000; ++i) {
    LoanAttributes a = Loan(kCodes[pick(std::size(kCodes))], static_cast<uint16_t>(1 + pick(120)));
    a.borrower_type = static_cast<BorrowerType>(1 + pick(4));
    a.enterprise_size = static_cast<EnterpriseSize>(pick(5));
    a.credit_line_fen = static_cast<int64_t>(pick(3)) * 700'000'000;
    a.srdi = pick(2);
    a.tech_enterprise = pick(2);
    a.green = pick(2);
    a.elderly_care = pick(2);
    a.digital_economy = pick(2);
    ASSERT_EQ(rules->Classify(a) & low, def->Classify(a)) << a.industry_code;
  }
}

TEST(RulesPolicy2025, StrategicEmergingFollowsTheMapping) {
  auto rules = Policy();
  ASSERT_NE(rules, nullptr);
  const RuleMask se = Bit(*rules, "STRATEGIC_EMERGING");
  struct Case {
    const char* code;
    bool in;
    const char* why;
  };
  const Case cases[] = {
      {"C3911", true, "computers (information technology, C39)"},
      {"C3973", true, "integrated circuits (C39)"},
      {"I6410", true, "internet access (I64)"},
      {"I65", true, "software and IT services, the division itself"},
      {"C3491", true, "industrial robots (artificial intelligence)"},
      {"I6532", true, "internet-of-things services"},
      {"C3983", true, "sensors (internet of things)"},
      {"C2761", true, "biological medicines (C276)"},
      {"C2710", false, "chemical APIs: pharmaceuticals, not biotechnology"},
      {"C3581", true, "medical diagnostic equipment"},
      {"C3587", false, "eyeglasses"},
      {"M7340", true, "medical research and development"},
      {"C2651", true, "synthetic resins (new materials)"},
      {"C3254", true, "rare and rare-earth metal rolling (new materials)"},
      {"C3421", true, "metal-cutting machine tools (high-end equipment)"},
      {"C3711", true, "high-speed trains (high-end equipment)"},
      {"C3737", true, "offshore engineering equipment"},
      {"C3741", true, "aircraft (aerospace)"},
      {"C3742", true, "spacecraft and launch vehicles (aerospace)"},
      {"C4343", true, "aircraft repair (aerospace)"},
      {"G5621", true, "general aviation (aerospace)"},
      {"I6331", true, "satellite transmission (aerospace)"},
      {"C37", false, "transport equipment, too coarse to place"},
      {"C", false, "manufacturing, too coarse to place"},
      {"C3110", false, "steelmaking"},
      {"F5211", false, "retail"},
      {"", false, "household consumer"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ((rules->Classify(Loan(c.code, 36)) & se) != 0, c.in) << c.code << ": " << c.why;
  }
}

TEST(RulesPolicy2025, TraditionalUpgradeIsSteelNonferrousPetrochemicalsMediumLongTerm) {
  auto rules = Policy();
  ASSERT_NE(rules, nullptr);
  const RuleMask tu = Bit(*rules, "TRADITIONAL_UPGRADE_MLT");
  const RuleMask mlt = Bit(*rules, "MANUFACTURING_MLT");
  struct Case {
    const char* code;
    uint16_t term_months;
    bool in;
  };
  const Case cases[] = {
      {"C3110", 36, true},  {"C3120", 13, true},  {"C3110", 12, false}, {"C3240", 60, true},
      {"C32", 24, true},    {"C2511", 120, true}, {"C2611", 24, true},  {"C2651", 24, true},
      {"C2611", 6, false},  {"C33", 60, false},   {"C3011", 60, false}, {"C27", 60, false},
      {"B0610", 60, false}, {"C", 60, false},
  };
  for (const Case& c : cases) {
    const RuleMask m = rules->Classify(Loan(c.code, c.term_months));
    EXPECT_EQ((m & tu) != 0, c.in) << c.code << " " << c.term_months;
    if (c.in) {
      EXPECT_NE(m & mlt, 0u) << c.code << ": a subset of MANUFACTURING_MLT";
    }
  }
}

TEST(RulesPolicy2025, RegionGroupsByProvinceAndCity) {
  auto rules = Policy();
  ASSERT_NE(rules, nullptr);
  const RegionGroupMask jjj = 1, yrd = 2, gba = 4;
  struct Case {
    const char* region;
    RegionGroupMask groups;
  };
  const Case cases[] = {
      {"110105", jjj}, {"120101", jjj}, {"130102", jjj}, {"140105", 0},   {"310115", yrd},
      {"320105", yrd}, {"330106", yrd}, {"340102", yrd}, {"350102", 0},   {"440106", gba},
      {"440305", gba}, {"440402", gba}, {"440604", gba}, {"440703", gba}, {"441202", gba},
      {"441302", gba}, {"441900", gba}, {"442000", gba}, {"440507", 0},   {"441502", 0},
      {"441802", 0},   {"440200", 0},   {"450103", 0},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(rules->RegionGroups(c.region), c.groups) << c.region;
  }
}

// A handful of loans in a ledger under the file; every figure computed by hand.
TEST(RulesPolicy2025, HandComputedFigures) {
  const ScopedTempDir temp;
  const std::string& dir = temp.path;
  LedgerOptions o;
  o.path = dir;
  o.sync = false;
  o.rules_text = PolicyText();
  Result<std::unique_ptr<Ledger>> opened = Ledger::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Ledger& l = **opened;
  const Category se = *Policy()->FindCategory("STRATEGIC_EMERGING");
  const Category tu = *Policy()->FindCategory("TRADITIONAL_UPGRADE_MLT");
  // L1 computers in Shenzhen; L2 steel in Hebei, 5 years; L3 steel in
  // Jiangsu, short term; L4 retail in Shantou (no group); L5 synthetic
  // resin in Shanghai, 2 years, reclassified to retail on 2024-05-01; L6
  // internet of things in Dongguan, short term.
  const std::vector<Batch> batches = {
      MakeBatch({Disburse("L2", 1, "2023-05-01", 500'000, Loan("C3110", 60, "130102")),
                 Disburse("L6", 1, "2023-12-01", 25'000, Loan("I6532", 6, "441900"))}),
      MakeBatch({Disburse("L1", 1, "2024-01-10", 1'000'000, Loan("C3911", 36, "440305")),
                 Disburse("L3", 1, "2024-02-01", 300'000, Loan("C3110", 12, "320105")),
                 Disburse("L4", 1, "2024-03-01", 70'000, Loan("F5211", 12, "440507")),
                 Disburse("L5", 1, "2024-04-01", 40'000, Loan("C2651", 24, "310115"))}),
      MakeBatch({Reclassify("L5", 2, "2024-05-01", Loan("F5211", 24, "310115")),
                 Repay("L1", 2, "2024-06-01", 200'000, Loan("C3911", 36, "440305"))}),
  };
  for (const Batch& b : batches) {
    Result<ApplyResult> r = l.Apply(b);
    ASSERT_TRUE(r.ok() && r->applied) << (r.ok() ? "rejected" : r.status().ToString());
  }
  ReportQuery q;
  q.date = D("2024-06-30");
  Result<Report> r = l.QueryReport(q);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rules_version, "2025-policy");
  ASSERT_EQ(r->rows.size(), kCategoryCount + 2);
  EXPECT_EQ(Row(*r, Category::kTotal).balance_fen, 1'735'000);
  EXPECT_EQ(Row(*r, Category::kTotal).loan_count, 6);
  const ReportRow s = Row(*r, se);
  EXPECT_EQ(s.category_name, "STRATEGIC_EMERGING");
  EXPECT_EQ(s.balance_fen, 825'000);  // L1 800,000 + L6 25,000; L5 left on 2024-05-01
  EXPECT_EQ(s.loan_count, 2);
  EXPECT_EQ(s.balance_year_ago_fen, 0);
  EXPECT_FALSE(s.yoy_growth_pct.has_value());
  EXPECT_EQ(s.ytd_increase_fen, 800'000);     // from L6's 25,000 at 2023-12-31
  EXPECT_EQ(s.disbursed_ytd_fen, 1'040'000);  // L1 and L5 (disbursed as a new material)
  EXPECT_EQ(s.repaid_ytd_fen, 200'000);
  const ReportRow t = Row(*r, tu);
  EXPECT_EQ(t.balance_fen, 500'000);  // L2; L3 is short term, L5 left
  EXPECT_EQ(t.loan_count, 1);
  EXPECT_EQ(t.balance_year_ago_fen, 500'000);
  ASSERT_TRUE(t.yoy_growth_pct.has_value());
  EXPECT_EQ(*t.yoy_growth_pct, 0.0);
  EXPECT_EQ(t.disbursed_ytd_fen, 40'000);  // L5
  // Before L5's reclassification it is in both new categories.
  q.date = D("2024-04-30");
  r = l.QueryReport(q);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Row(*r, se).balance_fen, 1'065'000);  // L1 1,000,000 + L5 + L6
  EXPECT_EQ(Row(*r, tu).balance_fen, 540'000);
  // By region group.
  q.date = D("2024-06-30");
  q.by = GroupBy::kRegionGroup;
  r = l.QueryReport(q);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Row(*r, Category::kTotal, "JING_JIN_JI").balance_fen, 500'000);
  EXPECT_EQ(Row(*r, Category::kTotal, "YANGTZE_RIVER_DELTA").balance_fen, 340'000);
  EXPECT_EQ(Row(*r, Category::kTotal, "GREATER_BAY_AREA").balance_fen, 825'000);
  EXPECT_EQ(Row(*r, Category::kTotal, "GREATER_BAY_AREA").loan_count, 2);
  EXPECT_EQ(Row(*r, se, "GREATER_BAY_AREA").balance_fen, 825'000);
  EXPECT_TRUE(IsZeroOrAbsent(*r, se, "JING_JIN_JI"));
  // L5 left STRATEGIC_EMERGING in Shanghai: no balance, its flow stays.
  EXPECT_EQ(Row(*r, se, "YANGTZE_RIVER_DELTA").balance_fen, 0);
  EXPECT_EQ(Row(*r, se, "YANGTZE_RIVER_DELTA").loan_count, 0);
  EXPECT_EQ(Row(*r, se, "YANGTZE_RIVER_DELTA").disbursed_ytd_fen, 40'000);
  EXPECT_EQ(Row(*r, tu, "JING_JIN_JI").balance_fen, 500'000);
  EXPECT_TRUE(IsZeroOrAbsent(*r, tu, "GREATER_BAY_AREA"));
  // Shantou (L4) is in Guangdong but not in the Greater Bay Area.
  q.by = GroupBy::kProvince;
  r = l.QueryReport(q);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Row(*r, Category::kTotal, "44").balance_fen, 895'000);
}

}  // namespace
}  // namespace loanledger::storage::test
