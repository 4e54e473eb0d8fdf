// Run-time settings of the drivers (process-wide): algorithm and store-policy
// names, chunking, the thread threshold, streaming stores, the software
// prefetch distance. The setters exist for tests and tuning (_core.testing).
#pragma once
#include <atomic>
#include <cstddef>
#include <string>
#include <vector>

namespace ssm {

enum class Algorithm { TwoPass, ThreePassRecompute, ThreePassReload, Online, Auto };

// Every algorithm's name, "auto" first (exported as _core.ALGORITHMS).
std::vector<std::string> algorithm_names();
// Throws std::invalid_argument naming the valid algorithms.
Algorithm parse_algorithm(const std::string& name);
const char* algorithm_name(Algorithm a);

enum class StorePolicy { Auto, Stream, Regular };
StorePolicy parse_store_policy(const std::string& name);
const char* store_policy_name(StorePolicy p);

// Software prefetch distance setting (bytes; -1 = default), see
// prefetch_distance() in kernels/kernel_api.h.
extern std::atomic<int> g_prefetch_bytes;
// Test hook: false sends every row the float64 sums flag near lse = 0 on the
// row path straight to the scalar double-double sum (softmax_rows.h,
// lse_vector_tier), so tests reach it with any data. Default true.
extern std::atomic<bool> g_lse_vector_tier;

struct Settings {
  StorePolicy store_policy;
  size_t chunk_elements;     // chunk size of rows longer than chunked_row
  size_t chunked_row;        // rows longer than this are split into chunks
  size_t parallel_min;       // fewer elements than this in a call: no threads
  size_t stream_min_bytes;   // Auto stores: stream when the output is at least this big
  size_t reload_max_bytes;   // auto algorithm: three-pass-reload while a row is at most this big (1 row at a time)
};
Settings settings();
void set_store_policy(StorePolicy p);
void set_chunking(size_t chunk_elements, size_t chunked_row);
void set_parallel_min(size_t elements);
// The parts of settings() the drivers read on every call.
size_t chunk_elements();
size_t chunked_row();
size_t parallel_min();
// Would a call writing this many bytes use streaming stores?
bool use_stream(size_t out_bytes);
// What `auto` runs for a row of n elements of elem_size bytes, when that
// many rows are processed at the same time (one per thread).
Algorithm resolve_auto(size_t n, size_t elem_size, size_t concurrent_rows = 1);

// Marks the running thread's kernel calls as part of a call whose input of
// `bytes` fits in the core's L2, for the object's lifetime: its passes then
// read lines the previous pass left in the cache, and a software prefetch
// only costs a load-port slot per line, so prefetch_distance() returns 0.
class CallFootprint {
 public:
  explicit CallFootprint(size_t bytes);
  ~CallFootprint();
  CallFootprint(const CallFootprint&) = delete;
  CallFootprint& operator=(const CallFootprint&) = delete;

 private:
  bool saved_;
};

}  // namespace ssm
