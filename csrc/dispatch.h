// Runtime dispatch: one KernelSet (a table of function pointers) per
// instruction set, the best one the CPU and OS allow chosen once, and an
// override by name. The active set is process-wide; each call reads it once,
// so a call in flight finishes on the set it started with.
#pragma once
#include <string>
#include <vector>

#include "kernels/gumbel_api.h"
#include "kernels/kernel_api.h"

namespace ssm {

// Kernel sets compiled into this build, best first.
std::vector<std::string> compiled_isas();
// Compiled and runnable here (CPUID + XGETBV), best first.
std::vector<std::string> supported_isas();
// The active set (never null).
const KernelSet& active_kernels();
// The Gumbel family of the active set.
const GumbelSet& active_gumbel();
// Throws std::invalid_argument for unknown or unsupported names.
void set_active_isa(const std::string& name);

}  // namespace ssm
