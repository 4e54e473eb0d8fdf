// Ordering the candidates of top-k's buffered selection (select_collect in
// sample_generic.h). Declared here for the kernel translation units, defined
// once in pick_order.cpp, which is compiled with the baseline flags: the std
// algorithms used there instantiate std helpers (swap, move_backward, __lg)
// that an unoptimized build emits as weak functions, which must not be
// emitted in an AVX-compiled object (the linker could pick them for code run
// on any CPU). Plain C++ types only.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ssm {

// A candidate: a value (never NaN) and its offset in the chunk.
struct Pick {
  double value;
  uint32_t at;
};

// The better of two picks: the larger value, then the lower offset (a strict
// total order for picks of distinct offsets). Internal linkage: nothing
// inline is shared between the kernel objects and the baseline code.
namespace {
inline bool pick_before(const Pick& a, const Pick& b) { return a.value > b.value || (a.value == b.value && a.at < b.at); }
}  // namespace

// p[m] becomes the pick a full sort by pick_before would put there, the
// picks before it in front and the rest behind (std::nth_element); m < n.
void select_nth_pick(Pick* p, size_t n, size_t m);

// p[0..n) sorted by pick_before (std::sort).
void sort_picks(Pick* p, size_t n);

}  // namespace ssm
