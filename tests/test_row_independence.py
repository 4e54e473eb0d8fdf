"""A row's bits do not depend on the rows beside it.

The short-row kernels compute a group of W rows at once (W the lane count,
one row per lane; rows_generic.h, rows_log_softmax32_direct.h), and some
choose a write per group. Whatever the group holds, each ordinary row must
come out as it does among ordinary rows only: a neighbour with a dominant
entry (log_softmax's float64 write), with a NaN, all -inf, or whose
logsumexp is near 0 (which logsumexp's first tier cannot certify) must not
move its bits. Every 11th row of a batch of four groups and a part is replaced,
so some groups hold one such row, some two and some none; lengths from 1
to past the direct rows' start and every tail of the lane count, on every
kernel set this machine runs.
"""
import numpy as np
import pytest
from scipy.special import logsumexp as ref_lse

import simdsoftmax as ssm
from simdsoftmax import _core

FUNCS = ("softmax", "log_softmax", "logsumexp")
KINDS = ("dominant", "far dominant", "nan", "all -inf", "lse near 0")


def lengths(isa, dtype):
    w = _core.testing.tiles(isa, np.dtype(dtype).name)["lanes"]
    # Every length through four blocks of W (the register and pair
    # kernels), then each tail of W around the direct rows and beyond.
    short = range(1, 4 * w + 2)
    longer = {k * w + t for k in (6, 8, 16) for t in (-1, 0, 1)}
    return sorted(set(short) | {n for n in longer if n > 0} | {100, 127, 160, 200, 300, 1000})


def replaced(a, kind, offset):
    b = a.copy()
    rows, n = a.shape
    hit = np.arange(rows) % 11 == offset
    for r in np.flatnonzero(hit):
        if kind == "dominant":  # S - 1 from e^-1 to e^-29: the wide write where narrow is not certified
            b[r, r % n] = b[r].max() + 1 + r % 29
        elif kind == "far dominant":
            b[r, r % n] = b[r].max() + 80
        elif kind == "nan":
            b[r, r % n] = np.nan
        elif kind == "lse near 0":  # logsumexp's first tier cannot certify it
            b[r] = (a[r].astype(np.float64) - ref_lse(a[r].astype(np.float64))).astype(a.dtype)
        else:
            b[r, :] = -np.inf
    return b, hit


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_rows_bits_do_not_depend_on_their_group(isa, dtype):
    w = _core.testing.tiles(isa, np.dtype(dtype).name)["lanes"]
    rows = 4 * max(w, 16) + 5
    scale = np.geomspace(0.05, 40.0, rows)[:, None]  # log S from ~log n down to ~0
    for n in lengths(isa, dtype):
        rng = np.random.default_rng(n)
        a = (rng.standard_normal((rows, n)) * scale + rng.uniform(-60, 60, (rows, 1))).astype(dtype)
        plain = {f: getattr(ssm, f)(a, axis=1) for f in FUNCS}
        for k, kind in enumerate(KINDS):
            if n == 1 and kind != "all -inf":
                continue  # a row of one: its entry is its max (and its lse)
            b, hit = replaced(a, kind, 3 + k)
            for f in FUNCS:
                got = getattr(ssm, f)(b, axis=1)
                moved = [r for r in np.flatnonzero(~hit) if got[r].tobytes() != plain[f][r].tobytes()]
                assert not moved, (isa, n, f, kind, moved[:8])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_logsumexp_bits_do_not_depend_on_their_place(isa, dtype):
    # The same rows rotated through the batch: each row in full groups, in
    # blocks of groups and in the batch's last, partial group, beside
    # special rows and rows whose lse is near 0.
    w = _core.testing.tiles(isa, np.dtype(dtype).name)["lanes"]
    rows = 16 * max(w, 16) + 7
    scale = np.geomspace(0.05, 40.0, rows)[:, None]
    for n in range(2, 2 * w + 2):
        rng = np.random.default_rng(1000 + n)
        a = (rng.standard_normal((rows, n)) * scale + rng.uniform(-60, 60, (rows, 1))).astype(dtype)
        for k, kind in enumerate(KINDS):
            a, _ = replaced(a, kind, 3 + k)
        plain = ssm.logsumexp(a, axis=1)
        for shift in (1, 5, w, 3 * w + 1, rows // 2):
            got = np.roll(ssm.logsumexp(np.roll(a, -shift, axis=0), axis=1), shift)
            moved = [r for r in range(rows) if got[r].tobytes() != plain[r].tobytes()]
            assert not moved, (isa, n, shift, moved[:8])
