// Loan snapshot files (storage/loan_snapshot.h), without a ledger: round
// trips of a few loans and of enough to span several 1 MiB blocks, read by
// one reader and by two readers taking alternate blocks; the empty
// snapshot; a writer that never commits; and every kind of damage a reader
// must refuse (a flipped byte, a truncated or extended file, a bad header,
// a block header that miscounts its loans, a record that is not a loan);
// format 2's per-loan masks and rules digest, and a bad mask table or index.
// The file layout is also parsed here independently of the reader, as
// documented (storage/README.md, loan_snapshot.cc), so that a reader and a
// writer that agree on a wrong layout still fail.
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "schema/category.h"
#include "schema/date.h"
#include "schema/event.h"
#include "schema/limits.h"
#include "schema/rules.h"
#include "storage/codec.h"
#include "storage/loan_slot.h"
#include "storage/loan_snapshot.h"
#include "tests/unit/ledger_test_support.h"

namespace loanledger::storage {
namespace {

namespace fs = std::filesystem;
using test::ReadFile;
using test::WriteFile;

// Layout constants as documented (restated, not
// borrowed: the test checks the documented format).
constexpr size_t kHeaderBytes = 64;
constexpr size_t kBlockHeaderBytes = 16;

// ---------------------------------------------------------------------------
// Loans with varied keys and attributes

const std::vector<std::string> kRegions = {"110105", "310115", "440300", "510104", "650102",
                                           "120101", "330106", "210202", "460100", "540102"};
const std::vector<std::string> kIndustries = {"C2710", "F5211", "I6510", "A",    "K66",
                                              "C39",   "B0610", "T9600", "C3911"};
const std::vector<std::string> kInstitutions = {"B0001", "RCB-17", "A", "BANK_OF_X",
                                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"};

struct TestLoan {
  std::string key;
  LoanState state;
};

// A valid state drawn from rng: every borrower type, industry and region
// above, every flag, terms 1..600, credit lines and balances up to their
// limits, dates over the whole allowed range.
LoanState RandomState(std::mt19937_64& rng) {
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  LoanState s;
  s.last_seq = static_cast<uint64_t>(pick(1, 3) == 1 ? pick(1, 5) : pick(1, int64_t{1} << 40));
  s.last_date = static_cast<Day>(pick(kDayMin, kDayMax));
  s.balance_fen = pick(0, 2) == 0 ? pick(0, 1000) : pick(0, kLoanBalanceFenMax);
  LoanAttributes& a = s.attributes;
  a.borrower_type = static_cast<BorrowerType>(pick(1, 4));
  a.enterprise_size = a.borrower_type == BorrowerType::kEnterprise
                          ? static_cast<EnterpriseSize>(pick(1, 4))
                          : EnterpriseSize::kNa;
  a.industry_code = a.borrower_type == BorrowerType::kIndividual && pick(0, 1) == 0
                        ? std::string()
                        : kIndustries[static_cast<size_t>(pick(0, kIndustries.size() - 1))];
  a.region_code = kRegions[static_cast<size_t>(pick(0, kRegions.size() - 1))];
  a.term_months = static_cast<uint16_t>(pick(1, kTermMonthsMax));
  a.credit_line_fen = pick(0, 1) == 0 ? pick(0, 1'000'000) : pick(0, kCreditLineFenMax);
  a.srdi = pick(0, 1) == 1;
  a.tech_enterprise = pick(0, 1) == 1;
  a.green = pick(0, 1) == 1;
  a.elderly_care = pick(0, 1) == 1;
  a.digital_economy = pick(0, 1) == 1;
  return s;
}

// n loans with distinct keys: institutions of 1..32 characters, loan ids of
// 1..64 printable characters (spaces and punctuation included).
std::vector<TestLoan> MakeLoans(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<TestLoan> loans;
  loans.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& inst = kInstitutions[i % kInstitutions.size()];
    std::string loan = "L" + std::to_string(i);
    switch (i % 4) {
      case 0:
        break;
      case 1:
        loan += " #/.:;!~";
        break;
      case 2:
        loan = "x" + std::string(63 - loan.size(), '-') + loan;
        break;  // 64 characters
      case 3:
        loan = "{" + loan + "}\"'`";
        break;
    }
    TestLoan t{LoanKey(inst, loan), RandomState(rng)};
    EXPECT_FALSE(ValidateEvent(LoanEvent{inst, loan, t.state.last_seq, t.state.last_date,
                                         EventKind::kDisburse, 1, t.state.attributes})
                     .has_value())
        << "test generator made an invalid loan " << i;
    loans.push_back(std::move(t));
  }
  return loans;
}

// Writes `loans` as the ledger does when piece_loans > 0 (Add a piece,
// WritePending, ...), else Adds everything and lets Commit write it.
Status WriteLoans(const std::string& path, uint64_t replay_from, const std::vector<TestLoan>& loans,
                  size_t piece_loans) {
  Result<std::unique_ptr<SnapshotWriter>> w = SnapshotWriter::Create(path, replay_from);
  if (!w.ok()) return w.status();
  for (size_t i = 0; i < loans.size(); ++i) {
    (*w)->Add(loans[i].key, LoanSlot::FromState(loans[i].state));
    if (piece_loans > 0 && (i + 1) % piece_loans == 0) {
      if (Status s = (*w)->WritePending(); !s.ok()) return s;
    }
  }
  EXPECT_EQ((*w)->loans(), loans.size());
  return (*w)->Commit();
}

// What a read returned: every loan in the order the sink saw it, and how
// many blocks the sink received.
struct ReadBack {
  Status status;
  std::vector<std::pair<std::string, LoanSlot>> loans;
  size_t blocks = 0;
};

ReadBack ReadLoans(const std::string& path, const SnapshotInfo& info, uint64_t first,
                   uint64_t stride) {
  ReadBack r;
  r.status = ReadSnapshotBlocks(path, info, first, stride, [&](LoanBlock&& block) {
    EXPECT_GT(block.size(), 0u) << "an empty block handed to the sink";
    EXPECT_EQ(block.ends.size(), block.size());
    for (size_t i = 0; i < block.size(); ++i) r.loans.emplace_back(block.Key(i), block.slots[i]);
    ++r.blocks;
    return true;
  });
  return r;
}

// A slot read back equals the slot that was written from `state`.
void ExpectSlotIs(const LoanSlot& got, const LoanState& state, const std::string& key) {
  const LoanSlot want = LoanSlot::FromState(state);
  EXPECT_TRUE(got.exists) << key;
  EXPECT_EQ(got.ToState(), state) << key;
  EXPECT_EQ(got.last_seq, want.last_seq) << key;
  EXPECT_EQ(got.balance_fen, want.balance_fen) << key;
  EXPECT_EQ(got.last_date, want.last_date) << key;
  EXPECT_TRUE(got.attributes == want.attributes) << key;
  EXPECT_EQ(got.mask, want.mask) << key;
  EXPECT_EQ(got.province(), ProvinceOf(state.attributes.region_code)) << key;
}

// Every written loan came back exactly once with identical fields.
void ExpectExactlyTheLoans(const std::vector<std::pair<std::string, LoanSlot>>& got,
                           const std::vector<TestLoan>& want) {
  ASSERT_EQ(got.size(), want.size());
  std::map<std::string, const LoanSlot*> by_key;
  for (const auto& [key, slot] : got) {
    EXPECT_TRUE(by_key.emplace(key, &slot).second) << "loan read twice: " << key;
  }
  for (const TestLoan& t : want) {
    auto it = by_key.find(t.key);
    if (it == by_key.end()) {
      ADD_FAILURE() << "loan missing: " << t.key;
      continue;
    }
    ExpectSlotIs(*it->second, t.state, t.key);
  }
}

uint32_t GetU32(const std::string& s, size_t at) {
  uint32_t v = 0;
  std::memcpy(&v, s.data() + at, 4);
  return v;
}
uint64_t GetU64(const std::string& s, size_t at) {
  uint64_t v = 0;
  std::memcpy(&v, s.data() + at, 8);
  return v;
}
void PutU32(std::string* s, size_t at, uint32_t v) { std::memcpy(s->data() + at, &v, 4); }
void PutU64(std::string* s, size_t at, uint64_t v) { std::memcpy(s->data() + at, &v, 8); }
uint32_t Crc(const std::string& s, size_t at, size_t n) {
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(s.data() + at), static_cast<uInt>(n)));
}
// Recomputes the header's CRC after a test changed a header field.
void FixHeaderCrc(std::string* file) { PutU32(file, 60, Crc(*file, 0, 60)); }
// Recomputes block b's payload CRC after a test changed its payload.
void FixBlockCrc(std::string* file, uint64_t b) {
  const size_t at = kHeaderBytes + b * kSnapshotBlockBytes;
  PutU32(file, at + 8, Crc(*file, at + kBlockHeaderBytes, GetU32(*file, at)));
}

