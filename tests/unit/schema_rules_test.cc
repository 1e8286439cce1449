// Rules files (docs/categories.md, schema/rules.h): every bad file refused with its
// field and reason, every predicate and combinator, and the default file
// against the compiled-in §4 functions (schema/category.h) on many loans.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "schema/category.h"
#include "schema/rules.h"

namespace loanledger {
namespace {

std::shared_ptr<const Rules> MustParse(const std::string& text) {
  Result<std::shared_ptr<const Rules>> r = Rules::Parse(text);
  EXPECT_TRUE(r.ok()) << r.status().ToString() << "\n" << text;
  return r.ok() ? *r : nullptr;
}

// The error message of a bad file ("" when it parses).
std::string ErrorOf(const std::string& text) {
  Result<std::shared_ptr<const Rules>> r = Rules::Parse(text);
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  return r.status().message();
}

// A file with one category whose rule is `rule`.
std::string OneRule(const std::string& rule) {
  return R"({"version":"t","categories":[{"name":"X","rule":)" + rule + "}]}";
}

LoanAttributes Plain() {
  LoanAttributes a;
  a.borrower_type = BorrowerType::kEnterprise;
  a.enterprise_size = EnterpriseSize::kLarge;
  a.industry_code = "F5211";
  a.region_code = "310115";
  a.term_months = 12;
  a.credit_line_fen = 50'000'000'000;
  return a;
}

bool In(const std::string& rule, const LoanAttributes& a) {
  auto rules = MustParse(OneRule(rule));
  return rules != nullptr && rules->Classify(a) == 1;
}

TEST(SchemaRules, ExampleOfTheSpecParses) {
  auto r = MustParse(R"({"version": "2024-default",
 "categories": [
   {"name": "MANUFACTURING", "rule": {"industry_prefix": ["C"]}},
   {"name": "MANUFACTURING_MLT", "rule": {"all": [{"category": "MANUFACTURING"}, {"term_months_gt": 12}]}},
   {"name": "GREEN", "rule": {"flag": "green"}}],
 "region_groups": [
   {"name": "YANGTZE_RIVER_DELTA", "region_prefix": ["31", "32", "33", "34"]}]})");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->version(), "2024-default");
  EXPECT_EQ(r->category_count(), 4u);
  EXPECT_EQ(r->CategoryName(Category{0}), "TOTAL");
  EXPECT_EQ(r->CategoryName(Category{2}), "MANUFACTURING_MLT");
  EXPECT_EQ(r->FindCategory("GREEN"), Category{3});
  EXPECT_EQ(r->FindCategory("TOTAL"), Category::kTotal);
  EXPECT_FALSE(r->FindCategory("NOPE").has_value());
  ASSERT_EQ(r->region_group_count(), 1u);
  EXPECT_EQ(r->RegionGroupName(0), "YANGTZE_RIVER_DELTA");
  EXPECT_EQ(r->RegionGroups("320105"), 1u);
  EXPECT_EQ(r->RegionGroups("110105"), 0u);
  LoanAttributes a = Plain();
  a.industry_code = "C3911";
  a.term_months = 36;
  EXPECT_EQ(r->Classify(a), 0b011u);
  a.green = true;
  a.term_months = 12;
  EXPECT_EQ(r->Classify(a), 0b101u);
  EXPECT_EQ(r->Names(0b101u), (std::vector<std::string>{"TOTAL", "MANUFACTURING", "GREEN"}));
}

TEST(SchemaRules, EveryPredicate) {
  LoanAttributes a = Plain();
  EXPECT_TRUE(In(R"({"industry_prefix": ["A", "F52"]})", a));
  EXPECT_FALSE(In(R"({"industry_prefix": ["F53", "F5212"]})", a));
  EXPECT_TRUE(In(R"({"industry_prefix": ["F5211"]})", a));
  a.industry_code = "C2710";
  EXPECT_TRUE(In(R"({"industry_table": "high_tech_manufacturing"})", a));
  a.industry_code = "C31";
  EXPECT_FALSE(In(R"({"industry_table": "high_tech_manufacturing"})", a));
  EXPECT_TRUE(In(R"({"borrower_type": ["INDIVIDUAL", "ENTERPRISE"]})", a));
  EXPECT_FALSE(In(R"({"borrower_type": ["INDIVIDUAL"]})", a));
  EXPECT_TRUE(In(R"({"enterprise_size": ["LARGE"]})", a));
  EXPECT_FALSE(In(R"({"enterprise_size": ["NA", "SMALL"]})", a));
  EXPECT_FALSE(In(R"({"term_months_gt": 12})", a));
  EXPECT_TRUE(In(R"({"term_months_gt": 11})", a));
  EXPECT_TRUE(In(R"({"term_months_le": 12})", a));
  EXPECT_FALSE(In(R"({"term_months_le": 11})", a));
  EXPECT_TRUE(In(R"({"credit_line_fen_le": 50000000000})", a));
  EXPECT_FALSE(In(R"({"credit_line_fen_le": 49999999999})", a));
  for (const char* flag : {"srdi", "tech_enterprise", "green", "elderly_care", "digital_economy"}) {
    LoanAttributes f = Plain();
    const std::string rule = std::string(R"({"flag": ")") + flag + "\"}";
    EXPECT_FALSE(In(rule, f)) << flag;
    const std::string name = flag;
    f.srdi = name == "srdi";
    f.tech_enterprise = name == "tech_enterprise";
    f.green = name == "green";
    f.elderly_care = name == "elderly_care";
    f.digital_economy = name == "digital_economy";
    EXPECT_TRUE(In(rule, f)) << flag;
  }
  EXPECT_TRUE(In(R"({"region_prefix": ["44", "3101"]})", a));
  EXPECT_FALSE(In(R"({"region_prefix": ["32", "310116"]})", a));
  EXPECT_TRUE(In(R"({"category": "TOTAL"})", a));
}

TEST(SchemaRules, CombinatorsAndReferences) {
  LoanAttributes a = Plain();  // F5211, term 12
  EXPECT_TRUE(In(R"({"all": [{"industry_prefix": ["F"]}, {"term_months_le": 12}]})", a));
  EXPECT_FALSE(In(R"({"all": [{"industry_prefix": ["F"]}, {"term_months_gt": 12}]})", a));
  EXPECT_TRUE(In(R"({"any": [{"industry_prefix": ["C"]}, {"term_months_le": 12}]})", a));
  EXPECT_FALSE(In(R"({"any": [{"industry_prefix": ["C"]}, {"term_months_gt": 12}]})", a));
  EXPECT_TRUE(In(R"({"not": {"industry_prefix": ["C"]}})", a));
  EXPECT_FALSE(In(R"({"not": {"not": {"industry_prefix": ["C"]}}})", a));
  // Nested: the sizes of skipped subtrees are right.
  EXPECT_TRUE(In(R"({"any": [{"all": [{"flag": "green"}, {"any": [{"term_months_gt": 1}]}]},
                            {"not": {"all": [{"flag": "srdi"}, {"flag": "green"}]}}]})",
                 a));
  auto r = MustParse(R"({"version":"v","categories":[
    {"name":"A","rule":{"industry_prefix":["F"]}},
    {"name":"B","rule":{"flag":"green"}},
    {"name":"A_OR_B","rule":{"any":[{"category":"A"},{"category":"B"}]}},
    {"name":"NOT_A","rule":{"not":{"category":"A"}}}]})");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->Classify(a), 0b0101u);
  a.industry_code = "C3911";
  EXPECT_EQ(r->Classify(a), 0b1000u);
  a.green = true;
  EXPECT_EQ(r->Classify(a), 0b1110u);
}

