#include "core/backend_registry.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace l4re_ma {

BackendRegistry& BackendRegistry::Global() {
  static BackendRegistry* registry = new BackendRegistry;
  return *registry;
}

bool BackendRegistry::Register(std::string name, std::string description,
                               BackendFactory factory) {
  MutexLock lock(&mu_);
  return entries_.emplace(std::move(name), Entry{std::move(description), std::move(factory)})
      .second;
}

absl::Status BackendRegistry::CheckName(absl::string_view name) const {
  if (Contains(name)) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat("unknown backend '", name, "'; available: ",
                                          absl::StrJoin(Names(), ", ")));
}

absl::StatusOr<std::unique_ptr<PageBackend>> BackendRegistry::Create(
    absl::string_view name, const BackendOptions& options) const {
  BackendFactory factory;
  {
    MutexLock lock(&mu_);
    auto it = entries_.find(name);
    if (it != entries_.end()) factory = it->second.factory;
  }
  if (!factory) return CheckName(name);
  const PageRun& r = options.range;
  if (r.pages.value() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("backend '", name, "': the range must hold at least one page"));
  }
  if (r.first.value() + r.pages.value() < r.first.value() ||
      r.end().value() > (uint64_t{1} << (64 - kPageShift))) {
    return absl::InvalidArgumentError(
        absl::StrCat("backend '", name, "': range starting at frame ", r.first.value(),
                     " with ", r.pages.value(), " pages overflows the address space"));
  }
  return factory(options);
}

std::vector<std::string> BackendRegistry::Names() const {
  MutexLock lock(&mu_);
  std::vector<std::string> names;
  names.reserve(entries_.size());
  for (const auto& [name, entry] : entries_) names.push_back(name);
  return names;
}

std::string BackendRegistry::Describe() const {
  MutexLock lock(&mu_);
  std::string out;
  for (const auto& [name, entry] : entries_) {
    absl::StrAppend(&out, "  ", name, ": ", entry.description, "\n");
  }
  return out;
}

bool BackendRegistry::Contains(absl::string_view name) const {
  MutexLock lock(&mu_);
  return entries_.find(name) != entries_.end();
}

namespace internal {
BackendRegistrar::BackendRegistrar(const char* name, const char* description,
                                   BackendFactory factory) {
  BackendRegistry::Global().Register(name, description, std::move(factory));
}
}  // namespace internal

}  // namespace l4re_ma
