#include "core/dataspace.h"

#include <algorithm>

namespace l4re_ma {

bool Dataspace::AddRevoker(MappingRevoker* revoker) {
  MutexLock lock(&revokers_mu_);
  if (revoked_) return false;
  if (std::find(revokers_.begin(), revokers_.end(), revoker) == revokers_.end()) {
    revokers_.push_back(revoker);
  }
  return true;
}

void Dataspace::RemoveRevoker(MappingRevoker* revoker) {
  MutexLock lock(&revokers_mu_);
  revokers_.erase(std::remove(revokers_.begin(), revokers_.end(), revoker), revokers_.end());
}

void Dataspace::RevokeAllMappings() {
  absl::InlinedVector<MappingRevoker*, 1> revokers;
  {
    MutexLock lock(&revokers_mu_);
    if (revoked_) return;
    revoked_ = true;
    revokers.swap(revokers_);
  }
  for (MappingRevoker* r : revokers) r->RevokeMappingsOf(*this);
}

}  // namespace l4re_ma