TEST(SchemaRules, SixtyFourCategoriesAndThirtyTwoGroups) {
  std::string text = R"({"version":"v","categories":[)";
  for (int i = 0; i < 64; ++i) {
    text += std::string(i ? "," : "") + R"({"name":"C)" + std::to_string(i) +
            R"(","rule":{"term_months_gt":)" + std::to_string(i) + "}}";
  }
  text += R"(],"region_groups":[)";
  for (int g = 0; g < 32; ++g) {
    text += std::string(g ? "," : "") + R"({"name":"G)" + std::to_string(g) +
            R"(","region_prefix":[")" + std::to_string(11 + g) + "\"]}";
  }
  text += "]}";
  auto r = MustParse(text);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->category_count(), 65u);
  LoanAttributes a = Plain();
  a.term_months = 600;
  EXPECT_EQ(r->Classify(a), ~RuleMask{0});
  a.term_months = 1;
  EXPECT_EQ(r->Classify(a), RuleMask{1});
  EXPECT_EQ(r->RegionGroups("310115"), RegionGroupMask{1} << 20);
  EXPECT_EQ(r->RegionGroups("420115"), RegionGroupMask{1} << 31);

  // One more of either is refused.
  std::string more = text;
  more.replace(more.find(R"(],"region_groups")"), 1, R"(,{"name":"C64","rule":{"flag":"green"}}])");
  EXPECT_EQ(ErrorOf(more), "categories: too many categories: 65 (at most 64)");
  more = text;
  more.replace(more.size() - 2, 1, R"(,{"name":"G32","region_prefix":["65"]}])");
  EXPECT_EQ(ErrorOf(more), "region_groups: too many region groups: 33 (at most 32)");
}

