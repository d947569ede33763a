// A main() for fuzz targets built without libFuzzer (gcc, the default
// build): it replays every file of the seed corpus directories given as
// arguments, then `--runs=N` inputs derived from them by deterministic
// mutation and N fresh random ones (seed from `--seed=S`). CI runs this as a
// short fuzzing pass; long runs use libFuzzer (see tests/fuzz/BUILD).
#include <dirent.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <algorithm>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<std::vector<uint8_t>> ReadCorpus(const std::string& dir) {
  std::vector<std::vector<uint8_t>> inputs;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    std::fprintf(stderr, "fuzz_driver: cannot open corpus %s\n", dir.c_str());
    std::exit(2);
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') names.push_back(dir + "/" + e->d_name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string& n : names) {
    std::ifstream f(n, std::ios::binary);
    inputs.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  return inputs;
}

void Mutate(std::vector<uint8_t>& in, std::mt19937_64& rng) {
  const int edits = 1 + rng() % 8;
  for (int i = 0; i < edits; ++i) {
    switch (rng() % 4) {
      case 0:
        if (!in.empty()) in[rng() % in.size()] = static_cast<uint8_t>(rng());
        break;
      case 1:
        if (!in.empty()) in[rng() % in.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;
      case 2:
        in.insert(in.begin() + (in.empty() ? 0 : rng() % in.size()), static_cast<uint8_t>(rng()));
        break;
      default:
        if (!in.empty()) in.erase(in.begin() + rng() % in.size());
        break;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  long runs = 2000;
  uint64_t seed = 1;
  std::vector<std::vector<uint8_t>> corpus;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--runs=", 7) == 0) {
      runs = std::atol(argv[i] + 7);
    } else if (std::strncmp(argv[i], "--seed=", 7) == 0) {
      seed = std::strtoull(argv[i] + 7, nullptr, 10);
    } else {
      auto more = ReadCorpus(argv[i]);
      corpus.insert(corpus.end(), more.begin(), more.end());
    }
  }
  for (const auto& in : corpus) LLVMFuzzerTestOneInput(in.data(), in.size());
  std::mt19937_64 rng(seed);
  for (long r = 0; r < runs; ++r) {
    std::vector<uint8_t> in;
    if (!corpus.empty() && r % 2 == 0) {
      in = corpus[rng() % corpus.size()];
      Mutate(in, rng);
    } else {
      in.resize(rng() % 512);
      for (auto& b : in) b = static_cast<uint8_t>(rng());
    }
    LLVMFuzzerTestOneInput(in.data(), in.size());
  }
  std::printf("fuzz_driver: %zu corpus inputs and %ld generated inputs (seed %llu): no failure\n",
              corpus.size(), runs, static_cast<unsigned long long>(seed));
  return 0;
}
