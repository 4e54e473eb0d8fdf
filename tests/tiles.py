"""Sizes derived from each kernel's loop geometry.

`_core.testing.tiles(isa, dtype)` gives, per kernel, the number of elements
its main loop takes per step (vector lanes x unroll; the fast sums' block of
unroll x block vectors), the strided kernels' column panel and row block, and
the Gumbel kernels' tiles. A size sweep that crosses every tail of a kernel
covers 1 .. tile-1 (only the remainder loop), tile, a few multiples, and
tile+1 .. 2*tile-1 (one full step, then every remainder): `sizes_for`.
"""

import numpy as np

from simdsoftmax import _core


def tiles(isa, dtype):
    """{kernel: elements per main-loop step} of kernel set `isa` for `dtype`."""
    return dict(_core.testing.tiles(isa, np.dtype(dtype).name))


def sizes_for(tile, dense=None, samples=16):
    """Sizes that hit every tail of a loop of `tile` elements per step:
    1 .. tile-1, tile, 2*tile, 3*tile and tile+1 .. 2*tile-1.

    `dense` (for long tiles, e.g. a panel of 4096 columns whose inner loop
    steps by `dense`): keep the two ranges whole only within `dense` of their
    ends and take `samples` sizes evenly spread in between, each at another
    residue modulo `dense`; tile-1, tile, tile+1 and 2*tile-1 are always in.
    """
    if dense is None or 4 * dense + 2 * samples >= tile:
        sizes = set(range(1, 2 * tile))
    else:
        sizes = set()
        for lo, hi in ((1, tile - 1), (tile + 1, 2 * tile - 1)):
            sizes.update(range(lo, lo + dense))
            sizes.update(range(hi - dense + 1, hi + 1))
            step = (hi - lo - 2 * dense) // samples
            sizes.update(lo + dense + k * step + k % dense for k in range(samples))
    sizes.update({tile - 1, tile, tile + 1, 2 * tile - 1, 2 * tile, 3 * tile})
    sizes.discard(0)
    return sorted(sizes)


def union_sizes(tile_list, dense=None):
    """The union of sizes_for over `tile_list`, sorted."""
    out = set()
    for t in tile_list:
        out.update(sizes_for(t, dense))
    return sorted(out)


# Kernels each family's row functions run through (names of the tiles dict).
ROW_KERNELS = (
    "lanes", "expsum_fast", "expsum_pow2", "expsum_store_pow2", "expsum", "expsum_online", "max_scan",
    "expsum_store", "scale", "write_exp", "write_shift", "expsum_lse",
)  # fmt: skip
LSE_KERNELS = ("lanes", "lanes_wide", "expsum_fast", "expsum_lse", "expsum_wide", "expsum_online_wide", "max_scan")
STRIDED_COLUMN_KERNELS = ("expsum_strided_fast", "expsum_strided_online", "write_exp_strided", "write_shift_strided")
GUMBEL_KERNELS = ("gumbel.lanes", "gumbel.group", "gumbel.tile")


def row_sizes(isa, dtype):
    """Row lengths that cross every tail of softmax's and log_softmax's row kernels."""
    t = tiles(isa, dtype)
    return union_sizes(t[k] for k in ROW_KERNELS)


def lse_sizes(isa, dtype):
    """Row lengths that cross every tail of the log-sum-exp passes."""
    t = tiles(isa, dtype)
    return union_sizes(t[k] for k in LSE_KERNELS)


def strided_column_sizes(isa, dtype):
    """Inner-axis lengths (columns) of the strided kernels: every vector tail
    within a panel, and across the panel boundary (sparse: a panel is 4096)."""
    t = tiles(isa, dtype)
    inner = max(t[k] for k in STRIDED_COLUMN_KERNELS)
    return sorted(set(union_sizes(t[k] for k in STRIDED_COLUMN_KERNELS)) | set(sizes_for(t["strided_panel"], inner)))


def strided_row_sizes(isa, dtype):
    """Reduced-axis lengths of the strided kernels (rows come in blocks)."""
    return sizes_for(tiles(isa, dtype)["strided_rows"])


def gumbel_sizes(isa, dtype):
    """Row lengths that cross every tail of the Gumbel kernels, and their gate
    span (sparse within it)."""
    t = tiles(isa, dtype)
    dense = union_sizes(t[k] for k in GUMBEL_KERNELS)
    return sorted(set(dense) | set(sizes_for(t["gumbel.gate_span"], t["gumbel.tile"])))
