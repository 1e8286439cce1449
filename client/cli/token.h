// Bearer tokens (docs/operations.md): `loanledger token new` makes one and the line
// that the server's tokens file needs for it. The server stores and compares
// only the SHA-256 of a token, never the token itself.
//
// Tokens file line: `<sha256-hex-of-token> <role> <institution_id-or-dash> [name]`.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "schema/status.h"

namespace loanledger::client::cli {

// "llt_" + 64 lowercase hex digits of 32 bytes from OpenSSL's RAND_bytes.
inline constexpr std::string_view kTokenPrefix = "llt_";
inline constexpr size_t kTokenRandomBytes = 32;

// kInternal when the random generator fails.
Result<std::string> NewToken();

// Lowercase hex SHA-256 (OpenSSL EVP) of the whole string.
std::string Sha256Hex(std::string_view data);

enum class TokenRole : uint8_t { kInstitution, kRegulator, kAdmin };
std::optional<TokenRole> ParseTokenRole(std::string_view text);  // institution|regulator|admin
std::string_view TokenRoleName(TokenRole role);

// The tokens-file line for token (no newline). REQUIRES: institution_id is
// valid for kInstitution and empty otherwise; name has no whitespace or '#'.
std::string TokensFileLine(std::string_view token, TokenRole role, std::string_view institution_id,
                           std::string_view name);

}  // namespace loanledger::client::cli
