#include "dispatch.h"

#include <atomic>
#include <stdexcept>

#include "cpu_features.h"

namespace ssm {
namespace {

// Every kernel set the project knows, best first, whether this build compiles
// it or not (so that a name from another architecture is "not supported
// here", not "unknown").
const char* const kIsaNames[] = {"avx512", "avx2", "neon", "scalar"};

#if defined(SSM_HAVE_X86_KERNELS)
// F16C is not part of the avx2 set's requirement (AVX2 + FMA): a CPU (or a
// virtual machine hiding it) without F16C runs the avx2 kernels with the
// scalar conversions.
const HalfConvert& convert_avx2_if_f16c() {
  static const HalfConvert& table = cpu_features().f16c ? convert_avx2() : convert_scalar();
  return table;
}
const HalfKernelSet* half_avx2_if_f16c() {
  static const HalfKernelSet* table = cpu_features().f16c ? &half_kernels_avx2() : nullptr;
  return table;
}
const HalfKernelSet* half_avx512() {
#if defined(SSM_HAVE_AVX512BF16_KERNELS)
  if (half_bf16_instructions()) return &half_kernels_avx512bf16();
#endif
  return &half_kernels_avx512();
}
#endif
const HalfKernelSet* half_scalar() { return &half_kernels_scalar(); }

// The kernel sets this build compiles, best first. One entry per set, one
// line per kernel family in each.
const Implementation kImplementations[] = {
#if defined(SSM_HAVE_X86_KERNELS)
    {"avx512", "AVX-512 F/DQ/BW/VL, AVX2 and FMA, with ZMM state enabled by the OS",
     [] { return cpu_features().can_run_avx512(); },
     &kernels_avx512,
     &gumbel_kernels_avx512,
     &sample_kernels_avx512,
     &rows_kernels_avx512,
     &convert_avx512,
     &half_avx512},
    {"avx2", "AVX2 and FMA, with YMM state enabled by the OS",
     [] { return cpu_features().can_run_avx2(); },
     &kernels_avx2,
     &gumbel_kernels_avx2,
     &sample_kernels_avx2,
     &rows_kernels_avx2,
     &convert_avx2_if_f16c,
     &half_avx2_if_f16c},
#endif
#if defined(SSM_HAVE_NEON_KERNELS)
    {"neon", "AArch64 Advanced SIMD (mandatory in AArch64: every arm64 CPU runs it)",
     [] { return true; },
     &kernels_neon,
     &gumbel_kernels_neon,
     &sample_kernels_neon,
     &rows_kernels_neon,
     &convert_neon,
     nullptr},
#endif
    {"scalar", "nothing (portable C++)",
     [] { return true; },
     &kernels_scalar,
     &gumbel_kernels_scalar,
     &sample_kernels_scalar,
     &rows_kernels_scalar,
     &convert_scalar,
     &half_scalar},
};

const Implementation* best() {
  for (const auto& impl : kImplementations)
    if (impl.runnable()) return &impl;
  return &kImplementations[sizeof(kImplementations) / sizeof(kImplementations[0]) - 1];
}

std::atomic<const Implementation*>& process_wide() {
  static std::atomic<const Implementation*> ptr{best()};
  return ptr;
}

thread_local const Implementation* t_override = nullptr;

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

std::vector<std::string> known_isas() { return {std::begin(kIsaNames), std::end(kIsaNames)}; }

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

const Implementation& active_implementation() {
  const Implementation* impl = t_override;
  return impl ? *impl : *process_wide().load(std::memory_order_acquire);
}

const HalfConvert& active_convert() {
  const Implementation& impl = active_implementation();
  return impl.convert ? impl.convert() : convert_scalar();
}

namespace {
std::atomic<bool> g_half_bf16_allowed{true};
}  // namespace

void allow_half_bf16_instructions(bool allow) { g_half_bf16_allowed.store(allow, std::memory_order_relaxed); }

bool half_bf16_instructions() {
#if defined(SSM_HAVE_AVX512BF16_KERNELS)
  return cpu_features().avx512bf16 && cpu_features().can_run_avx512() &&
         g_half_bf16_allowed.load(std::memory_order_relaxed);
#else
  return false;
#endif
}

const HalfKernelSet* active_half() {
  const Implementation& impl = active_implementation();
  return impl.half ? impl.half() : nullptr;
}

const Implementation& find_implementation(const std::string& name) {
  for (const auto& impl : kImplementations) {
    if (name != impl.name) continue;
    if (!impl.runnable())
      throw std::invalid_argument("kernel set '" + name + "' is not supported by this CPU (supported: " +
                                  join(supported_isas()) + ")");
    return impl;
  }
  throw std::invalid_argument("unknown kernel set '" + name + "' (expected one of: " + join(compiled_isas()) + ")");
}

void set_active_isa(const std::string& name) {
  process_wide().store(&find_implementation(name), std::memory_order_release);
}

std::string process_isa() { return process_wide().load(std::memory_order_acquire)->name; }

void set_thread_isa(const std::string& name) { t_override = name.empty() ? nullptr : &find_implementation(name); }

std::string thread_isa() { return t_override ? t_override->name : ""; }

}  // namespace ssm