// A version is any 1..64 printable characters: a Chinese name counts its
// characters, not its UTF-8 bytes; control characters are refused.
TEST(SchemaRules, VersionIsPrintableTextOfUpTo64Characters) {
  auto file = [](const std::string& version) {
    return R"({"version":")" + version + R"(","categories":[]})";
  };
  std::string chinese64;
  for (int i = 0; i < 32; ++i) chinese64 += "年版";  // 64 characters, 192 bytes
  for (const std::string& ok : {std::string("2025年版"), chinese64, std::string(64, 'v'),
                                std::string("2024-default v2 (draft)")}) {
    Result<std::shared_ptr<const Rules>> r = Rules::Parse(file(ok));
    ASSERT_TRUE(r.ok()) << ok << ": " << r.status().ToString();
    EXPECT_EQ((*r)->version(), ok);
  }
  for (const std::string& bad :
       {chinese64 + "年", std::string(65, 'v'), std::string("a\\tb"), std::string("a\\u0001b"),
        std::string("a\\u007fb"), std::string("a\\u0085b")}) {
    Result<std::shared_ptr<const Rules>> r = Rules::Parse(file(bad));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().message(), "version: must be 1..64 printable characters") << bad;
  }
}

struct BadFile {
  std::string text;
  std::string error;
};

