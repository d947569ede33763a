// Registers BitmapBackend under the name "bitmap".
#include <memory>

#include "backends/bitmap/bitmap_backend.h"
#include "core/backend_registry.h"

namespace l4re_ma {
namespace {

L4RE_MA_REGISTER_BACKEND(
    bitmap, "hierarchical bitmap: ~2.3 bits per page, exact first fit, any size and alignment",
    [](const BackendOptions& o) -> std::unique_ptr<PageBackend> {
      return std::make_unique<BitmapBackend>(o.range);
    });

}  // namespace
}  // namespace l4re_ma
