// Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as easy
// as 1, 2, 3", SC'11): round multipliers and Weyl key increments.
#pragma once
#include <cstdint>

constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;

// The Gumbel noise's gate (gumbel_generic.h): each element is "top" with
// probability p = 2^-12. A group of 16 holds no top element iff its gate
// word is below kGateClosed = floor(2^32 (1 - p)^16); given that it holds
// one, the first is element j with j = #{t in kFirstTop : word >= t}, where
// kFirstTop[j] = floor(2^32 P(first <= j | some)), P(first <= j | some) =
// (1 - (1 - p)^(j + 1)) / (1 - (1 - p)^16). Exact integers (computed with
// rational arithmetic; tests/test_gumbel.py recomputes them).
constexpr uint32_t kGateClosed = 0xFF0077DDu;
constexpr uint32_t kFirstTop[15] = {0x10078154u, 0x200E022Fu, 0x301382A3u, 0x401802BFu, 0x501B8293u,
                                    0x601E022Fu, 0x701F81A3u, 0x802000FFu, 0x901F8053u, 0xA01DFFAFu,
                                    0xB01B7F23u, 0xC017FEBFu, 0xD0137E93u, 0xE00DFEAFu, 0xF0077F23u};
