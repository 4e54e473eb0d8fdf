// Runtime dispatch. Each kernel set is one Implementation: its name, what the
// CPU and OS must provide, runnable() (CPUID + XGETBV, cpu_features.h), and
// one table per kernel family. The best runnable set is chosen once, at the
// first call; set_active_isa replaces it for the whole process, and a
// per-thread override (use_isa as a context manager) takes precedence on its
// own thread. A call reads the active implementation once, at its start, so it
// finishes on the set it started with.
//
// Adding a kernel family: one field in Implementation (a function returning the
// family's table) and one line per kernel set in dispatch.cpp.
// Adding a kernel set: its kernels/<family>_<isa>.cpp files, its name in
// kIsaNames and its Implementation in dispatch.cpp (both say where).
#pragma once
#include <string>
#include <vector>

#include "kernels/convert_api.h"
#include "kernels/gumbel_api.h"
#include "kernels/half_api.h"
#include "kernels/kernel_api.h"
#include "kernels/rows_api.h"
#include "kernels/sample_api.h"

namespace ssm {

struct Implementation {
  const char* name;
  const char* required;  // what the CPU and OS must provide, in words
  bool (*runnable)();
  // The tables are built on first use, and only once runnable() is true:
  // building one may already execute instructions of that set.
  const KernelSet& (*softmax)();  // softmax, log_softmax, logsumexp, probes
  const GumbelSet& (*gumbel)();   // gumbel_argmax / topk / softmax
  const SampleSet& (*sample)();   // sample / topk selection passes
  // Short rows a group per vector (batches of rows of n <= 256); null where a
  // set has none yet, and those batches take the per-row path.
  const RowsKernelSet& (*rows)();
  // float16 / bfloat16 <-> float32 conversions (kernels/convert_api.h), used
  // by the half drivers; null where a set has none yet, and half arrays then
  // use the scalar conversions. A set whose conversions need more than
  // `required` (avx2's need F16C) returns the scalar table when the CPU lacks
  // it: the choice is made once, when the table is first asked for.
  const HalfConvert& (*convert)();
  // The softmax family's passes reading and writing float16 / bfloat16
  // directly (conversion fused into loads and stores); null where a set has
  // none, and the half drivers then convert blocks into a float32 buffer
  // with `convert` and run the float32 passes there. Like `convert`, a set
  // needing more than `required` (avx2: F16C) returns null from a getter it
  // cannot run: half_kernels() below.
  const HalfKernelSet* (*half)();
};

// Every kernel set the project knows, compiled here or not, best first.
std::vector<std::string> known_isas();
// Kernel sets compiled into this build, best first.
std::vector<std::string> compiled_isas();
// Compiled and runnable here, best first.
std::vector<std::string> supported_isas();

// The implementation calls on this thread use: the thread's override if it
// has one, else the process-wide one (never null).
const Implementation& active_implementation();
inline const KernelSet& active_kernels() { return active_implementation().softmax(); }
inline const GumbelSet& active_gumbel() { return active_implementation().gumbel(); }
inline const SampleSet& active_sample() { return active_implementation().sample(); }
// The active set's half conversions (the scalar ones where it has none).
const HalfConvert& active_convert();
// The active set's fused half kernels, or null (use active_convert()).
const HalfKernelSet* active_half();
// Does the avx512 set round bfloat16 with AVX512_BF16's instructions (compiled
// in, reported by CPUID, and allowed)? Allowed by default; tests turn it off
// to run the integer rounding on CPUs that have the instructions.
bool half_bf16_instructions();
void allow_half_bf16_instructions(bool allow);

// A family's table for one dtype: kernels_for<float>(set) is set.f32, ...
template <class T>
const Kernels<T>& kernels_for(const KernelSet& set) {
  if constexpr (sizeof(T) == 4) return set.f32; else return set.f64;
}
template <class T>
const GumbelKernels<T>& gumbel_for(const GumbelSet& set) {
  if constexpr (sizeof(T) == 4) return set.f32; else return set.f64;
}
template <class T>
const SampleKernels<T>& sample_for(const SampleSet& set) {
  if constexpr (sizeof(T) == 4) return set.f32; else return set.f64;
}

// A compiled, runnable implementation by name; throws std::invalid_argument
// for unknown or unsupported names (the messages list the valid ones).
const Implementation& find_implementation(const std::string& name);

// Make a kernel set active for the whole process (throws as above), and the
// process-wide one's name (what threads without an override use).
void set_active_isa(const std::string& name);
std::string process_isa();
// The calling thread's override: "" clears it (the process-wide set applies
// again). thread_isa() returns the override, or "" when there is none.
void set_thread_isa(const std::string& name);
std::string thread_isa();

}  // namespace ssm
