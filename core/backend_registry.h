// core/backend_registry.h: backends by name, chosen at run time.
//
// Each backend folder has a `:registered` target (alwayslink) whose only job
// is one L4RE_MA_REGISTER_BACKEND line; depending on //backends:all links
// every backend in. Embedders who construct a backend directly do not need the
// registry at all.
//
// Thread-safety: registration happens during static initialization; lookups
// are safe from any thread afterwards.
#ifndef L4RE_MA_CORE_BACKEND_REGISTRY_H_
#define L4RE_MA_CORE_BACKEND_REGISTRY_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/sync.h"
#include "core/page_backend.h"
#include "core/types.h"

namespace l4re_ma {

// What a backend is built over.
struct BackendOptions {
  // The frames to manage. The registry checks that it is non-empty and does
  // not overflow before calling a factory.
  PageRun range;
};

using BackendFactory =
    std::function<std::unique_ptr<PageBackend>(const BackendOptions&)>;

class BackendRegistry {
 public:
  // The process-wide registry, created on first use.
  static BackendRegistry& Global();

  // Adds a backend. Returns false (and changes nothing) if the name is taken.
  bool Register(std::string name, std::string description, BackendFactory factory);

  // Builds the backend `name` over `options.range`. Unknown names give
  // NotFound with a message listing the known ones; a bad range gives
  // InvalidArgument naming it.
  absl::StatusOr<std::unique_ptr<PageBackend>> Create(absl::string_view name,
                                                      const BackendOptions& options) const;

  // Registered names, sorted.
  std::vector<std::string> Names() const;
  // One "name: description" line per backend, sorted, for --help texts.
  std::string Describe() const;
  bool Contains(absl::string_view name) const;

  // Checks that `name` is registered; the error lists the known names.
  absl::Status CheckName(absl::string_view name) const;

 private:
  struct Entry {
    std::string description;
    BackendFactory factory;
  };
  mutable Mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_ ABSL_GUARDED_BY(mu_);
};

namespace internal {
struct BackendRegistrar {
  BackendRegistrar(const char* name, const char* description, BackendFactory factory);
};
}  // namespace internal

}  // namespace l4re_ma

// Registers a backend from a .cc file linked with alwayslink = 1:
//   L4RE_MA_REGISTER_BACKEND(buddy, "binary buddy allocator",
//       [](const BackendOptions& o) { return std::make_unique<BuddyBackend>(o.range); });
#define L4RE_MA_REGISTER_BACKEND(name, description, factory)                 \
  static ::l4re_ma::internal::BackendRegistrar l4re_ma_backend_registrar_##name( \
      #name, description, factory)

#endif  // L4RE_MA_CORE_BACKEND_REGISTRY_H_