bool IsCorruption(const Status& s) { return s.code() == Status::Code::kCorruption; }

class LoanSnapshotTest : public testing::Test {
 protected:
  void SetUp() override { dir_ = test::MakeTempDir(); }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  // Writes `loans` to Path(name) and checks the header reads back.
  SnapshotInfo WriteAndReadInfo(const std::string& name, uint64_t replay_from,
                                const std::vector<TestLoan>& loans, size_t piece_loans = 8192) {
    const Status s = WriteLoans(Path(name), replay_from, loans, piece_loans);
    EXPECT_TRUE(s.ok()) << s.ToString();
    Result<SnapshotInfo> info = ReadSnapshotInfo(Path(name));
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    if (!info.ok()) return SnapshotInfo{};
    EXPECT_EQ(info->replay_from, replay_from);
    EXPECT_EQ(info->loans, loans.size());
    return *info;
  }

  std::string dir_;
};

// ---------------------------------------------------------------------------
// Round trips

TEST_F(LoanSnapshotTest, AFewLoansComeBackInOrderWithEveryField) {
  const std::vector<TestLoan> loans = MakeLoans(5, 1);
  const SnapshotInfo info = WriteAndReadInfo("few.loans", 42, loans);
  EXPECT_EQ(info.blocks, 1u);
  EXPECT_FALSE(fs::exists(Path("few.loans.tmp")));
  const ReadBack r = ReadLoans(Path("few.loans"), info, 0, 1);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.blocks, 1u);
  ASSERT_EQ(r.loans.size(), loans.size());
  for (size_t i = 0; i < loans.size(); ++i) {
    EXPECT_EQ(r.loans[i].first, loans[i].key) << i;  // one writer, one block: the order is kept
    ExpectSlotIs(r.loans[i].second, loans[i].state, loans[i].key);
  }
}