TEST(SchemaRules, BadFilesNameTheFieldAndReason) {
  const std::vector<BadFile> cases = {
      {"{", ""},  // checked by prefix below
      {"[]", "(file): must be a JSON object, got array"},
      {R"({"categories":[]})", "version: missing"},
      {R"({"version":3,"categories":[]})", "version: must be a string, got number"},
      {R"({"version":"","categories":[]})", "version: must be 1..64 printable characters"},
      {R"({"version":"v"})", "categories: missing"},
      {R"({"version":"v","categories":{}})", "categories: must be an array, got object"},
      {R"({"version":"v","categories":[],"extra":1})",
       "extra: unknown field (expected version, categories, region_groups)"},
      // Found by fuzz_rules: an empty key, or one holding ": ", is quoted.
      {R"({"": []})", "\"\": unknown field (expected version, categories, region_groups)"},
      {R"({"a: b": 1})", "\"a: b\": unknown field (expected version, categories, region_groups)"},
      {R"({"version":"v","categories":[3]})", "categories[0]: must be an object, got number"},
      {R"({"version":"v","categories":[{"rule":{"flag":"green"}}]})",
       "categories[0].name: missing"},
      {R"({"version":"v","categories":[{"name":"A"}]})", "categories[0].rule: missing"},
      {R"({"version":"v","categories":[{"name":"A","rule":{"flag":"green"},"x":1}]})",
       "categories[0].x: unknown field (expected name, rule)"},
      {R"({"version":"v","categories":[{"name":"a","rule":{"flag":"green"}}]})",
       "categories[0].name: bad name \"a\" (must match [A-Z][A-Z0-9_]{0,39})"},
      {R"({"version":"v","categories":[{"name":"1A","rule":{"flag":"green"}}]})",
       "categories[0].name: bad name \"1A\" (must match [A-Z][A-Z0-9_]{0,39})"},
      {R"({"version":"v","categories":[{"name":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","rule":{"flag":"green"}}]})",
       "categories[0].name: bad name \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\" (must match "
       "[A-Z][A-Z0-9_]{0,39})"},
      {R"({"version":"v","categories":[{"name":7,"rule":{"flag":"green"}}]})",
       "categories[0].name: must be a string, got number"},
      {R"({"version":"v","categories":[{"name":"TOTAL","rule":{"flag":"green"}}]})",
       "categories[0].name: TOTAL is implicit; it cannot be defined"},
      {R"({"version":"v","categories":[{"name":"A","rule":{"flag":"green"}},{"name":"A","rule":{"flag":"srdi"}}]})",
       "categories[1].name: duplicate name \"A\""},
      {OneRule("{}"),
       "categories[0].rule: a rule object holds exactly one predicate or combinator, found 0"},
      {OneRule(R"({"flag":"green","term_months_gt":3})"),
       "categories[0].rule: a rule object holds exactly one predicate or combinator, found 2 "
       "(flag, term_months_gt)"},
      {OneRule("[]"), "categories[0].rule: a rule must be an object, got array"},
      {OneRule(R"({"colour":"green"})"), ""},  // unknown predicate: prefix checked below
      {OneRule(R"({"flag":"blue"})"),
       "categories[0].rule.flag: unknown flag \"blue\" (one of srdi, tech_enterprise, green, "
       "elderly_care, digital_economy)"},
      {OneRule(R"({"flag":true})"), "categories[0].rule.flag: must be a string, got boolean"},
      {OneRule(R"({"industry_prefix":"C"})"),
       "categories[0].rule.industry_prefix: must be an array of strings, got string"},
      {OneRule(R"({"industry_prefix":[]})"),
       "categories[0].rule.industry_prefix: must not be empty"},
      {OneRule(R"({"industry_prefix":["C",3]})"),
       "categories[0].rule.industry_prefix[1]: must be a string, got number"},
      {OneRule(R"({"industry_prefix":["X1"]})"),
       "categories[0].rule.industry_prefix[0]: bad prefix \"X1\" (a letter A-T and 0..4 digits)"},
      {OneRule(R"({"industry_prefix":["C39111"]})"),
       "categories[0].rule.industry_prefix[0]: bad prefix \"C39111\" (a letter A-T and 0..4 "
       "digits)"},
      {OneRule(R"({"region_prefix":["3a"]})"),
       "categories[0].rule.region_prefix[0]: bad prefix \"3a\" (1..6 digits)"},
      {OneRule(R"({"industry_table":"low_tech"})"),
       "categories[0].rule.industry_table: unknown table \"low_tech\" (one of "
       "high_tech_manufacturing)"},
      {OneRule(R"({"borrower_type":["BANK"]})"),
       "categories[0].rule.borrower_type[0]: unknown value \"BANK\" (one of ENTERPRISE, "
       "INDIVIDUAL_BUSINESS, SMALL_MICRO_OWNER, INDIVIDUAL)"},
      {OneRule(R"({"enterprise_size":["HUGE"]})"),
       "categories[0].rule.enterprise_size[0]: unknown value \"HUGE\" (one of NA, LARGE, "
       "MEDIUM, SMALL, MICRO)"},
      {OneRule(R"({"term_months_gt":"12"})"),
       "categories[0].rule.term_months_gt: must be an integer, got string"},
      {OneRule(R"({"term_months_le":1.5})"),
       "categories[0].rule.term_months_le: must be an integer, got number"},
      {OneRule(R"({"term_months_le":-1})"),
       "categories[0].rule.term_months_le: must be within 0..65535"},
      {OneRule(R"({"credit_line_fen_le":18446744073709551615})"),
       "categories[0].rule.credit_line_fen_le: must be within 0..9223372036854775807"},
      {OneRule(R"({"all":{}})"), "categories[0].rule.all: must be an array of rules, got object"},
      {OneRule(R"({"any":[]})"), "categories[0].rule.any: must not be empty"},
      {OneRule(R"({"all":[{"flag":"green"},{"nope":1}]})"), ""},  // prefix below
      {OneRule(R"({"not":[{"flag":"green"}]})"),
       "categories[0].rule.not: a rule must be an object, got array"},
      {OneRule(R"({"category":"NOPE"})"), "categories[0].rule.category: unknown category \"NOPE\""},
      {OneRule(R"({"category":"X"})"), "categories[0].rule.category: cycle: X refers to itself"},
      {R"({"version":"v","categories":[{"name":"A","rule":{"category":"B"}},{"name":"B","rule":{"flag":"green"}}]})",
       "categories[0].rule.category: category \"B\" is defined after A; a rule may refer only to "
       "an earlier category"},
      {R"({"version":"v","categories":[{"name":"A","rule":{"any":[{"category":"B"}]}},{"name":"B","rule":{"not":{"category":"C"}}},{"name":"C","rule":{"category":"A"}}]})",
       "categories[0].rule.any[0].category: cycle: A -> B -> C -> A"},
      {R"({"version":"v","categories":[],"region_groups":[{"name":"G"}]})",
       "region_groups[0].region_prefix: missing"},
      {R"({"version":"v","categories":[],"region_groups":[{"name":"G","region_prefix":["31"]},{"name":"G","region_prefix":["32"]}]})",
       "region_groups[1].name: duplicate name \"G\""},
      {R"({"version":"v","categories":[],"region_groups":[{"name":"g","region_prefix":["31"]}]})",
       "region_groups[0].name: bad name \"g\" (must match [A-Z][A-Z0-9_]{0,39})"},
      {R"({"version":"v","categories":[],"region_groups":[{"name":"G","region_prefix":["31"],"x":1}]})",
       "region_groups[0].x: unknown field (expected name, region_prefix)"},
      {R"({"version":"v","categories":[],"region_groups":{}})",
       "region_groups: must be an array, got object"},
  };
  for (const BadFile& c : cases) {
    const std::string error = ErrorOf(c.text);
    EXPECT_FALSE(error.empty()) << c.text;
    if (!c.error.empty()) {
      EXPECT_EQ(error, c.error) << c.text;
    }
  }
  EXPECT_EQ(ErrorOf("{").rfind("(file): not valid JSON", 0), 0u) << ErrorOf("{");
  EXPECT_EQ(ErrorOf(OneRule(R"({"colour":"green"})"))
                .rfind("categories[0].rule.colour: unknown predicate \"colour\"", 0),
            0u);
  EXPECT_EQ(ErrorOf(OneRule(R"({"":1})")).rfind("categories[0].rule.\"\": unknown predicate", 0),
            0u)
      << ErrorOf(OneRule(R"({"":1})"));
  EXPECT_EQ(ErrorOf(OneRule(R"({"all":[{"flag":"green"},{"nope":1}]})"))
                .rfind("categories[0].rule.all[1].nope: unknown predicate \"nope\"", 0),
            0u);
  std::string deep = R"({"flag":"green"})";
  for (int i = 0; i < 40; ++i) deep = R"({"not":)" + deep + "}";
  EXPECT_NE(ErrorOf(OneRule(deep)).find("nested deeper than 32"), std::string::npos);
}

