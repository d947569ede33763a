#include "api/region_map.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/errors.h"
#include "core/types.h"

namespace l4re_ma {
namespace {

constexpr int kReserveFlags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
// User address space on x86-64 (47 bits).
constexpr uint64_t kAddressLimit = uint64_t{1} << 47;

void* Ptr(uint64_t a) { return reinterpret_cast<void*>(a); }

// Puts a PROT_NONE reservation over a range this map owns.
void ReserveFixed(uint64_t start, uint64_t size) {
  if (mmap(Ptr(start), size, PROT_NONE, kReserveFlags | MAP_FIXED, -1, 0) == MAP_FAILED) {
    // Replacing a mapping we own cannot fail short of the kernel running
    // out of memory for VMAs; drop the pages at least.
    munmap(Ptr(start), size);
  }
}

int ProtOf(uint32_t flags) {
  int prot = PROT_NONE;
  if (flags & kRightR) prot |= PROT_READ;
  if (flags & kRightW) prot |= PROT_WRITE;
  if (flags & kRightX) prot |= PROT_EXEC;
  return prot;
}

// Rounds up to 2^align; 0 on overflow.
uint64_t AlignUp(uint64_t v, unsigned align) {
  const uint64_t unit = uint64_t{1} << align;
  if (v > UINT64_MAX - (unit - 1)) return 0;
  return (v + unit - 1) & ~(unit - 1);
}

absl::Status NoRoom(uint64_t addr, uint64_t size) {
  return L4Error(L4Errno::kAddrNotAvail,
                 absl::StrFormat("no room for %#x bytes at %#x", size, addr));
}

// The checks attach and reserve_area share; returns the page-rounded size.
absl::StatusOr<uint64_t> CheckRequest(uint64_t start, uint64_t size, uint32_t flags,
                                      unsigned align) {
  if ((flags & ~kRmKnownFlags) != 0) {
    return L4Error(L4Errno::kInval, absl::StrFormat("unknown region flags %#x in %#x",
                                                    flags & ~kRmKnownFlags, flags));
  }
  if (size == 0) return L4Error(L4Errno::kInval, "size 0");
  if ((flags & kRmSearchAddr) && (align < kPageShift || align > 63)) {
    return L4Error(L4Errno::kInval, absl::StrCat("alignment 2^", align, " is outside 12..63"));
  }
  if (size > kAddressLimit) return NoRoom(start, size);
  return AlignUp(size, kPageShift);
}

// A fixed (not searched) address must be page-aligned and leave room.
absl::Status CheckFixedAddress(uint64_t addr, uint64_t len) {
  if ((addr & (kPageSize - 1)) != 0) {
    return L4Error(L4Errno::kInval, absl::StrFormat("address %#x is not page-aligned", addr));
  }
  if (addr == 0 || addr + len < addr || addr + len > kAddressLimit) return NoRoom(addr, len);
  return absl::OkStatus();
}

}  // namespace

RegionMap::~RegionMap() {
  MutexLock lock(&mu_);
  for (auto& [start, entry] : regions_) {
    if (entry.ds != nullptr) entry.ds->Unmap();
    ReleaseRangeLocked(start, entry.region.size);
  }
  for (auto& [ds, starts] : by_ds_) const_cast<Dataspace*>(ds)->RemoveRevoker(this);
  for (const Span& w : windows_) munmap(Ptr(w.start), w.size);
}

bool RegionMap::OwnedLocked(uint64_t start, uint64_t size) const {
  for (const Span& w : windows_) {
    if (start >= w.start && start + size <= w.end()) return true;
  }
  auto it = areas_.upper_bound(start);
  if (it == areas_.begin()) return false;
  --it;
  return start >= it->second.start && start + size <= it->second.end();
}

namespace {
template <typename Map>
const typename Map::mapped_type* Overlap(const Map& spans, uint64_t start, uint64_t size) {
  const uint64_t end = start + size < start ? UINT64_MAX : start + size;
  auto it = spans.upper_bound(start);
  if (it != spans.begin()) {
    auto prev = std::prev(it);
    if (prev->second.end() > start) return &prev->second;
  }
  if (it != spans.end() && it->second.start < end) return &it->second;
  return nullptr;
}
}  // namespace

const RegionMap::Span* RegionMap::RegionOverlapLocked(uint64_t start, uint64_t size) const {
  return Overlap(region_spans_, start, size);
}

const RegionMap::Span* RegionMap::AreaOverlapLocked(uint64_t start, uint64_t size) const {
  return Overlap(areas_, start, size);
}

uint64_t RegionMap::SearchLocked(uint64_t lo, uint64_t hi, uint64_t size, unsigned align,
                                 bool in_area) const {
  uint64_t cand = AlignUp(lo, align);
  while (cand != 0 && cand + size > cand && cand + size <= hi) {
    const Span* s = RegionOverlapLocked(cand, size);
    if (s == nullptr && !in_area) s = AreaOverlapLocked(cand, size);
    if (s == nullptr) return cand;
    cand = AlignUp(s->end(), align);
  }
  return 0;
}

absl::StatusOr<uint64_t> RegionMap::SearchWindowsLocked(uint64_t hint, uint64_t size,
                                                        unsigned align) {
  for (const Span& w : windows_) {
    if (w.end() <= hint) continue;
    if (uint64_t a = SearchLocked(std::max(w.start, hint), w.end(), size, align, false)) return a;
  }
  const uint64_t slack = uint64_t{1} << std::min(align, 46u);
  if (size >= kAddressLimit / 2 || slack >= kAddressLimit / 2) return NoRoom(hint, size);
  const uint64_t bytes = std::max(kWindowBytes, AlignUp(size + slack, 30));
  void* p = mmap(nullptr, bytes, PROT_NONE, kReserveFlags, -1, 0);
  if (p == MAP_FAILED) {
    return L4Error(L4Errno::kAddrNotAvail,
                   absl::StrCat("cannot reserve address space: ", std::strerror(errno)));
  }
  const Span w{reinterpret_cast<uint64_t>(p), bytes};
  windows_.push_back(w);
  if (uint64_t a = SearchLocked(std::max(w.start, hint), w.end(), size, align, false)) return a;
  return NoRoom(hint, size);
}

void RegionMap::ReleaseRangeLocked(uint64_t start, uint64_t size) {
  if (OwnedLocked(start, size)) {
    ReserveFixed(start, size);
  } else {
    munmap(Ptr(start), size);
  }
}

absl::Status RegionMap::ClaimLocked(uint64_t start, uint64_t size) {
  if (OwnedLocked(start, size)) return absl::OkStatus();
  void* p = mmap(Ptr(start), size, PROT_NONE, kReserveFlags | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == MAP_FAILED) return NoRoom(start, size);
  if (p != Ptr(start)) {  // a kernel without MAP_FIXED_NOREPLACE
    munmap(p, size);
    return NoRoom(start, size);
  }
  return absl::OkStatus();
}

void RegionMap::ForgetDsLocked(const Dataspace* ds, uint64_t start) {
  auto it = by_ds_.find(ds);
  if (it == by_ds_.end()) return;
  auto& starts = it->second;
  starts.erase(std::remove(starts.begin(), starts.end(), start), starts.end());
  if (starts.empty()) {
    by_ds_.erase(it);
    const_cast<Dataspace*>(ds)->RemoveRevoker(this);
  }
}

absl::Status RegionMap::Attach(uint64_t* start, uint64_t size, uint32_t flags,
                               const std::shared_ptr<Dataspace>& ds, uint64_t ds_cap,
                               uint64_t offset, unsigned align) {
  absl::StatusOr<uint64_t> checked = CheckRequest(*start, size, flags, align);
  if (!checked.ok()) return checked.status();
  const uint64_t len = *checked;
  const bool search = (flags & kRmSearchAddr) != 0;
  const bool in_area = (flags & kRmInArea) != 0;
  if ((offset & (kPageSize - 1)) != 0) {
    return L4Error(L4Errno::kInval, absl::StrFormat("offset %#x is not page-aligned", offset));
  }

  MutexLock lock(&mu_);
  uint64_t addr = 0;
  if (search && in_area) {
    const Span* area = AreaOverlapLocked(*start, 1);
    if (area == nullptr) return NoRoom(*start, len);
    addr = SearchLocked(std::max(*start, area->start), area->end(), len, align, true);
    if (addr == 0) return NoRoom(*start, len);
  } else if (search) {
    absl::StatusOr<uint64_t> a = SearchWindowsLocked(*start, len, align);
    if (!a.ok()) return a.status();
    addr = *a;
  } else {
    addr = *start;
    if (absl::Status s = CheckFixedAddress(addr, len); !s.ok()) return s;
    if (RegionOverlapLocked(addr, len) != nullptr) return NoRoom(addr, len);
    const Span* area = AreaOverlapLocked(addr, len);
    if (in_area ? (area == nullptr || addr < area->start || addr + len > area->end())
                : area != nullptr) {
      return NoRoom(addr, len);
    }
  }
  if (absl::Status s = ClaimLocked(addr, len); !s.ok()) return s;
  if (!ds->AddRevoker(this)) {
    ReleaseRangeLocked(addr, len);
    return L4Error(L4Errno::kNoEnt, "the dataspace has been freed");
  }
  absl::StatusOr<MapResult> mapped = ds->Map(offset, len);
  if (!mapped.ok()) {
    ReleaseRangeLocked(addr, len);
    if (by_ds_.find(ds.get()) == by_ds_.end()) ds->RemoveRevoker(this);
    if (ToL4Result(mapped.status()) == ToL4Result(IpcError(IpcCode::kNotExistent, ""))) {
      return L4Error(L4Errno::kNoEnt, "the dataspace has been freed");
    }
    return mapped.status();
  }
  const int prot = ProtOf(flags);
  for (const MapRun& run : mapped->runs) {
    void* p = mmap(Ptr(addr + (run.ds_offset - offset)), run.length, prot, MAP_SHARED | MAP_FIXED,
                   mapped->fd, static_cast<off_t>(run.file_offset));
    if (p == MAP_FAILED) {
      const int err = errno;
      ReleaseRangeLocked(addr, len);
      ds->Unmap();
      if (by_ds_.find(ds.get()) == by_ds_.end()) ds->RemoveRevoker(this);
      return L4Error(L4Errno::kNoMem, absl::StrCat("mmap: ", std::strerror(err)));
    }
  }
  Entry entry;
  entry.region = Region{addr, len, offset, flags & 0xffff, ds_cap};
  entry.ds = ds.get();
  regions_.emplace(addr, entry);
  region_spans_.emplace(addr, Span{addr, len});
  by_ds_[ds.get()].push_back(addr);
  *start = addr;
  return absl::OkStatus();
}

absl::StatusOr<RegionMap::Region> RegionMap::Detach(uint64_t addr) {
  MutexLock lock(&mu_);
  auto it = regions_.upper_bound(addr);
  if (it == regions_.begin()) {
    return L4Error(L4Errno::kNoEnt, absl::StrFormat("no region at %#x", addr));
  }
  --it;
  if (addr >= it->first + it->second.region.size) {
    return L4Error(L4Errno::kNoEnt, absl::StrFormat("no region at %#x", addr));
  }
  const Entry entry = it->second;
  regions_.erase(it);
  region_spans_.erase(entry.region.start);
  ReleaseRangeLocked(entry.region.start, entry.region.size);
  if (entry.ds != nullptr) {
    entry.ds->Unmap();
    ForgetDsLocked(entry.ds, entry.region.start);
  }
  return entry.region;
}

absl::StatusOr<RegionMap::Region> RegionMap::Find(uint64_t addr, uint64_t size) const {
  if (size == 0) return L4Error(L4Errno::kInval, "size 0");
  MutexLock lock(&mu_);
  const Span* s = RegionOverlapLocked(addr, size);
  if (s == nullptr) {
    return L4Error(L4Errno::kNoEnt, absl::StrFormat("no region overlaps [%#x, +%#x)", addr, size));
  }
  return regions_.at(s->start).region;
}

absl::Status RegionMap::ReserveArea(uint64_t* start, uint64_t size, uint32_t flags,
                                    unsigned align) {
  absl::StatusOr<uint64_t> checked = CheckRequest(*start, size, flags, align);
  if (!checked.ok()) return checked.status();
  const uint64_t len = *checked;
  MutexLock lock(&mu_);
  uint64_t addr;
  if (flags & kRmSearchAddr) {
    absl::StatusOr<uint64_t> a = SearchWindowsLocked(*start, len, align);
    if (!a.ok()) return a.status();
    addr = *a;
  } else {
    addr = *start;
    if (absl::Status s = CheckFixedAddress(addr, len); !s.ok()) return s;
    if (RegionOverlapLocked(addr, len) != nullptr || AreaOverlapLocked(addr, len) != nullptr) {
      return NoRoom(addr, len);
    }
    if (absl::Status s = ClaimLocked(addr, len); !s.ok()) return s;
  }
  areas_.emplace(addr, Span{addr, len});
  *start = addr;
  return absl::OkStatus();
}

absl::Status RegionMap::FreeArea(uint64_t addr) {
  MutexLock lock(&mu_);
  const Span* a = AreaOverlapLocked(addr, 1);
  if (a == nullptr) return L4Error(L4Errno::kNoEnt, absl::StrFormat("no area at %#x", addr));
  const Span area = *a;
  areas_.erase(area.start);
  if (OwnedLocked(area.start, area.size)) return absl::OkStatus();  // inside a window
  // Outside the windows the area was our own reservation: unmap its gaps;
  // regions inside it stay until detached.
  uint64_t cursor = area.start;
  for (auto it = region_spans_.lower_bound(area.start);
       it != region_spans_.end() && it->first < area.end(); ++it) {
    if (it->first > cursor) munmap(Ptr(cursor), it->first - cursor);
    cursor = it->second.end();
  }
  if (cursor < area.end()) munmap(Ptr(cursor), area.end() - cursor);
  return absl::OkStatus();
}

void RegionMap::RevokeMappingsOf(const Dataspace& ds) {
  MutexLock lock(&mu_);
  auto it = by_ds_.find(&ds);
  if (it == by_ds_.end()) return;
  for (uint64_t start : it->second) {
    Entry& entry = regions_.at(start);
    ReserveFixed(start, entry.region.size);
    entry.ds = nullptr;
  }
  by_ds_.erase(it);
}

std::string RegionMap::DebugString() const {
  MutexLock lock(&mu_);
  std::string out = absl::StrCat("regions (", regions_.size(), "):\n");
  for (const auto& [start, e] : regions_) {
    absl::StrAppendFormat(&out, "  [%#014x, %#014x) ds=%#x offset=%#x flags=%#x%s\n", start,
                          start + e.region.size, e.region.ds_cap, e.region.offset, e.region.flags,
                          e.ds == nullptr ? " revoked" : "");
  }
  absl::StrAppend(&out, "areas (", areas_.size(), "):\n");
  for (const auto& [start, a] : areas_) {
    absl::StrAppendFormat(&out, "  [%#014x, %#014x)\n", start, a.end());
  }
  return out;
}

size_t RegionMap::region_count() const {
  MutexLock lock(&mu_);
  return regions_.size();
}

}  // namespace l4re_ma