TEST_F(LoanSnapshotTest, ExtremeFieldValuesRoundTrip) {
  std::vector<TestLoan> loans;
  LoanState s;
  s.last_seq = UINT64_MAX;
  s.last_date = kDayMax;
  s.balance_fen = kLoanBalanceFenMax;
  s.attributes = test::Attrs();
  s.attributes.credit_line_fen = kCreditLineFenMax;
  s.attributes.term_months = kTermMonthsMax;
  loans.push_back(
      {LoanKey(std::string(kInstitutionIdBytesMax, 'Z'), std::string(kLoanIdBytesMax, '~')), s});
  s.last_seq = 1;
  s.last_date = kDayMin;
  s.balance_fen = 0;  // a repaid loan stays a loan
  s.attributes.borrower_type = BorrowerType::kIndividual;
  s.attributes.enterprise_size = EnterpriseSize::kNa;
  s.attributes.industry_code.clear();
  s.attributes.credit_line_fen = 0;
  s.attributes.term_months = 1;
  s.attributes.region_code = "650102";
  loans.push_back({LoanKey("0", " "), s});
  const SnapshotInfo info = WriteAndReadInfo("extreme.loans", 1, loans);
  const ReadBack r = ReadLoans(Path("extreme.loans"), info, 0, 1);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ExpectExactlyTheLoans(r.loans, loans);
}

// The layout as documented, parsed without the reader: the header fields at
// their offsets with a valid CRC, every block at a multiple of 1 MiB after
// the header with a valid payload CRC, and the blocks' loan counts adding up.
void ExpectDocumentedLayout(const std::string& file, const SnapshotInfo& info) {
  ASSERT_GE(file.size(), kHeaderBytes);
  EXPECT_EQ(file.substr(0, 8), std::string("LLLOANS\n"));
  EXPECT_EQ(GetU32(file, 8), 1u) << "snapshot format";
  EXPECT_EQ(GetU32(file, 12), kSnapshotBlockBytes);
  EXPECT_EQ(GetU64(file, 16), info.replay_from);
  EXPECT_EQ(GetU64(file, 24), info.loans);
  EXPECT_EQ(GetU64(file, 32), info.blocks);
  EXPECT_EQ(GetU64(file, 40), file.size() - kHeaderBytes);
  EXPECT_EQ(GetU32(file, 60), Crc(file, 0, 60));
  uint64_t loans = 0;
  for (uint64_t b = 0; b < info.blocks; ++b) {
    const size_t at = kHeaderBytes + b * kSnapshotBlockBytes;
    ASSERT_LE(at + kBlockHeaderBytes, file.size()) << "block " << b;
    const uint32_t payload = GetU32(file, at);
    ASSERT_LE(kBlockHeaderBytes + payload, kSnapshotBlockBytes) << "block " << b;
    ASSERT_LE(at + kBlockHeaderBytes + payload, file.size()) << "block " << b;
    EXPECT_GT(GetU32(file, at + 4), 0u) << "block " << b;
    EXPECT_EQ(GetU32(file, at + 8), Crc(file, at + kBlockHeaderBytes, payload)) << "block " << b;
    loans += GetU32(file, at + 4);
    if (b + 1 == info.blocks) {
      EXPECT_EQ(at + kBlockHeaderBytes + payload, file.size()) << "the last block ends the file";
    } else {
      // A full block leaves less room than one more record of the longest kind.
      EXPECT_GT(kBlockHeaderBytes + payload + 2 + 255 + 255, kSnapshotBlockBytes) << "block " << b;
    }
  }
  EXPECT_EQ(loans, info.loans);
}

