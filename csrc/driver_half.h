// float16 / bfloat16 rows, read and written at 2 bytes per element and
// computed by the float32 kernels: blocks of a row are converted into a
// per-thread float32 buffer (L1/L2-resident), the float32 passes run on the
// buffer, and results are rounded to the half format once (nearest even).
//
// Rows up to kHalfWholeRow elements: whole rows (several short ones at a
// time) are converted, computed by the float32 batch drivers in place in the
// buffer, and converted back: one read and one write of the half data.
// Longer rows: the two-pass algorithm block by block, with the blocks'
// pass-1 partials (m, e) combined in block order (combine_partials), then the
// write pass converting each block again: two reads and one write.
//
// Special rows (NaN, +-inf, all -inf) are reported as by the float32 drivers
// and left for the Python layer to fill.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "driver.h"
#include "kernels/convert_api.h"

namespace ssm {

constexpr size_t kHalfWholeRow = 65536;  // 256 KiB of float32: a core's L2 (512 KiB and up) holds it
constexpr size_t kHalfBlock = 4096;      // long rows: 16 KiB of float32 per block, L1-resident

// Rows of at least this many elements use the active set's fused half
// kernels (half_api.h: conversion inside the passes' loads and stores) when
// it has them and the algorithm is two-pass or auto; shorter rows, other
// algorithms and sets without fused kernels use the buffered path above.
// Default: just above the set's short-row kernels (rows_api.h max_n). For
// tests (both paths on every set) and same-run A/B timings.
void set_half_fused_min(size_t n);
void reset_half_fused_min();

// Batches of at least two rows of the active set's rows_min_n to n elements
// take its short-row kernels (half_api.h softmax_rows, log_softmax_rows;
// softmax with algorithm auto); 0 turns them off. Default: the set's
// rows_auto_max for the function (measured). For tests (both paths on every set) and A/B timings.
void set_half_rows_max(size_t n);
void reset_half_rows_max();

std::vector<size_t> half_softmax_batch(const uint16_t* x, uint16_t* y, size_t rows, size_t n, HalfFormat f,
                                       Algorithm a);
std::vector<size_t> half_log_softmax_batch(const uint16_t* x, uint16_t* y, size_t rows, size_t n, HalfFormat f);
// out[r] = logsumexp of row r in float32, accurate to a quarter ulp of the
// half format (so within 1 ulp once the caller rounds it to that format).
std::vector<size_t> half_logsumexp_batch(const uint16_t* x, float* out, size_t rows, size_t n, HalfFormat f);

}  // namespace ssm
