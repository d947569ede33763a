// Registers FirstFitBackend as "firstfit", for the bench binaries only: it is
// the yardstick, not a backend offered by //backends:all.
#include <memory>

#include "bench/firstfit/firstfit_backend.h"
#include "core/backend_registry.h"

namespace l4re_ma {
namespace {

L4RE_MA_REGISTER_BACKEND(
    firstfit, "yardstick: address-ordered first-fit free list (L4Re Moe's strategy), O(free extents)",
    [](const BackendOptions& o) -> std::unique_ptr<PageBackend> {
      return std::make_unique<FirstFitBackend>(o.range);
    });

}  // namespace
}  // namespace l4re_ma
