// core/dataspace.h: the dataspace interface behind l4re_ds_* and the region
// map.
//
// A dataspace is memory handed out by an allocator: a byte-granular size,
// rights, and pages. A contiguous dataspace is one aligned physical run,
// backed, zeroed and charged at allocation. A non-contiguous one is backed
// page by page on first use (Map, Allocate, the destination of CopyIn, a
// partial Clear); each page is zero when it is backed.
//
// The bytes live in a storage file (a memfd; core/storage.h) at offsets
// derived from the emulated physical address; Map() tells a region map which
// file ranges to mmap. When a dataspace dies (its last capability is
// released, l4re_ma_free, or its allocator is destroyed) it first asks every
// registered MappingRevoker to revoke the mappings of it, then returns its
// memory: no stale mapping can see memory that later belongs to another
// dataspace.
//
// Implementations: LocalDataspace (core/local_allocator.h) does the work in
// process; a remote one forwards to memd. Thread-safe.
#ifndef L4RE_MA_CORE_DATASPACE_H_
#define L4RE_MA_CORE_DATASPACE_H_

#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/sync.h"
#include "core/object.h"
#include "core/types.h"

namespace l4re_ma {

// Dataspace rights, L4Re's values (L4RE_DS_F_R/W/X).
inline constexpr unsigned long kRightX = 0x1;
inline constexpr unsigned long kRightW = 0x2;
inline constexpr unsigned long kRightR = 0x4;
inline constexpr unsigned long kRightsRWX = kRightR | kRightW | kRightX;

struct DataspaceInfo {
  uint64_t size = 0;            // byte-granular, as requested
  unsigned long flags = 0;      // rights (kRightsRWX for allocator memory)
  bool contiguous = false;
  unsigned page_shift = 0;      // log2 of the dataspace's page size
};

// Where `offset` of a contiguous dataspace lies physically.
struct PhysExtent {
  PhysAddr addr;       // emulated physical address of the byte at offset
  uint64_t size = 0;   // bytes contiguous from there to the end (byte-granular)
};

// A piece of a mapping: `length` bytes from `ds_offset` of the dataspace are
// stored at `file_offset` of the storage file. Page-aligned.
struct MapRun {
  uint64_t ds_offset = 0;
  uint64_t file_offset = 0;
  uint64_t length = 0;
};

struct MapResult {
  int fd = -1;                // storage file; owned by the dataspace's domain
  std::vector<MapRun> runs;   // ascending ds_offset, covering the range
};

class Dataspace;

// Something that keeps mappings of dataspaces (a region map).
class MappingRevoker {
 public:
  virtual ~MappingRevoker() = default;
  // Makes every mapping of `ds` inaccessible. Called before ds's memory is
  // returned; must not call back into ds.
  virtual void RevokeMappingsOf(const Dataspace& ds) = 0;
};

class Dataspace : public Object {
 public:
  ObjectKind kind() const final { return ObjectKind::kDataspace; }

  virtual absl::StatusOr<DataspaceInfo> Info() = 0;

  // l4re_ds_phys: OutOfRange when offset >= size, InvalidArgument for a
  // non-contiguous dataspace.
  virtual absl::StatusOr<PhysExtent> Phys(uint64_t offset) = 0;

  // l4re_ds_allocate: backs [offset, offset + size) now.
  virtual absl::Status Allocate(uint64_t offset, uint64_t size) = 0;

  // l4re_ds_clear: zeroes [offset, offset + size) clamped to the rounded
  // size; non-contiguous pages that are wholly cleared and not mapped are
  // released (and uncharged).
  virtual absl::Status Clear(uint64_t offset, uint64_t size) = 0;

  // l4re_ds_copy_in: a snapshot copy from `src` (which may be this).
  virtual absl::Status CopyIn(uint64_t dst_offset, Dataspace& src, uint64_t src_offset,
                              uint64_t size) = 0;

  // For a region map: backs the pages of [offset, offset + size) that lie
  // within the rounded size and says where they are stored. Counts one
  // mapping until Unmap(). `offset` is page-aligned.
  virtual absl::StatusOr<MapResult> Map(uint64_t offset, uint64_t size) = 0;
  // A mapping made with Map() is gone.
  virtual void Unmap() = 0;

  // Registers a revoker to call when this dataspace dies. Idempotent. If the
  // dataspace is already dead, returns false and does not register.
  bool AddRevoker(MappingRevoker* revoker);
  // Undoes AddRevoker (a region map with no mapping of this left).
  void RemoveRevoker(MappingRevoker* revoker);

 protected:
  // Calls every registered revoker once; implementations call it when they
  // die, before their memory is returned, with no lock of theirs held.
  void RevokeAllMappings();

 private:
  Mutex revokers_mu_;
  bool revoked_ ABSL_GUARDED_BY(revokers_mu_) = false;
  absl::InlinedVector<MappingRevoker*, 1> revokers_ ABSL_GUARDED_BY(revokers_mu_);
};

}  // namespace l4re_ma

#endif  // L4RE_MA_CORE_DATASPACE_H_
