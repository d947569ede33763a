// Registers RegionBackend as "region".
#include <memory>

#include "backends/region/region_backend.h"
#include "core/backend_registry.h"

namespace l4re_ma {
namespace {

L4RE_MA_REGISTER_BACKEND(
    region, "extent allocator: best fit by size, coalescing, any size and alignment",
    [](const BackendOptions& o) -> std::unique_ptr<PageBackend> {
      return std::make_unique<RegionBackend>(o.range);
    });

}  // namespace
}  // namespace l4re_ma
