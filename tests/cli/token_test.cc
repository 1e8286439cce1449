// Tokens (docs/operations.md): format, SHA-256 hashing, and the tokens-file line.
#include "client/cli/token.h"

#include <gtest/gtest.h>

#include <set>

namespace loanledger::client::cli {
namespace {

TEST(Token, IsThePrefixAnd64LowercaseHexDigits) {
  const Result<std::string> token = NewToken();
  ASSERT_TRUE(token.ok());
  ASSERT_EQ(token->size(), 68u);
  EXPECT_EQ(token->substr(0, 4), "llt_");
  EXPECT_EQ(token->find_first_not_of("0123456789abcdef", 4), std::string::npos);
}

TEST(Token, EveryTokenIsNew) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(seen.insert(NewToken().value()).second);
}

TEST(Token, Sha256HexMatchesKnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Token, TokensFileLineHasHashRoleInstitutionAndName) {
  const std::string token = "llt_" + std::string(64, 'a');
  EXPECT_EQ(TokensFileLine(token, TokenRole::kInstitution, "B0001", ""),
            Sha256Hex(token) + " institution B0001");
  EXPECT_EQ(TokensFileLine(token, TokenRole::kRegulator, "", "pboc"),
            Sha256Hex(token) + " regulator - pboc");
  EXPECT_EQ(TokensFileLine(token, TokenRole::kAdmin, "", ""), Sha256Hex(token) + " admin -");
}

TEST(Token, RoleNamesRoundTrip) {
  for (TokenRole role : {TokenRole::kInstitution, TokenRole::kRegulator, TokenRole::kAdmin}) {
    EXPECT_EQ(ParseTokenRole(TokenRoleName(role)), role);
  }
  EXPECT_FALSE(ParseTokenRole("Admin").has_value());
}

}  // namespace
}  // namespace loanledger::client::cli