TEST_F(LoanSnapshotTest, SixtyThousandLoansSpanSeveralBlocksAndComeBackExactlyOnce) {
  const std::vector<TestLoan> loans = MakeLoans(60'000, 2);
  const SnapshotInfo info = WriteAndReadInfo("big.loans", 7, loans);
  ASSERT_GE(info.blocks, 3u) << "the test wants several 1 MiB blocks";
  ASSERT_NO_FATAL_FAILURE(ExpectDocumentedLayout(ReadFile(Path("big.loans")), info));

  // One reader: every block, in order.
  const ReadBack all = ReadLoans(Path("big.loans"), info, 0, 1);
  ASSERT_TRUE(all.status.ok()) << all.status.ToString();
  EXPECT_EQ(all.blocks, info.blocks);
  ASSERT_EQ(all.loans.size(), loans.size());
  for (size_t i = 0; i < loans.size(); ++i) {
    ASSERT_EQ(all.loans[i].first, loans[i].key) << i;
  }
  ExpectExactlyTheLoans(all.loans, loans);

  // Two readers taking alternate blocks: disjoint, together everything.
  const ReadBack even = ReadLoans(Path("big.loans"), info, 0, 2);
  const ReadBack odd = ReadLoans(Path("big.loans"), info, 1, 2);
  ASSERT_TRUE(even.status.ok()) << even.status.ToString();
  ASSERT_TRUE(odd.status.ok()) << odd.status.ToString();
  EXPECT_EQ(even.blocks, (info.blocks + 1) / 2);
  EXPECT_EQ(odd.blocks, info.blocks / 2);
  EXPECT_GT(even.loans.size(), 0u);
  EXPECT_GT(odd.loans.size(), 0u);
  std::vector<std::pair<std::string, LoanSlot>> both = even.loans;
  both.insert(both.end(), odd.loans.begin(), odd.loans.end());
  ExpectExactlyTheLoans(both, loans);

  // A reader whose first block is past the end reads nothing, successfully.
  const ReadBack none = ReadLoans(Path("big.loans"), info, info.blocks, 1);
  EXPECT_TRUE(none.status.ok()) << none.status.ToString();
  EXPECT_EQ(none.blocks, 0u);
}

// Written piece by piece with WritePending (as the ledger does, the pieces
// falling anywhere in a block) or all at Commit: the same bytes.
TEST_F(LoanSnapshotTest, WritingInPiecesGivesTheSameFileAsWritingAtCommit) {
  const std::vector<TestLoan> loans = MakeLoans(50'000, 3);
  const SnapshotInfo at_commit = WriteAndReadInfo("commit.loans", 9, loans, 0);
  const SnapshotInfo pieces = WriteAndReadInfo("pieces.loans", 9, loans, 8192);
  const SnapshotInfo small = WriteAndReadInfo("small.loans", 9, loans, 1);
  ASSERT_GE(at_commit.blocks, 2u);
  EXPECT_EQ(pieces.blocks, at_commit.blocks);
  EXPECT_EQ(small.blocks, at_commit.blocks);
  const std::string expected = ReadFile(Path("commit.loans"));
  EXPECT_TRUE(ReadFile(Path("pieces.loans")) == expected) << "pieces of 8192 loans";
  EXPECT_TRUE(ReadFile(Path("small.loans")) == expected) << "WritePending after every loan";
}

TEST_F(LoanSnapshotTest, EmptySnapshotHasNoBlocksAndReadsNothing) {
  const SnapshotInfo info = WriteAndReadInfo("empty.loans", 1, {});
  EXPECT_EQ(info.loans, 0u);
  EXPECT_EQ(info.blocks, 0u);
  EXPECT_EQ(fs::file_size(Path("empty.loans")), kHeaderBytes);
  const ReadBack r = ReadLoans(Path("empty.loans"), info, 0, 1);
  EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.blocks, 0u);
  EXPECT_TRUE(r.loans.empty());
}

// ---------------------------------------------------------------------------
// Writer lifecycle

TEST_F(LoanSnapshotTest, UncommittedWriterLeavesNoFile) {
  const std::vector<TestLoan> loans = MakeLoans(30'000, 4);
  {
    Result<std::unique_ptr<SnapshotWriter>> w = SnapshotWriter::Create(Path("x.loans"), 5);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (const TestLoan& t : loans) (*w)->Add(t.key, LoanSlot::FromState(t.state));
    ASSERT_TRUE((*w)->WritePending().ok());
    EXPECT_TRUE(fs::exists(Path("x.loans.tmp"))) << "the writer writes to <name>.tmp";
    EXPECT_FALSE(fs::exists(Path("x.loans")));
  }
  EXPECT_FALSE(fs::exists(Path("x.loans")));
  EXPECT_FALSE(fs::exists(Path("x.loans.tmp")));
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(LoanSnapshotTest, UncommittedWriterLeavesAnEarlierFileOfTheSameNameAlone) {
  const std::vector<TestLoan> loans = MakeLoans(10, 5);
  const SnapshotInfo info = WriteAndReadInfo("same.loans", 3, loans);
  {
    Result<std::unique_ptr<SnapshotWriter>> w = SnapshotWriter::Create(Path("same.loans"), 3);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    (*w)->Add(loans[0].key, LoanSlot::FromState(loans[0].state));
  }
  EXPECT_FALSE(fs::exists(Path("same.loans.tmp")));
  const ReadBack r = ReadLoans(Path("same.loans"), info, 0, 1);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ExpectExactlyTheLoans(r.loans, loans);
}

TEST_F(LoanSnapshotTest, CreateInAMissingDirectoryFails) {
  Result<std::unique_ptr<SnapshotWriter>> w =
      SnapshotWriter::Create(Path("no-such-dir/x.loans"), 1);
  EXPECT_FALSE(w.ok());
}

TEST_F(LoanSnapshotTest, MissingFileIsAnErrorNotAnEmptySnapshot) {
  EXPECT_FALSE(ReadSnapshotInfo(Path("absent.loans")).ok());
  SnapshotInfo info;
  info.replay_from = 1;
  const ReadBack r = ReadLoans(Path("absent.loans"), info, 0, 1);
  EXPECT_FALSE(r.status.ok());
}

// ---------------------------------------------------------------------------
// Format 2: each loan's category mask, under a rules digest

// The mask given for loan i (nullptr for every seventh: "not known").
const std::vector<RuleMask> kMasks = {0, 1, 0x5, 0x80000000'00000000ull, ~RuleMask{0}, 0x1234};
const RuleMask* MaskFor(size_t i) { return i % 7 == 3 ? nullptr : &kMasks[i % kMasks.size()]; }

RulesDigest TestDigest() {
  RulesDigest d;
  for (size_t i = 0; i < d.size(); ++i) d[i] = static_cast<uint8_t>(0xA0 + i);
  return d;
}

Status WriteLoansWithMasks(const std::string& path, uint64_t replay_from,
                           const std::vector<TestLoan>& loans, size_t piece_loans) {
  const RulesDigest digest = TestDigest();
  Result<std::unique_ptr<SnapshotWriter>> w = SnapshotWriter::Create(path, replay_from, &digest);
  if (!w.ok()) return w.status();
  for (size_t i = 0; i < loans.size(); ++i) {
    (*w)->Add(loans[i].key, LoanSlot::FromState(loans[i].state), MaskFor(i));
    if (piece_loans > 0 && (i + 1) % piece_loans == 0) {
      if (Status s = (*w)->WritePending(); !s.ok()) return s;
    }
  }
  return (*w)->Commit();
}

// Reads every loan with its mask resolved through its block's table
// (nullopt: the slot says "no mask").
struct MaskedRead {
  Status status;
  std::map<std::string, std::pair<LoanSlot, std::optional<RuleMask>>> loans;
  size_t blocks = 0;
};
MaskedRead ReadMasked(const std::string& path, const SnapshotInfo& info, uint64_t first,
                      uint64_t stride) {
  MaskedRead r;
  r.status = ReadSnapshotBlocks(path, info, first, stride, [&](LoanBlock&& block) {
    for (size_t i = 0; i < block.size(); ++i) {
      LoanSlot slot = block.slots[i];
      std::optional<RuleMask> mask;
      if (slot.mask != kMaskUnresolved) {
        EXPECT_LT(slot.mask, block.masks.size());
        if (slot.mask < block.masks.size()) mask = block.masks[slot.mask];
      }
      slot.mask = kMaskUnresolved;
      EXPECT_TRUE(r.loans.emplace(std::string(block.Key(i)), std::make_pair(slot, mask)).second);
    }
    ++r.blocks;
    return true;
  });
  return r;
}

TEST_F(LoanSnapshotTest, FormatTwoKeepsEachLoansMaskAndTheRulesDigest) {
  const std::vector<TestLoan> loans = MakeLoans(60'000, 21);
  ASSERT_TRUE(WriteLoansWithMasks(Path("m.loans"), 7, loans, 4096).ok());
  Result<SnapshotInfo> info = ReadSnapshotInfo(Path("m.loans"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->format, 2u);
  EXPECT_EQ(info->rules_digest, TestDigest());
  EXPECT_EQ(info->loans, loans.size());
  ASSERT_GE(info->blocks, 3u);
  const std::string file = ReadFile(Path("m.loans"));
  EXPECT_EQ(GetU32(file, 8), 2u) << "format";
  const RulesDigest digest = TestDigest();
  EXPECT_EQ(file.substr(48, 12), std::string(digest.begin(), digest.end()));
  // One reader, and two taking alternate blocks: the same loans and masks.
  for (uint64_t stride : {1u, 2u}) {
    std::map<std::string, std::pair<LoanSlot, std::optional<RuleMask>>> all;
    size_t blocks = 0;
    for (uint64_t first = 0; first < stride; ++first) {
      MaskedRead r = ReadMasked(Path("m.loans"), *info, first, stride);
      ASSERT_TRUE(r.status.ok()) << r.status.ToString();
      blocks += r.blocks;
      all.merge(r.loans);
    }
    EXPECT_EQ(blocks, info->blocks);
    ASSERT_EQ(all.size(), loans.size()) << "stride " << stride;
    for (size_t i = 0; i < loans.size(); ++i) {
      auto it = all.find(loans[i].key);
      ASSERT_NE(it, all.end()) << loans[i].key;
      ExpectSlotIs(it->second.first, loans[i].state, loans[i].key);
      const RuleMask* want = MaskFor(i);
      ASSERT_EQ(it->second.second.has_value(), want != nullptr) << i;
      if (want != nullptr) {
        EXPECT_EQ(*it->second.second, *want) << i;
      }
    }
  }
  // Written in pieces or at Commit: the same bytes.
  ASSERT_TRUE(WriteLoansWithMasks(Path("c.loans"), 7, loans, 0).ok());
  EXPECT_TRUE(ReadFile(Path("c.loans")) == file);
}

TEST_F(LoanSnapshotTest, FormatOneFileHasNoMasksAndAZeroDigest) {
  const std::vector<TestLoan> loans = MakeLoans(100, 22);
  const SnapshotInfo info = WriteAndReadInfo("one.loans", 3, loans);
  EXPECT_EQ(info.format, 1u);
  EXPECT_EQ(info.rules_digest, RulesDigest{});
  const ReadBack r = ReadLoans(Path("one.loans"), info, 0, 1);
  ASSERT_TRUE(r.status.ok());
  for (const auto& [key, slot] : r.loans) EXPECT_EQ(slot.mask, kMaskUnresolved) << key;
  // Format 1 keeps those header bytes zero: anything else is refused.
  std::string bad = ReadFile(Path("one.loans"));
  bad[50] = 1;
  FixHeaderCrc(&bad);
  WriteFile(Path("one.loans"), bad);
  EXPECT_TRUE(IsCorruption(ReadSnapshotInfo(Path("one.loans")).status()));
}

TEST(RulesDigest, DependsOnTheRulesTextOnly) {
  Result<std::shared_ptr<const Rules>> a = Rules::Parse(DefaultRulesText());
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(DigestOfRules(**a), DigestOfRules(*DefaultRules()));
  std::string other_text(DefaultRulesText());
  other_text.insert(other_text.find('{') + 1, " ");  // the same rules, another text
  Result<std::shared_ptr<const Rules>> b = Rules::Parse(other_text);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_NE(DigestOfRules(**b), DigestOfRules(**a));
  EXPECT_NE(DigestOfRules(**a), RulesDigest{});
}

// A format-2 block whose table or mask indexes do not add up is refused.
TEST_F(LoanSnapshotTest, BadMaskTableOrIndexIsCorruption) {
  const std::vector<TestLoan> loans = MakeLoans(3, 23);  // masks 0, 1, 0x5: a table of 3
  ASSERT_TRUE(WriteLoansWithMasks(Path("m.loans"), 2, loans, 0).ok());
  const std::string good = ReadFile(Path("m.loans"));
  const size_t at = kHeaderBytes;  // block 0
  const size_t payload = GetU32(good, at);
  const size_t end = at + kBlockHeaderBytes + payload;
  ASSERT_EQ(GetU32(good, at + 4), 3u);
  ASSERT_EQ(static_cast<uint8_t>(good[end - 2]) | (static_cast<uint8_t>(good[end - 1]) << 8), 3);
  ASSERT_EQ(GetU64(good, end - 2 - 8), 0x5u) << "the table's last mask";
  // The first loan's index, just before the second record.
  const size_t key0 = static_cast<uint8_t>(good[at + kBlockHeaderBytes]);
  const size_t value0 = static_cast<uint8_t>(good[at + kBlockHeaderBytes + 1 + key0]);
  const size_t index0 = at + kBlockHeaderBytes + 1 + key0 + 1 + value0;
  ASSERT_EQ(good[index0], 0);
  ASSERT_EQ(good[index0 + 1], 0);
  auto read = [&](const std::string& bytes) {
    WriteFile(Path("m.loans"), bytes);
    Result<SnapshotInfo> info = ReadSnapshotInfo(Path("m.loans"));
    if (!info.ok()) return info.status();
    return ReadMasked(Path("m.loans"), *info, 0, 1).status;
  };
  EXPECT_TRUE(read(good).ok());
  struct Case {
    const char* what;
    size_t at;
    char value;
  };
  for (const Case& c :
       {Case{"index past the table", index0, 3}, Case{"index high byte", index0 + 1, 1},
        Case{"table count one more", end - 2, 4}, Case{"table count one fewer", end - 2, 2},
        Case{"table count huge", end - 1, 0x7F}}) {
    std::string bad = good;
    bad[c.at] = c.value;
    FixBlockCrc(&bad, 0);
    EXPECT_TRUE(IsCorruption(read(bad))) << c.what;
  }
  // "No mask" (0xFFFF) is a valid index.
  std::string none = good;
  none[index0] = static_cast<char>(0xFF);
  none[index0 + 1] = static_cast<char>(0xFF);
  FixBlockCrc(&none, 0);
  WriteFile(Path("m.loans"), none);
  Result<SnapshotInfo> info = ReadSnapshotInfo(Path("m.loans"));
  ASSERT_TRUE(info.ok());
  MaskedRead r = ReadMasked(Path("m.loans"), *info, 0, 1);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_FALSE(r.loans.at(loans[0].key).second.has_value());
  EXPECT_EQ(r.loans.at(loans[1].key).second, RuleMask{1});
}

// ---------------------------------------------------------------------------
// Damage

class DamagedSnapshotTest : public LoanSnapshotTest {
 protected:
  void SetUp() override {
    LoanSnapshotTest::SetUp();
    loans_ = MakeLoans(45'000, 6);
    info_ = WriteAndReadInfo("s.loans", 11, loans_);
    ASSERT_GE(info_.blocks, 3u);
    good_ = ReadFile(Path("s.loans"));
  }
  // Writes `bytes` as the snapshot and reads it whole (one reader).
  Status Damage(const std::string& bytes) {
    WriteFile(Path("s.loans"), bytes);
    Result<SnapshotInfo> info = ReadSnapshotInfo(Path("s.loans"));
    if (!info.ok()) return info.status();
    return ReadLoans(Path("s.loans"), *info, 0, 1).status;
  }

  std::vector<TestLoan> loans_;
  SnapshotInfo info_;
  std::string good_;
};

TEST_F(DamagedSnapshotTest, TheUndamagedFileReads) { EXPECT_TRUE(Damage(good_).ok()); }

TEST_F(DamagedSnapshotTest, FlippedPayloadByteIsCorruption) {
  const size_t last = info_.blocks - 1;
  const std::vector<size_t> offsets = {
      kHeaderBytes + kBlockHeaderBytes,                               // block 0's first byte
      kHeaderBytes + kBlockHeaderBytes + 1000,                        // inside a key or value
      kHeaderBytes + kSnapshotBlockBytes + kBlockHeaderBytes + 5000,  // block 1
      good_.size() - 1,                                               // the last block's last byte
  };
  for (size_t at : offsets) {
    std::string bad = good_;
    bad[at] = static_cast<char>(bad[at] ^ 0x01);
    // The header is intact: the damage shows when the block is read.
    WriteFile(Path("s.loans"), bad);
    Result<SnapshotInfo> info = ReadSnapshotInfo(Path("s.loans"));
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    const ReadBack r = ReadLoans(Path("s.loans"), *info, 0, 1);
    EXPECT_TRUE(IsCorruption(r.status)) << "offset " << at << ": " << r.status.ToString();
    // The reader of the damaged block fails too, whichever stride it reads with.
    const uint64_t block = (at - kHeaderBytes) / kSnapshotBlockBytes;
    ASSERT_LE(block, last);
    const ReadBack own = ReadLoans(Path("s.loans"), *info, block % 2, 2);
    EXPECT_TRUE(IsCorruption(own.status)) << "offset " << at << ": " << own.status.ToString();
  }
}

TEST_F(DamagedSnapshotTest, FlippedBlockHeaderByteIsCorruption) {
  for (size_t field : {0u, 1u, 8u, 11u}) {  // payload length, CRC
    std::string bad = good_;
    bad[kHeaderBytes + kSnapshotBlockBytes + field] ^= 0x40;
    const Status s = Damage(bad);
    EXPECT_TRUE(IsCorruption(s)) << "block 1 header byte " << field << ": " << s.ToString();
  }
}

// The block's loan count is not under its CRC: a count off by one either
// way must still be caught by parsing.
TEST_F(DamagedSnapshotTest, BlockLoanCountOffByOneIsCorruption) {
  for (int delta : {-1, +1}) {
    std::string bad = good_;
    const size_t at = kHeaderBytes + kSnapshotBlockBytes;  // block 1
    PutU32(&bad, at + 4, GetU32(bad, at + 4) + static_cast<uint32_t>(delta));
    const Status s = Damage(bad);
    EXPECT_TRUE(IsCorruption(s)) << "count " << delta << ": " << s.ToString();
  }
  std::string zero = good_;
  PutU32(&zero, kHeaderBytes + 4, 0);
  EXPECT_TRUE(IsCorruption(Damage(zero)));
}

// A payload length cut short with the CRC recomputed: the block's last
// record no longer fits.
TEST_F(DamagedSnapshotTest, PayloadCutShortWithAValidCrcIsCorruption) {
  std::string bad = good_;
  const size_t at = kHeaderBytes;
  PutU32(&bad, at, GetU32(bad, at) - 3);
  FixBlockCrc(&bad, 0);
  EXPECT_TRUE(IsCorruption(Damage(bad)));
}

TEST_F(DamagedSnapshotTest, TruncatedOrExtendedFileIsCorruption) {
  for (size_t keep : {good_.size() - 1, good_.size() - 100, kHeaderBytes + kSnapshotBlockBytes,
                      kHeaderBytes + 1, kHeaderBytes, size_t{63}, size_t{10}, size_t{0}}) {
    const Status s = Damage(good_.substr(0, keep));
    EXPECT_TRUE(IsCorruption(s)) << "kept " << keep << " bytes: " << s.ToString();
  }
  EXPECT_TRUE(IsCorruption(Damage(good_ + std::string(1, '\0')))) << "one byte appended";
  EXPECT_TRUE(IsCorruption(Damage(good_ + std::string(kSnapshotBlockBytes, '\0'))))
      << "a block of zeros appended";
}

TEST_F(DamagedSnapshotTest, BadHeaderIsCorruption) {
  for (size_t at : {size_t{0}, size_t{7}, size_t{8}, size_t{16}, size_t{24}, size_t{32}, size_t{40},
                    size_t{50}, size_t{60}, size_t{63}}) {
    std::string bad = good_;
    bad[at] ^= 0x04;
    const Status s = Damage(bad);
    EXPECT_TRUE(IsCorruption(s)) << "header byte " << at << ": " << s.ToString();
  }
  // An all-zero header (the writer's placeholder before Commit).
  std::string zeros = good_;
  std::fill(zeros.begin(), zeros.begin() + kHeaderBytes, '\0');
  EXPECT_TRUE(IsCorruption(Damage(zeros)));
}

// Header fields changed with a recomputed CRC: what the CRC cannot catch,
// the consistency checks must.
TEST_F(DamagedSnapshotTest, HeaderWithValidCrcButWrongFieldsIsCorruption) {
  struct Case {
    const char* what;
    size_t at;
    uint64_t value;
    bool u64;
  };
  const std::vector<Case> cases = {
      {"format 3", 8, 3, false},
      {"block size 64 KiB", 12, 1u << 16, false},
      {"one block more", 32, info_.blocks + 1, true},
      {"one block fewer", 32, info_.blocks - 1, true},
      {"no blocks", 32, 0, true},
      {"data one byte longer", 40, good_.size() - kHeaderBytes + 1, true},
      {"data one byte shorter", 40, good_.size() - kHeaderBytes - 1, true},
  };
  for (const Case& c : cases) {
    std::string bad = good_;
    if (c.u64) {
      PutU64(&bad, c.at, c.value);
    } else {
      PutU32(&bad, c.at, static_cast<uint32_t>(c.value));
    }
    FixHeaderCrc(&bad);
    const Status s = Damage(bad);
    EXPECT_TRUE(IsCorruption(s)) << c.what << ": " << s.ToString();
  }
}

// The reader cross-checks the info it is given against the file's header
// (a file replaced between ReadSnapshotInfo and the read).
TEST_F(DamagedSnapshotTest, InfoThatDoesNotMatchTheFileIsCorruption) {
  SnapshotInfo other = info_;
  other.loans += 1;
  EXPECT_TRUE(IsCorruption(ReadLoans(Path("s.loans"), other, 0, 1).status));
  other = info_;
  other.replay_from += 1;
  EXPECT_TRUE(IsCorruption(ReadLoans(Path("s.loans"), other, 0, 1).status));
  other = info_;
  other.blocks -= 1;
  EXPECT_TRUE(IsCorruption(ReadLoans(Path("s.loans"), other, 0, 1).status));
}

TEST_F(DamagedSnapshotTest, SinkReturningFalseStopsTheReader) {
  for (size_t stop_after : {size_t{1}, size_t{2}}) {
    size_t calls = 0;
    const Status s = ReadSnapshotBlocks(Path("s.loans"), info_, 0, 1, [&](LoanBlock&&) {
      ++calls;
      return calls < stop_after;
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(calls, stop_after);
  }
  // Stopping early skips the rest unread: damage after the stop goes unseen.
  std::string bad = good_;
  bad[good_.size() - 1] ^= 0x01;  // in the last block
  WriteFile(Path("s.loans"), bad);
  size_t calls = 0;
  const Status s = ReadSnapshotBlocks(Path("s.loans"), info_, 0, 1, [&](LoanBlock&&) {
    ++calls;
    return false;
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(calls, 1u);
}

// ---------------------------------------------------------------------------
// Records that are not loans (written through the writer, which only
// encodes: the reader is the one that checks)

Status WriteOneRecordAndRead(const std::string& path, const std::string& key,
                             const LoanSlot& slot) {
  const std::vector<TestLoan> good = MakeLoans(3, 7);
  {
    Result<std::unique_ptr<SnapshotWriter>> w = SnapshotWriter::Create(path, 1);
    if (!w.ok()) return w.status();
    (*w)->Add(good[0].key, LoanSlot::FromState(good[0].state));
    (*w)->Add(key, slot);
    (*w)->Add(good[1].key, LoanSlot::FromState(good[1].state));
    if (Status s = (*w)->Commit(); !s.ok()) return s;
  }
  Result<SnapshotInfo> info = ReadSnapshotInfo(path);
  if (!info.ok()) return info.status();
  return ReadLoans(path, *info, 0, 1).status;
}

TEST_F(LoanSnapshotTest, RecordWithAnInvalidLoanKeyIsCorruption) {
  const LoanSlot slot = LoanSlot::FromState(MakeLoans(1, 8)[0].state);
  ASSERT_TRUE(WriteOneRecordAndRead(Path("ok.loans"), LoanKey("B0001", "L9"), slot).ok());
  const std::vector<std::pair<const char*, std::string>> keys = {
      {"no separator", "B0001L9"},
      {"empty key", ""},
      {"empty institution", LoanKey("", "L9")},
      {"empty loan id", LoanKey("B0001", "")},
      {"lower-case institution", LoanKey("b0001", "L9")},
      {"comma in the loan id", LoanKey("B0001", "L,9")},
      {"control character in the loan id", LoanKey("B0001", "L\t9")},
      {"second separator", LoanKey("B0001", std::string("L\0"
                                                        "9",
                                                        3))},
      {"institution of 33 characters", LoanKey(std::string(33, 'A'), "L9")},
      {"loan id of 65 characters", LoanKey("B0001", std::string(65, 'x'))},
  };
  for (const auto& [what, key] : keys) {
    const Status s = WriteOneRecordAndRead(Path("bad.loans"), key, slot);
    EXPECT_TRUE(IsCorruption(s)) << what << ": " << s.ToString();
  }
}

TEST_F(LoanSnapshotTest, RecordWithAnInvalidLoanStateIsCorruption) {
  const LoanState good = MakeLoans(1, 9)[0].state;
  const std::string key = LoanKey("B0001", "L9");
  auto with = [&](auto change) {
    LoanState s = good;
    change(s);
    return LoanSlot::FromState(s);
  };
  struct Case {
    const char* what;
    LoanSlot slot;
  };
  const std::vector<Case> cases = {
      {"last_seq 0", with([](LoanState& s) { s.last_seq = 0; })},
      {"negative balance", with([](LoanState& s) { s.balance_fen = -1; })},
      {"balance over the cap", with([](LoanState& s) { s.balance_fen = kLoanBalanceFenMax + 1; })},
      {"date before 1990", with([](LoanState& s) { s.last_date = kDayMin - 1; })},
      {"date after 2199", with([](LoanState& s) { s.last_date = kDayMax + 1; })},
      {"province 99", with([](LoanState& s) { s.attributes.region_code = "990101"; })},
      {"term 0", with([](LoanState& s) { s.attributes.term_months = 0; })},
      {"term 601", with([](LoanState& s) { s.attributes.term_months = 601; })},
      {"negative credit line", with([](LoanState& s) { s.attributes.credit_line_fen = -1; })},
      {"industry Z", with([](LoanState& s) { s.attributes.industry_code = "Z"; })},
      {"enterprise without a size", with([](LoanState& s) {
         s.attributes.borrower_type = BorrowerType::kEnterprise;
         s.attributes.enterprise_size = EnterpriseSize::kNa;
       })},
      {"a slot that was never a loan", LoanSlot{}},
  };
  for (const Case& c : cases) {
    const Status s = WriteOneRecordAndRead(Path("bad.loans"), key, c.slot);
    EXPECT_TRUE(IsCorruption(s)) << c.what << ": " << s.ToString();
  }
}

// A record's value changed on disk with the block CRC recomputed (a bug
// in a writer, not a disk error): the value's own checks catch it.
TEST_F(LoanSnapshotTest, UndecodableValueWithAValidBlockCrcIsCorruption) {
  const std::vector<TestLoan> loans = MakeLoans(3, 10);
  const SnapshotInfo info = WriteAndReadInfo("v.loans", 1, loans);
  const std::string good = ReadFile(Path("v.loans"));
  // The first record: u8 key length, key, u8 value length, value.
  const size_t key_len = static_cast<uint8_t>(good[kHeaderBytes + kBlockHeaderBytes]);
  const size_t value_at = kHeaderBytes + kBlockHeaderBytes + 1 + key_len + 1;
  {
    std::string bad = good;
    bad[value_at] = static_cast<char>(bad[value_at] + 1);  // the value's format byte
    FixBlockCrc(&bad, 0);
    WriteFile(Path("v.loans"), bad);
    EXPECT_TRUE(IsCorruption(ReadLoans(Path("v.loans"), info, 0, 1).status)) << "format byte";
  }
  {
    std::string bad = good;
    bad[value_at - 1] = static_cast<char>(bad[value_at - 1] - 1);  // value one byte short
    FixBlockCrc(&bad, 0);
    WriteFile(Path("v.loans"), bad);
    EXPECT_TRUE(IsCorruption(ReadLoans(Path("v.loans"), info, 0, 1).status)) << "value length";
  }
  {
    std::string bad = good;
    bad[kHeaderBytes + kBlockHeaderBytes] = static_cast<char>(key_len + 200);  // key past the end
    FixBlockCrc(&bad, 0);
    WriteFile(Path("v.loans"), bad);
    EXPECT_TRUE(IsCorruption(ReadLoans(Path("v.loans"), info, 0, 1).status)) << "key length";
  }
}

// ---------------------------------------------------------------------------
// DecodeLoanSlot

TEST(DecodeLoanSlot, AcceptsAValidStateAndRefusesEverythingElse) {
  std::mt19937_64 rng(12);
  for (int i = 0; i < 200; ++i) {
    const LoanState s = RandomState(rng);
    std::string value;
    EncodeLoanState(s, &value);
    LoanSlot slot;
    ASSERT_TRUE(DecodeLoanSlot(value, &slot)) << i;
    ExpectSlotIs(slot, s, "random state " + std::to_string(i));
    EXPECT_FALSE(DecodeLoanSlot(value + "x", &slot)) << "trailing byte";
    EXPECT_FALSE(DecodeLoanSlot(value.substr(0, value.size() - 1), &slot)) << "one byte short";
  }
  LoanSlot slot;
  EXPECT_FALSE(DecodeLoanSlot("", &slot));
  EXPECT_FALSE(DecodeLoanSlot(std::string(40, '\0'), &slot));
  LoanState zero_seq = RandomState(rng);
  zero_seq.last_seq = 0;
  std::string value;
  EncodeLoanState(zero_seq, &value);
  EXPECT_FALSE(DecodeLoanSlot(value, &slot));
}

}  // namespace
}  // namespace loanledger::storage
