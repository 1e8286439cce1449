#include "server/auth.h"

#include <openssl/evp.h>

#include <fstream>
#include <sstream>

#include "schema/check.h"
#include "schema/event.h"

namespace loanledger::server {
namespace {

bool IsHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    const bool digit = c >= '0' && c <= '9';
    const bool lower = c >= 'a' && c <= 'f';
    if (!digit && !lower) return false;
  }
  return true;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// Splits off the next whitespace-separated word.
std::string_view NextWord(std::string_view& rest) {
  rest = Trim(rest);
  size_t end = 0;
  while (end < rest.size() && rest[end] != ' ' && rest[end] != '\t') ++end;
  std::string_view word = rest.substr(0, end);
  rest.remove_prefix(end);
  return word;
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  const int ok = EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  LL_CHECK(ok == 1);  // SHA-256 in memory cannot fail short of a broken OpenSSL
  LL_CHECK(length == 32);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

std::string_view RoleName(wire::Role role) {
  switch (role) {
    case wire::Role::INSTITUTION:
      return "institution";
    case wire::Role::REGULATOR:
      return "regulator";
    case wire::Role::ADMIN:
      return "admin";
    case wire::Role::NONE:
      break;
  }
  return "none";
}

Result<TokenTable> TokenTable::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot open tokens file " + path);
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::IoError("cannot read tokens file " + path);
  return Parse(text.str(), path);
}

TokenTable::TokenTable(std::unique_ptr<const Map> map) : state_(std::make_unique<State>()) {
  LL_CHECK(map != nullptr);
  state_->current.store(map.get(), std::memory_order_release);
  state_->generations.push_back(std::move(map));
}

void TokenTable::Replace(TokenTable&& next) {
  LL_CHECK(next.state_ != nullptr && next.state_.get() != state_.get());
  std::scoped_lock lock(state_->mu, next.state_->mu);
  LL_CHECK(!next.state_->generations.empty());
  const Map* fresh = next.state_->generations.back().get();
  for (auto& g : next.state_->generations) state_->generations.push_back(std::move(g));
  next.state_->generations.clear();
  next.state_->current.store(nullptr, std::memory_order_release);
  state_->current.store(fresh, std::memory_order_release);
}

Result<TokenTable> TokenTable::Parse(std::string_view text, std::string_view origin) {
  auto by_hash = std::make_unique<Map>();
  size_t line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (const size_t hash = line.find('#'); hash != std::string_view::npos)
      line = line.substr(0, hash);
    line = Trim(line);
    if (line.empty()) continue;
    auto fail = [&](const std::string& why) {
      return Status::InvalidArgument(std::string(origin) + ":" + std::to_string(line_no) + ": " +
                                     why);
    };
    std::string_view rest = line;
    const std::string digest = Lower(NextWord(rest));
    const std::string_view role_word = NextWord(rest);
    const std::string_view institution = NextWord(rest);
    const std::string_view name = Trim(rest);
    if (!IsHex64(digest)) return fail("expected the token's SHA-256 as 64 hex characters");
    Principal p;
    if (role_word == "institution") {
      p.role = wire::Role::INSTITUTION;
      // "-" is valid by the character set of docs/data.md but means "none" here.
      if (institution == "-" || !IsValidInstitutionId(institution)) {
        return fail("an institution token needs a valid institution id (1-32 of A-Z 0-9 _ -)");
      }
      p.institution_id = std::string(institution);
    } else if (role_word == "regulator" || role_word == "admin") {
      p.role = role_word == "admin" ? wire::Role::ADMIN : wire::Role::REGULATOR;
      if (institution != "-")
        return fail("a " + std::string(role_word) + " token takes '-' as institution");
    } else {
      return fail("role must be institution, regulator or admin");
    }
    p.name = name.empty() ? "token:" + digest.substr(0, 8) : std::string(name);
    if (!by_hash->emplace(digest, std::move(p)).second) return fail("duplicate token hash");
  }
  return TokenTable(std::move(by_hash));
}

const Principal* TokenTable::Authenticate(std::string_view token) const {
  if (token.empty()) return nullptr;
  const Map* by_hash = state_->current.load(std::memory_order_acquire);
  LL_CHECK(by_hash != nullptr);  // a moved-from or emptied table is not used
  const auto it = by_hash->find(Sha256Hex(token));
  return it == by_hash->end() ? nullptr : &it->second;
}

}  // namespace loanledger::server
