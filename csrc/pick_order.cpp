// The candidate ordering of pick_order.h, with the std algorithms, in a
// translation unit compiled with the baseline flags (see the header).
#include "kernels/pick_order.h"

#include <algorithm>

namespace ssm {

void select_nth_pick(Pick* p, size_t n, size_t m) { std::nth_element(p, p + m, p + n, pick_before); }

void sort_picks(Pick* p, size_t n) { std::sort(p, p + n, pick_before); }

}  // namespace ssm
