#include "core/cap_table.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/errors.h"

namespace l4re_ma {

CapTable::CapTable(uint32_t slots, uint32_t first_allocatable)
    : slots_(slots), first_allocatable_(first_allocatable) {
  MutexLock lock(&mu_);
  objects_.resize(slots);
  allocated_.assign((slots + 63) / 64, 0);
  full_words_.assign((allocated_.size() + 63) / 64, 0);
  // Slots below first_allocatable and past the end are never handed out.
  for (uint32_t s = 0; s < first_allocatable && s < slots; ++s) SetAllocatedLocked(s, true);
  for (uint64_t s = slots; s < allocated_.size() * 64; ++s) {
    allocated_[s / 64] |= uint64_t{1} << (s % 64);
    if (allocated_[s / 64] == ~uint64_t{0}) full_words_[s / 64 / 64] |= uint64_t{1} << ((s / 64) % 64);
  }
}

CapTable::~CapTable() { ClearAll(); }

absl::StatusOr<uint32_t> CapTable::SlotOf(uint64_t index) const {
  if ((index & kInvalidCapBit) != 0) {
    return IpcError(IpcCode::kNotExistent,
                    absl::StrCat("invalid capability index 0x", absl::Hex(index)));
  }
  const uint64_t slot = index >> kCapShift;
  if (slot >= slots_) {
    return IpcError(IpcCode::kNotExistent,
                    absl::StrCat("capability index 0x", absl::Hex(index), " is beyond the table"));
  }
  return static_cast<uint32_t>(slot);
}

void CapTable::SetAllocatedLocked(uint32_t slot, bool on) {
  uint64_t& word = allocated_[slot / 64];
  const uint32_t w = slot / 64;
  if (on) {
    word |= uint64_t{1} << (slot % 64);
    if (word == ~uint64_t{0}) full_words_[w / 64] |= uint64_t{1} << (w % 64);
  } else {
    word &= ~(uint64_t{1} << (slot % 64));
    full_words_[w / 64] &= ~(uint64_t{1} << (w % 64));
  }
}

std::optional<uint32_t> CapTable::AllocSlot() {
  MutexLock lock(&mu_);
  for (size_t sw = 0; sw < full_words_.size(); ++sw) {
    uint64_t not_full = ~full_words_[sw];
    while (not_full != 0) {
      const uint32_t w = static_cast<uint32_t>(sw * 64 + __builtin_ctzll(not_full));
      not_full &= not_full - 1;
      if (w >= allocated_.size()) return std::nullopt;
      uint64_t free_bits = ~allocated_[w];
      while (free_bits != 0) {
        const uint32_t slot = w * 64 + __builtin_ctzll(free_bits);
        free_bits &= free_bits - 1;
        // A slot that received an object without being allocated (clients
        // may use any index) is skipped, as it is not free.
        if (objects_[slot] != nullptr) continue;
        SetAllocatedLocked(slot, true);
        return slot;
      }
    }
  }
  return std::nullopt;
}

void CapTable::FreeSlot(uint32_t slot) {
  if (slot >= slots_) return;
  std::shared_ptr<Object> old;
  {
    MutexLock lock(&mu_);
    if (slot >= first_allocatable_) SetAllocatedLocked(slot, false);
    old = std::move(objects_[slot]);
    if (old != nullptr) --occupied_;
  }
  Release(std::move(old));
}

std::shared_ptr<Object> CapTable::Get(uint32_t slot) const {
  MutexLock lock(&mu_);
  return slot < slots_ ? objects_[slot] : nullptr;
}

void CapTable::Install(uint32_t slot, std::shared_ptr<Object> object) {
  if (object != nullptr) object->AcquireCapability();
  std::shared_ptr<Object> old;
  {
    MutexLock lock(&mu_);
    old = std::move(objects_[slot]);
    if (old == nullptr && object != nullptr) ++occupied_;
    if (old != nullptr && object == nullptr) --occupied_;
    objects_[slot] = std::move(object);
  }
  Release(std::move(old));
}

bool CapTable::Clear(uint32_t slot, const Object* expected) {
  if (slot >= slots_) return false;
  std::shared_ptr<Object> old;
  {
    MutexLock lock(&mu_);
    if (objects_[slot] == nullptr) return false;
    if (expected != nullptr && objects_[slot].get() != expected) return false;
    old = std::move(objects_[slot]);
    --occupied_;
  }
  Release(std::move(old));
  return true;
}

void CapTable::ClearAll() {
  std::vector<std::shared_ptr<Object>> old;
  {
    MutexLock lock(&mu_);
    for (auto& o : objects_) {
      if (o != nullptr) old.push_back(std::move(o));
    }
    occupied_ = 0;
  }
  for (auto& o : old) Release(std::move(o));
}

size_t CapTable::occupied() const {
  MutexLock lock(&mu_);
  return occupied_;
}

void CapTable::Release(std::shared_ptr<Object> object) {
  if (object != nullptr && object->ReleaseCapability()) object->OnLastCapabilityReleased();
}

}  // namespace l4re_ma
