// Data-cache sizes of the CPU the process runs on, read once at run time:
// they set the `auto` algorithm's crossover and when stores stream past the
// cache, so nothing is tuned to one machine's constants.
#pragma once
#include <cstddef>
#include <string>

namespace ssm {

struct CacheSizes {
  size_t l1d = 0, l2 = 0, l3 = 0;  // bytes; 0 = that level was not found
  std::string source;              // where they came from (for show_runtime)
  // The largest cache a single core's data can live in (L3, else L2, else a
  // guess), used for "is the output far larger than the cache?".
  size_t last_level() const;
};

// Order: Linux sysfs (cpu0's cache/index*), macOS sysctl, x86 CPUID (leaf 4
// on Intel, 0x8000001D on AMD), sysconf(_SC_LEVEL*_CACHE_SIZE), then the
// fallback 32 KiB / 1 MiB / 8 MiB. sysfs first: under some hypervisors glibc's
// sysconf reports the L3 of every CCD of the host added up.
const CacheSizes& cache_sizes();

}  // namespace ssm