// A random loan, biased towards the boundaries of the §4 rules.
LoanAttributes RandomLoan(std::mt19937_64& rng) {
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  LoanAttributes a;
  a.borrower_type = static_cast<BorrowerType>(1 + pick(4));
  a.enterprise_size = a.borrower_type == BorrowerType::kEnterprise
                          ? static_cast<EnterpriseSize>(1 + pick(4))
                          : EnterpriseSize::kNa;
  static const std::vector<std::string> kFixed = {"C",     "C12",  "C13",   "C43",   "C44",
                                                  "C27",   "C374", "C3741", "C4343", "C05",
                                                  "C2664", "C391", "C3911", "F5211", "A0111"};
  switch (pick(3)) {
    case 0:
      a.industry_code = kFixed[pick(kFixed.size())];
      break;
    case 1: {
      a.industry_code = std::string(1, static_cast<char>('A' + pick(20)));
      const size_t digits = std::vector<size_t>{0, 2, 3, 4}[pick(4)];
      for (size_t i = 0; i < digits; ++i) a.industry_code += static_cast<char>('0' + pick(10));
      break;
    }
    default: {
      a.industry_code = HighTechPrefixes()[pick(HighTechPrefixes().size())];
      while (a.industry_code.size() < 5 && pick(2))
        a.industry_code += static_cast<char>('0' + pick(10));
      break;
    }
  }
  if (a.borrower_type == BorrowerType::kIndividual && pick(4) == 0) a.industry_code = "";
  a.region_code = std::to_string(ProvinceCodes()[pick(31)]) + "0101";
  a.term_months = static_cast<uint16_t>(pick(3) == 0 ? 11 + pick(3) : 1 + pick(600));
  a.credit_line_fen =
      static_cast<int64_t>(pick(3) == 0 ? 999'999'999 + pick(3) : rng() % 4'000'000'000);
  a.srdi = pick(2);
  a.tech_enterprise = pick(2);
  a.green = pick(2);
  a.elderly_care = pick(2);
  a.digital_economy = pick(2);
  return a;
}

// A rule nested far deeper than kRuleDepthMax, behind a reference from an
// earlier category (the reference check walks the later rule before it is
// compiled): refused, not a stack overflow. The file is just under 1 MiB.
TEST(SchemaRules, DeepRuleBehindAForwardReferenceIsRefused) {
  const size_t levels = 100'000;
  std::string rule;
  for (size_t i = 0; i < levels; ++i) rule += R"({"not":)";
  rule += R"({"category":"A"})" + std::string(levels, '}');
  const std::string text =
      R"({"version":"v","categories":[{"name":"A","rule":{"category":"B"}},{"name":"B","rule":)" +
      rule + "}]}";
  ASSERT_LE(text.size(), kRulesFileBytesMax);
  EXPECT_EQ(ErrorOf(text),
            "categories[0].rule.category: category \"B\" is defined after A; a rule may refer only "
            "to an earlier category");
  // Shallow enough to be walked: the cycle is named.
  EXPECT_EQ(ErrorOf(R"({"version":"v","categories":[{"name":"A","rule":{"category":"B"}},)"
                    R"({"name":"B","rule":{"not":{"any":[{"category":"A"}]}}}]})"),
            "categories[0].rule.category: cycle: A -> B -> A");
}

TEST(SchemaRules, DefaultFileEqualsTheSection4Functions) {
  const std::shared_ptr<const Rules>& rules = DefaultRules();
  ASSERT_NE(rules, nullptr);
  EXPECT_EQ(rules->version(), "2024-default");
  ASSERT_EQ(rules->category_count(), kCategoryCount);
  for (const CategoryRule& rule : CategoryRules()) {
    EXPECT_EQ(rules->CategoryName(rule.category), rule.name);  // same ids as the pinned enum
  }
  std::mt19937_64 rng(20240930);
  size_t members[kCategoryCount] = {};
  for (int i = 0; i < 200'000; ++i) {
    const LoanAttributes a = RandomLoan(rng);
    const CategoryMask expected = Classify(a);
    ASSERT_EQ(rules->ClassifyWithTotal(a), expected)
        << a.industry_code << " " << static_cast<int>(a.borrower_type) << " " << a.term_months
        << " " << a.credit_line_fen;
    for (size_t c = 0; c < kCategoryCount; ++c) members[c] += (expected >> c) & 1;
  }
  // Every category was both hit and missed: the comparison means something.
  for (size_t c = 0; c < kCategoryCount; ++c) {
    EXPECT_GT(members[c], 1000u) << CategoryName(static_cast<Category>(c));
    if (c > 0) {
      EXPECT_LT(members[c], 199'000u) << CategoryName(static_cast<Category>(c));
    }
  }
}

TEST(SchemaRules, DefaultRulesTextIsTheShippedFile) {
  std::ifstream in(std::string(LOANLEDGER_SOURCE_DIR) + "/rules/default.json");
  ASSERT_TRUE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), DefaultRulesText());
}

}  // namespace
}  // namespace loanledger
