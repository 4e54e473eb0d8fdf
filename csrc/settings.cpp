#include "settings.h"

#include <algorithm>
#include <atomic>
#include <stdexcept>

#include "cache_info.h"
#include "kernels/kernel_api.h"
#include "thread_pool.h"

namespace ssm {

// -1: the default below.
std::atomic<int> g_prefetch_bytes{-1};
std::atomic<bool> g_lse_vector_tier{true};

namespace {
// Set (by CallFootprint, below) while this thread runs a batch call whose
// whole input fits in the core's L2: its passes then read lines the
// previous pass left in the cache, and a software prefetch only costs a
// load-port slot per line (64 KiB float32 softmax was 5-7% faster without).
thread_local bool t_call_in_cache = false;
}  // namespace

size_t prefetch_distance(size_t bytes) {
  // 16 KiB ahead: about DRAM latency x one core's bandwidth, with room to
  // spare (the measured best). Not tied to the pass's size: the
  // kernels see one chunk of a long row at a time; the call's footprint
  // decides instead (t_call_in_cache).
  constexpr int kDefault = 16 << 10;
  if (bytes < (16u << 10) || t_call_in_cache) return 0;
  const int d = g_prefetch_bytes.load(std::memory_order_relaxed);
  return static_cast<size_t>(d < 0 ? kDefault : d);
}

namespace {

std::atomic<int> g_store_policy{static_cast<int>(StorePolicy::Auto)};
// 64 Ki elements per chunk: fine enough to balance two or more threads on
// one row, coarse enough that the per-chunk start and lane reduction (about
// 0.1 us) stay well below 1% of the chunk's time.
std::atomic<size_t> g_chunk{size_t(1) << 16};
// Rows up to 256 Ki elements are never split: a batch of them is spread over
// the threads row by row, which needs no reduction between threads; longer
// rows are split (so one 1 MiB float32 row already uses every thread).
std::atomic<size_t> g_chunked_row{size_t(1) << 18};
// Calls with fewer elements than this stay on the caller's thread; 0: not
// set, follow the measured wake-up latency (parallel_min()).
std::atomic<size_t> g_parallel_min{0};

// Streaming stores pay off once the output cannot stay in the cache anyway:
// a regular store then costs a read-for-ownership plus a write-back, a
// streaming one just the write. Twice the last-level cache leaves room for
// the input, which the second pass reads back from the cache as well.
size_t stream_min_bytes() { return 2 * cache_sizes().last_level(); }

// auto: three-pass-reload reads x twice and y twice, two-pass reads x twice
// and writes once; reload does fewer operations per element and wins while x
// and y stay cached between its passes: in the core's L2, or in the shared
// last-level cache with room to spare (measured on Zen 5, 32 MiB L3: reload
// 4% faster at 4 MiB rows, even at 8 MiB, 17% slower at 12 MiB). Rows
// processed at the same time on several threads share the LLC.
size_t reload_max_bytes(size_t concurrent_rows = 1) {
  const CacheSizes& c = cache_sizes();
  return std::max(c.l2 / 2, c.last_level() / (8 * std::max<size_t>(1, concurrent_rows)));
}

}  // namespace

CallFootprint::CallFootprint(size_t bytes) : saved_(t_call_in_cache) { t_call_in_cache = bytes <= cache_sizes().l2; }
CallFootprint::~CallFootprint() { t_call_in_cache = saved_; }

size_t chunk_elements() { return g_chunk.load(); }
size_t chunked_row() { return g_chunked_row.load(); }
// Threads pay for a call once half its time exceeds a sleeping worker's
// wake-up time. At ~0.5 ns per element (a fast pass in cache, the cheapest
// case) that is 4 elements per nanosecond of the measured latency
// (wake_latency_ns(): 30 us until the first parallel call, i.e. 120 Ki
// elements; ~100-150 us on some virtual machines). Clamped to 16 Ki-16 Mi.
size_t parallel_min() {
  const size_t set = g_parallel_min.load();
  if (set != 0) return set;
  const double elements = 4.0 * wake_latency_ns();
  return static_cast<size_t>(std::min(std::max(elements, 16384.0), 16777216.0));
}

namespace {
// Every algorithm and its name, in the order the documentation lists them.
struct AlgorithmName {
  Algorithm algorithm;
  const char* name;
};
constexpr AlgorithmName kAlgorithmNames[] = {{Algorithm::Auto, "auto"},
                                             {Algorithm::TwoPass, "two-pass"},
                                             {Algorithm::ThreePassRecompute, "three-pass-recompute"},
                                             {Algorithm::ThreePassReload, "three-pass-reload"},
                                             {Algorithm::Online, "online"}};
}  // namespace

std::vector<std::string> algorithm_names() {
  std::vector<std::string> names;
  for (const auto& a : kAlgorithmNames) names.emplace_back(a.name);
  return names;
}

Algorithm parse_algorithm(const std::string& name) {
  for (const auto& a : kAlgorithmNames)
    if (name == a.name) return a.algorithm;
  std::string valid;
  for (const auto& a : kAlgorithmNames) valid += std::string(valid.empty() ? "'" : ", '") + a.name + "'";
  throw std::invalid_argument("algorithm must be one of " + valid + "; got '" + name + "'");
}

const char* algorithm_name(Algorithm a) {
  for (const auto& entry : kAlgorithmNames)
    if (entry.algorithm == a) return entry.name;
  return "auto";
}

StorePolicy parse_store_policy(const std::string& name) {
  if (name == "auto") return StorePolicy::Auto;
  if (name == "stream") return StorePolicy::Stream;
  if (name == "regular") return StorePolicy::Regular;
  throw std::invalid_argument("store policy must be 'auto', 'stream' or 'regular'; got '" + name + "'");
}

const char* store_policy_name(StorePolicy p) {
  return p == StorePolicy::Stream ? "stream" : p == StorePolicy::Regular ? "regular" : "auto";
}

Settings settings() {
  return Settings{static_cast<StorePolicy>(g_store_policy.load()), g_chunk.load(), g_chunked_row.load(),
                  parallel_min(), stream_min_bytes(), reload_max_bytes()};
}

void set_store_policy(StorePolicy p) { g_store_policy.store(static_cast<int>(p)); }

void set_chunking(size_t chunk_elements, size_t chunked_row) {
  // Kernels assume a call of at most 2^24 elements (lane sums cannot overflow).
  if (chunk_elements < 1 || chunk_elements > (size_t(1) << 24) || chunked_row > (size_t(1) << 24))
    throw std::invalid_argument("chunk sizes must be in [1, 2^24]");
  g_chunk.store(chunk_elements);
  g_chunked_row.store(chunked_row);
}

void set_parallel_min(size_t elements) { g_parallel_min.store(elements == 0 ? 1 : elements); }

bool use_stream(size_t out_bytes) {
  switch (static_cast<StorePolicy>(g_store_policy.load())) {
    case StorePolicy::Stream: return true;
    case StorePolicy::Regular: return false;
    case StorePolicy::Auto: break;
  }
  return out_bytes >= stream_min_bytes();
}

Algorithm resolve_auto(size_t n, size_t elem_size, size_t concurrent_rows) {
  return n * elem_size <= reload_max_bytes(concurrent_rows) ? Algorithm::ThreePassReload : Algorithm::TwoPass;
}

}  // namespace ssm
