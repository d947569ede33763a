// api/region_map.h: the region map of this process (behind l4re_rm_*).
//
// Attaching a dataspace makes a real mapping: the dataspace's Map() backs
// the pages and names the storage-file ranges, which are mmap'ed with
// exactly the rights of the attach (read-only attaches map read-only). Two
// attaches of one dataspace alias because they map the same file ranges.
//
// Address space: searched attaches (SEARCH_ADDR) go into windows this map
// reserves with PROT_NONE (64 GiB each, more on demand), so they never
// collide with the heap or libraries. Attaches at a fixed address inside a
// window or a reserved area replace the reservation; elsewhere they use
// MAP_FIXED_NOREPLACE and fail with -L4_EADDRNOTAVAIL rather than clobber a
// mapping this map does not own. Detaching restores the reservation (or
// unmaps). Regions are kept in an address-ordered btree.
//
// Revocation: the map registers with every dataspace it maps. When a
// dataspace dies, its regions are remapped PROT_NONE (an access faults, as
// on L4) before the memory goes back to the allocator; the regions stay
// until detached, and detach still reports the dataspace's capability.
//
// Thread-safety: one mutex; lock order: region map, then dataspace.
#ifndef L4RE_MA_API_REGION_MAP_H_
#define L4RE_MA_API_REGION_MAP_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/sync.h"
#include "core/dataspace.h"
#include "core/object.h"

namespace l4re_ma {

// Region flags (l4re_rm_flags_values), L4Re's values.
inline constexpr uint32_t kRmRights = 0x7;
inline constexpr uint32_t kRmCaching = 0x30;
inline constexpr uint32_t kRmNoAlias = 0x200;
inline constexpr uint32_t kRmPager = 0x400;
inline constexpr uint32_t kRmReserved = 0x800;
inline constexpr uint32_t kRmSearchAddr = 0x20000;
inline constexpr uint32_t kRmInArea = 0x40000;
inline constexpr uint32_t kRmEagerMap = 0x80000;
inline constexpr uint32_t kRmNoEagerMap = 0x100000;
inline constexpr uint32_t kRmKnownFlags = kRmRights | kRmCaching | kRmNoAlias | kRmPager |
                                          kRmReserved | kRmSearchAddr | kRmInArea |
                                          kRmEagerMap | kRmNoEagerMap;

class RegionMap final : public Object, public MappingRevoker {
 public:
  // Size of one address-space window reserved for searched attaches.
  static constexpr uint64_t kWindowBytes = uint64_t{64} << 30;

  struct Region {
    uint64_t start = 0;
    uint64_t size = 0;          // page-rounded
    uint64_t offset = 0;        // dataspace offset of `start`
    uint32_t flags = 0;         // region flags (rights, caching, ...)
    uint64_t ds_cap = 0;        // the capability index it was attached with
  };

  RegionMap() = default;
  ~RegionMap() override;
  ObjectKind kind() const override { return ObjectKind::kRegionMap; }

  // l4re_rm_attach. On success *start is the region's address.
  absl::Status Attach(uint64_t* start, uint64_t size, uint32_t flags,
                      const std::shared_ptr<Dataspace>& ds, uint64_t ds_cap, uint64_t offset,
                      unsigned align) ABSL_LOCKS_EXCLUDED(mu_);
  // l4re_rm_detach: removes the region containing addr; returns it.
  absl::StatusOr<Region> Detach(uint64_t addr) ABSL_LOCKS_EXCLUDED(mu_);
  // l4re_rm_find: the region overlapping [addr, addr + size).
  absl::StatusOr<Region> Find(uint64_t addr, uint64_t size) const ABSL_LOCKS_EXCLUDED(mu_);
  // l4re_rm_reserve_area / l4re_rm_free_area.
  absl::Status ReserveArea(uint64_t* start, uint64_t size, uint32_t flags, unsigned align)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status FreeArea(uint64_t addr) ABSL_LOCKS_EXCLUDED(mu_);

  // l4re_rm_show_lists.
  std::string DebugString() const ABSL_LOCKS_EXCLUDED(mu_);
  size_t region_count() const ABSL_LOCKS_EXCLUDED(mu_);

  // MappingRevoker:
  void RevokeMappingsOf(const Dataspace& ds) override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    Region region;
    Dataspace* ds = nullptr;  // null once the dataspace died (revoked)
  };
  struct Span {
    uint64_t start = 0;
    uint64_t size = 0;
    uint64_t end() const { return start + size; }
  };

  // Whether [start, start + size) lies inside one window or one area.
  bool OwnedLocked(uint64_t start, uint64_t size) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The first region (or area, when `areas` is set) overlapping the range.
  const Span* RegionOverlapLocked(uint64_t start, uint64_t size) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  const Span* AreaOverlapLocked(uint64_t start, uint64_t size) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Lowest aligned free range in [lo, hi) avoiding regions (and areas unless
  // in_area), or 0 if none.
  uint64_t SearchLocked(uint64_t lo, uint64_t hi, uint64_t size, unsigned align, bool in_area) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Searches the windows from `hint` up, reserving a new window if needed.
  absl::StatusOr<uint64_t> SearchWindowsLocked(uint64_t hint, uint64_t size, unsigned align)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Puts PROT_NONE back over [start, start + size) (or unmaps it if we do
  // not own it).
  void ReleaseRangeLocked(uint64_t start, uint64_t size) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Makes sure [start, start + size) is ours: inside a window or area, or
  // reserved now with MAP_FIXED_NOREPLACE (-L4_EADDRNOTAVAIL if taken).
  absl::Status ClaimLocked(uint64_t start, uint64_t size) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void ForgetDsLocked(const Dataspace* ds, uint64_t start) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  absl::btree_map<uint64_t, Entry> regions_ ABSL_GUARDED_BY(mu_);
  // Region spans, mirrored for overlap queries (start -> span).
  absl::btree_map<uint64_t, Span> region_spans_ ABSL_GUARDED_BY(mu_);
  absl::btree_map<uint64_t, Span> areas_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<const Dataspace*, absl::InlinedVector<uint64_t, 2>> by_ds_
      ABSL_GUARDED_BY(mu_);
  std::vector<Span> windows_ ABSL_GUARDED_BY(mu_);
};

}  // namespace l4re_ma

#endif  // L4RE_MA_API_REGION_MAP_H_
