#include "client/cli/token.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>

#include "schema/check.h"

namespace loanledger::client::cli {
namespace {

std::string Hex(const unsigned char* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 0xf];
  }
  return out;
}

}  // namespace

Result<std::string> NewToken() {
  std::array<unsigned char, kTokenRandomBytes> random{};
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
    return Status::Internal("OpenSSL RAND_bytes failed: no random bytes for a token");
  }
  std::string token(kTokenPrefix);
  token += Hex(random.data(), random.size());
  LL_CHECK(token.size() == kTokenPrefix.size() + 2 * kTokenRandomBytes);
  return token;
}

std::string Sha256Hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_size = 0;
  // One-shot EVP digest; failure here means a broken OpenSSL, not bad input.
  const int ok =
      EVP_Digest(data.data(), data.size(), digest.data(), &digest_size, EVP_sha256(), nullptr);
  LL_CHECK(ok == 1);
  LL_CHECK(digest_size == 32);
  return Hex(digest.data(), digest_size);
}

std::optional<TokenRole> ParseTokenRole(std::string_view text) {
  if (text == "institution") return TokenRole::kInstitution;
  if (text == "regulator") return TokenRole::kRegulator;
  if (text == "admin") return TokenRole::kAdmin;
  return std::nullopt;
}

std::string_view TokenRoleName(TokenRole role) {
  switch (role) {
    case TokenRole::kInstitution:
      return "institution";
    case TokenRole::kRegulator:
      return "regulator";
    case TokenRole::kAdmin:
      return "admin";
  }
  return "?";
}

std::string TokensFileLine(std::string_view token, TokenRole role, std::string_view institution_id,
                           std::string_view name) {
  LL_CHECK((role == TokenRole::kInstitution) == !institution_id.empty());
  LL_CHECK(name.find_first_of(" \t\r\n#") == std::string_view::npos);
  std::string line = Sha256Hex(token);
  line += ' ';
  line += TokenRoleName(role);
  line += ' ';
  line += institution_id.empty() ? std::string_view("-") : institution_id;
  if (!name.empty()) {
    line += ' ';
    line += name;
  }
  return line;
}

}  // namespace loanledger::client::cli
