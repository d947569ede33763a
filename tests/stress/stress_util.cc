#include "tests/stress/stress_util.h"

#include <dirent.h>
#include <unistd.h>

#include <l4/re/c/dataspace.h>
#include <l4/re/c/mem_alloc.h>
#include <l4/re/c/rm.h>
#include <l4/re/c/util/cap_alloc.h>
#include <l4/re/env.h>
#include <l4/sys/err.h>
#include <l4/sys/factory.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"

namespace l4re_ma::stress {

int CountFds(pid_t pid) {
  const std::string dir = pid == 0 ? "/proc/self/fd" : absl::StrCat("/proc/", pid, "/fd");
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n - (pid == 0 ? 1 : 0);  // the directory stream itself
}

std::string DescribeFds(pid_t pid) {
  const std::string dir = pid == 0 ? "/proc/self/fd" : absl::StrCat("/proc/", pid, "/fd");
  std::string out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char target[256] = {};
    const std::string link = dir + "/" + e->d_name;
    const ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
    absl::StrAppend(&out, e->d_name, " -> ", n > 0 ? target : "?", "\n");
  }
  closedir(d);
  return out;
}

int CountMappings(pid_t pid) {
  std::ifstream maps(pid == 0 ? "/proc/self/maps" : absl::StrCat("/proc/", pid, "/maps"));
  int n = 0;
  std::string line;
  while (std::getline(maps, line)) ++n;
  return n;
}

namespace {

struct Live {
  l4re_ds_t ds;
  unsigned char* addr;
  long size;
  uint8_t seed;
};

uint8_t Pattern(uint8_t seed, long i) { return static_cast<uint8_t>(seed + i * 131 + (i >> 12)); }

}  // namespace

WorkloadResult RunWorkload(uint64_t seed, long ops) {
  WorkloadResult r;
  std::mt19937_64 rng(seed);
  std::vector<Live> live;
  auto problem = [&](const std::string& what) {
    if (r.first_problem.empty()) r.first_problem = what;
  };
  auto verify_and_free = [&](size_t i) {
    Live l = live[i];
    for (long b = 0; b < l.size; ++b) {
      if (l.addr[b] != Pattern(l.seed, b)) {
        ++r.corrupted;
        problem(absl::StrCat("byte ", b, " of a ", l.size, "-byte dataspace changed"));
      }
    }
    r.bytes_verified += l.size;
    l4re_ds_t back = L4_INVALID_CAP;
    if (l4re_rm_detach_ds(l.addr, &back) != 0 || !l4_capability_equal(back, l.ds)) {
      ++r.unexpected_errors;
      problem("detach failed");
    }
    l4re_util_cap_free_um(l.ds);
    live[i] = live.back();
    live.pop_back();
  };
  static const unsigned long kFlags[] = {0, L4RE_MA_CONTINUOUS, L4RE_MA_PINNED,
                                         L4RE_MA_SUPER_PAGES,
                                         L4RE_MA_CONTINUOUS | L4RE_MA_SUPER_PAGES};
  for (long op = 0; op < ops; ++op, ++r.ops) {
    const unsigned kind = rng() % 10;
    if (kind < 5 || live.empty()) {
      const unsigned long flags = kFlags[rng() % (rng() % 8 == 0 ? 5 : 3)];
      const long size = 1 + static_cast<long>(rng() % (rng() % 4 == 0 ? (512 << 10) : 40000));
      l4re_ds_t ds = l4re_util_cap_alloc();
      const long a = l4re_ma_alloc(size, ds, flags);
      if (a == -L4_ENOMEM) {  // the pool or quota is full: make room
        l4re_util_cap_free(ds);
        if (!live.empty()) verify_and_free(rng() % live.size());
        continue;
      }
      if (a != 0) {
        ++r.unexpected_errors;
        problem(absl::StrCat("l4re_ma_alloc(", size, ", ", flags, ") = ", a));
        l4re_util_cap_free(ds);
        continue;
      }
      void* addr = nullptr;
      const unsigned char align = (flags & L4RE_MA_SUPER_PAGES) ? 21 : 12;
      const int at = l4re_rm_attach(&addr, size, L4RE_RM_F_SEARCH_ADDR | L4RE_RM_F_RW, ds, 0, align);
      if (at != 0) {
        if (at != -L4_ENOMEM) {
          ++r.unexpected_errors;
          problem(absl::StrCat("l4re_rm_attach = ", at));
        }
        l4re_util_cap_free_um(ds);
        continue;
      }
      Live l{ds, static_cast<unsigned char*>(addr), size, static_cast<uint8_t>(rng())};
      for (long b = 0; b < size; ++b) {
        if (l.addr[b] != 0) {
          ++r.not_zero;
          problem("memory was not zero when handed out");
        }
        l.addr[b] = Pattern(l.seed, b);
      }
      live.push_back(l);
    } else if (kind < 8) {
      verify_and_free(rng() % live.size());
    } else if (kind == 8) {
      // Copy a dataspace onto itself (the pattern stays: the same bytes).
      const Live& l = live[rng() % live.size()];
      if (l4re_ds_copy_in(l.ds, 0, l.ds, 0, l.size) != 0) {
        ++r.unexpected_errors;
        problem("copy_in onto itself failed");
      }
    } else {
      // A sub-allocator that lives for one allocation.
      l4_cap_idx_t sub = l4re_util_cap_alloc();
      if (l4_error(l4_factory_create_factory(l4re_env()->mem_alloc, sub, 1 << 20)) == 0) {
        l4re_ds_t ds = l4re_util_cap_alloc();
        if (l4re_ma_alloc_align_srv(sub, 8192, ds, 0, 0) != 0) ++r.unexpected_errors;
        l4re_util_cap_free_um(sub);  // destroys ds too
        if (l4re_ds_size(ds) != 0) {
          ++r.unexpected_errors;
          problem("a destroyed sub-allocator's dataspace survived");
        }
        l4re_util_cap_free(ds);
      } else {
        l4re_util_cap_free(sub);
      }
    }
  }
  while (!live.empty()) verify_and_free(live.size() - 1);
  return r;
}

}  // namespace l4re_ma::stress
