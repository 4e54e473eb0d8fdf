#include "cache_info.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "cpu_features.h"

#if defined(__APPLE__)
#include <sys/sysctl.h>
#include <sys/types.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace ssm {
namespace {

// "48K", "32768K", "1M", "1024" -> bytes (0 if unparsable).
size_t parse_size(const std::string& text) {
  size_t value = 0, i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') value = value * 10 + size_t(text[i++] - '0');
  if (i == 0) return 0;
  if (i < text.size()) {
    const char unit = text[i];
    if (unit == 'K' || unit == 'k') value <<= 10;
    if (unit == 'M' || unit == 'm') value <<= 20;
    if (unit == 'G' || unit == 'g') value <<= 30;
  }
  return value;
}

bool read_line(const std::string& path, std::string& out) {
  std::ifstream f(path);
  return static_cast<bool>(std::getline(f, out));
}

bool from_sysfs(CacheSizes& c) {
#if defined(__linux__)
  bool found = false;
  for (int index = 0; index < 16; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    std::string level, type, size;
    if (!read_line(dir + "level", level) || !read_line(dir + "type", type) || !read_line(dir + "size", size)) break;
    if (type == "Instruction") continue;
    const size_t bytes = parse_size(size);
    if (level == "1") c.l1d = bytes;
    if (level == "2") c.l2 = bytes;
    if (level == "3") c.l3 = bytes;
    found = found || bytes > 0;
  }
  if (found) c.source = "sysfs";
  return found;
#else
  (void)c;
  return false;
#endif
}

bool from_sysctl(CacheSizes& c) {
#if defined(__APPLE__)
  auto get = [](const char* name) -> size_t {
    int64_t v = 0;
    size_t len = sizeof v;
    return sysctlbyname(name, &v, &len, nullptr, 0) == 0 && v > 0 ? static_cast<size_t>(v) : 0;
  };
  // Apple silicon reports per performance level; the fast cores' caches first.
  c.l1d = get("hw.perflevel0.l1dcachesize");
  c.l2 = get("hw.perflevel0.l2cachesize");
  if (!c.l1d) c.l1d = get("hw.l1dcachesize");
  if (!c.l2) c.l2 = get("hw.l2cachesize");
  c.l3 = get("hw.l3cachesize");
  if (c.l1d || c.l2 || c.l3) {
    c.source = "sysctl";
    return true;
  }
#else
  (void)c;
#endif
  return false;
}

// CPUID deterministic cache parameters: leaf 4 (Intel) or 0x8000001D (AMD,
// same layout). size = ways * partitions * line size * sets.
bool from_cpuid(CacheSizes& c) {
  const CpuFeatures& f = cpu_features();
  const unsigned leaf = (f.vendor == "AuthenticAMD" || f.vendor == "HygonGenuine") ? 0x8000001Du : 4u;
  bool found = false;
  for (unsigned sub = 0; sub < 16; ++sub) {
    unsigned r[4];
    if (!cpuid_leaf(leaf, sub, r)) break;
    const unsigned type = r[0] & 0x1F;  // 0: no more caches, 1 data, 2 instruction, 3 unified
    if (type == 0) break;
    if (type == 2) continue;
    const unsigned level = (r[0] >> 5) & 0x7;
    const size_t ways = ((r[1] >> 22) & 0x3FF) + 1;
    const size_t partitions = ((r[1] >> 12) & 0x3FF) + 1;
    const size_t line = (r[1] & 0xFFF) + 1;
    const size_t sets = size_t(r[2]) + 1;
    const size_t bytes = ways * partitions * line * sets;
    if (level == 1) c.l1d = bytes;
    if (level == 2) c.l2 = bytes;
    if (level == 3) c.l3 = bytes;
    found = true;
  }
  if (found) c.source = "cpuid";
  return found;
}

bool from_sysconf(CacheSizes& c) {
#if defined(_SC_LEVEL1_DCACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE) && defined(_SC_LEVEL3_CACHE_SIZE)
  auto get = [](int name) -> size_t {
    const long v = sysconf(name);
    return v > 0 ? static_cast<size_t>(v) : 0;
  };
  c.l1d = get(_SC_LEVEL1_DCACHE_SIZE);
  c.l2 = get(_SC_LEVEL2_CACHE_SIZE);
  c.l3 = get(_SC_LEVEL3_CACHE_SIZE);
  if (c.l1d || c.l2 || c.l3) {
    c.source = "sysconf";
    return true;
  }
#else
  (void)c;
#endif
  return false;
}

CacheSizes detect() {
  CacheSizes c;
  if (!from_sysfs(c) && !from_sysctl(c) && !from_cpuid(c) && !from_sysconf(c)) c.source = "default";
  // Sane values whatever the source said (a VM may hide a level).
  if (c.l1d < (8u << 10) || c.l1d > (4u << 20)) c.l1d = 32u << 10;
  if (c.l2 < (64u << 10) || c.l2 > (64u << 20)) c.l2 = 1u << 20;
  if (c.l3 != 0 && (c.l3 < c.l2 || c.l3 > (size_t(4) << 30))) c.l3 = 0;
  if (c.source == "default") c.l3 = 8u << 20;
  return c;
}

}  // namespace

size_t CacheSizes::last_level() const { return l3 ? l3 : l2 ? l2 : (8u << 20); }

const CacheSizes& cache_sizes() {
  static const CacheSizes sizes = detect();
  return sizes;
}

}  // namespace ssm
