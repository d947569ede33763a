// core/cap_table.h: a table of capability slots, with L4's index encoding.
//
// A slot holds a reference to an Object (core/object.h). Slots are numbered
// from 0; the C API's capability index is slot << 12 (bit 11 marks an
// invalid index, the low bits may carry rights and are ignored). The table
// also is the slot allocator behind l4re_util_cap_alloc: slots from
// `first_allocatable` up are handed out lowest first.
//
// Emptying the last slot that refers to an object calls its
// OnLastCapabilityReleased() (after the table's lock is dropped): that is
// how releasing a dataspace capability frees the dataspace.
//
// The process has one table (api/), memd one per client. Thread-safe.
#ifndef L4RE_MA_CORE_CAP_TABLE_H_
#define L4RE_MA_CORE_CAP_TABLE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "core/sync.h"
#include "core/object.h"

namespace l4re_ma {

inline constexpr unsigned kCapShift = 12;
inline constexpr uint64_t kInvalidCapBit = uint64_t{1} << (kCapShift - 1);

class CapTable {
 public:
  // A table of `slots` slots; AllocSlot hands out [first_allocatable, slots).
  CapTable(uint32_t slots, uint32_t first_allocatable);
  CapTable(const CapTable&) = delete;
  CapTable& operator=(const CapTable&) = delete;
  ~CapTable();

  uint32_t slots() const { return slots_; }
  uint32_t first_allocatable() const { return first_allocatable_; }

  // The slot an index names, or an IPC error (ENOT_EXISTENT) for an invalid
  // index (bit 11 set) or one beyond the table.
  absl::StatusOr<uint32_t> SlotOf(uint64_t index) const;
  static uint64_t IndexOf(uint32_t slot) { return uint64_t{slot} << kCapShift; }

  // l4re_util_cap_alloc: the lowest free, empty slot, or nullopt when none.
  std::optional<uint32_t> AllocSlot() ABSL_LOCKS_EXCLUDED(mu_);
  // l4re_util_cap_free: makes the slot allocatable again and empties it.
  void FreeSlot(uint32_t slot) ABSL_LOCKS_EXCLUDED(mu_);

  // The object in a slot, or nullptr when the slot is empty.
  std::shared_ptr<Object> Get(uint32_t slot) const ABSL_LOCKS_EXCLUDED(mu_);
  // Puts `object` into `slot`, releasing what was there.
  void Install(uint32_t slot, std::shared_ptr<Object> object) ABSL_LOCKS_EXCLUDED(mu_);
  // Empties `slot` if it still holds `expected` (any object if null).
  // Returns whether it held something that was removed.
  bool Clear(uint32_t slot, const Object* expected = nullptr) ABSL_LOCKS_EXCLUDED(mu_);
  // Empties every slot (server: a client went away).
  void ClearAll() ABSL_LOCKS_EXCLUDED(mu_);

  // Number of slots holding an object.
  size_t occupied() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Drops one capability reference outside the lock.
  static void Release(std::shared_ptr<Object> object);
  bool IsAllocatedLocked(uint32_t slot) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return (allocated_[slot / 64] >> (slot % 64)) & 1;
  }
  void SetAllocatedLocked(uint32_t slot, bool on) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const uint32_t slots_;
  const uint32_t first_allocatable_;
  mutable Mutex mu_;
  std::vector<std::shared_ptr<Object>> objects_ ABSL_GUARDED_BY(mu_);
  // Two-level bitmap of slots handed out by AllocSlot: summary bit i is set
  // when allocated_[i] is full, so the lowest free slot is found with two
  // count-trailing-zeros scans.
  std::vector<uint64_t> allocated_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> full_words_ ABSL_GUARDED_BY(mu_);
  size_t occupied_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace l4re_ma

#endif  // L4RE_MA_CORE_CAP_TABLE_H_
