// Replay driver: the main() of a fuzz target when the compiler has no
// libFuzzer (the g++ build). Runs LLVMFuzzerTestOneInput once on every file
// named on the command line, or on every regular file of a directory named
// there (sorted, hidden files such as .gitkeep skipped), so that the seed
// corpus and the crash regressions run as ordinary CTest tests. A failed
// property aborts, exactly as under libFuzzer.
//
//   fuzz_csv_line tests/fuzz/corpus/fuzz_csv_line tests/fuzz/regressions/fuzz_csv_line
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
// Optional, as in libFuzzer.
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

namespace fs = std::filesystem;

// Inputs larger than this are refused (libFuzzer's default -max_len for a
// seed-less run is 4096; our seeds are far below 1 MiB).
constexpr uintmax_t kInputBytesMax = uintmax_t{1} << 20;

bool Hidden(const fs::path& p) { return p.filename().string().starts_with("."); }

bool RunFile(const fs::path& path) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec || size > kInputBytesMax) {
    std::fprintf(stderr, "replay: cannot use %s (%s)\n", path.c_str(),
                 ec ? ec.message().c_str() : "too large");
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.eof() && in.fail()) {
    std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
    return false;
  }
  // An exact-size heap copy, so that ASan sees any read past the input.
  std::vector<uint8_t> input(bytes.begin(), bytes.end());
  LLVMFuzzerTestOneInput(input.data(), input.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
    return 1;
  }
  size_t runs = 0;
  bool ok = true;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg(argv[i]);
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      std::vector<fs::path> files;
      for (const auto& entry : fs::directory_iterator(arg)) {
        if (entry.is_regular_file() && !Hidden(entry.path())) files.push_back(entry.path());
      }
      std::sort(files.begin(), files.end());
      for (const fs::path& f : files) {
        ok = RunFile(f) && ok;
        ++runs;
      }
    } else if (fs::is_regular_file(arg, ec)) {
      ok = RunFile(arg) && ok;
      ++runs;
    } else {
      std::fprintf(stderr, "replay: no such file or directory: %s\n", argv[i]);
      ok = false;
    }
  }
  if (!ok) {
    std::fprintf(stderr, "replay: %zu inputs run, some could not be read\n", runs);
    return 1;
  }
  std::printf("replay: %zu inputs run, every property held\n", runs);
  return 0;
}
