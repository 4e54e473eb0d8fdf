#include "dispatch.h"

#include <atomic>
#include <stdexcept>

#include "cpu_features.h"

namespace ssm {
namespace {

struct Implementation {
  const char* name;
  bool (*runnable)();
  // Only called once runnable() is true: building the table may already run
  // instructions of that set.
  const KernelSet& (*kernels)();
  const GumbelSet& (*gumbel)();
};

const Implementation kImplementations[] = {
#if defined(SSM_HAVE_X86_KERNELS)
    {"avx512", [] { return cpu_features().can_run_avx512(); }, &kernels_avx512, &gumbel_kernels_avx512},
    {"avx2", [] { return cpu_features().can_run_avx2(); }, &kernels_avx2, &gumbel_kernels_avx2},
#endif
#if defined(SSM_HAVE_NEON_KERNELS)
    // Advanced SIMD is mandatory in AArch64: every arm64 CPU runs it.
    {"neon", [] { return true; }, &kernels_neon, &gumbel_kernels_neon},
#endif
    {"scalar", [] { return true; }, &kernels_scalar, &gumbel_kernels_scalar},
};

const KernelSet* best() {
  for (const auto& impl : kImplementations)
    if (impl.runnable()) return &impl.kernels();
  return &kernels_scalar();
}

std::atomic<const KernelSet*>& active() {
  static std::atomic<const KernelSet*> ptr{best()};
  return ptr;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

std::vector<std::string> compiled_isas() {
  std::vector<std::string> names;
  for (const auto& impl : kImplementations) names.emplace_back(impl.name);
  return names;
}

std::vector<std::string> supported_isas() {
  std::vector<std::string> names;
  for (const auto& impl : kImplementations)
    if (impl.runnable()) names.emplace_back(impl.name);
  return names;
}

const KernelSet& active_kernels() { return *active().load(std::memory_order_acquire); }

const GumbelSet& active_gumbel() {
  const char* name = active_kernels().name;
  for (const auto& impl : kImplementations)
    if (std::string(name) == impl.name) return impl.gumbel();
  return gumbel_kernels_scalar();
}

void set_active_isa(const std::string& name) {
  for (const auto& impl : kImplementations) {
    if (name != impl.name) continue;
    if (!impl.runnable())
      throw std::invalid_argument("kernel set '" + name + "' is not supported by this CPU (supported: " +
                                  join(supported_isas()) + ")");
    active().store(&impl.kernels(), std::memory_order_release);
    return;
  }
  throw std::invalid_argument("unknown kernel set '" + name + "' (expected one of: " + join(compiled_isas()) + ")");
}

}  // namespace ssm
