// _core.cache_sizes(): the data-cache sizes the kernels tune themselves to
// (cache_info.cpp), for callers that size work by cache level (the benchmark
// CLI's sweep) without detecting them a second way.
#include <pybind11/pybind11.h>

#include "cache_info.h"

namespace py = pybind11;

void register_cache(py::module_& m) {
  m.def(
      "cache_sizes",
      [] {
        const ssm::CacheSizes& c = ssm::cache_sizes();
        py::dict d;
        d["l1d_bytes"] = c.l1d;
        d["l2_bytes"] = c.l2;
        d["l3_bytes"] = c.l3;  // 0: no L3 found
        d["source"] = c.source;  // sysfs, sysctl, cpuid, sysconf, or default (a guess)
        return d;
      },
      "Data-cache sizes in bytes (l1d_bytes, l2_bytes, l3_bytes; 0 = level not found) and their source.");
}
