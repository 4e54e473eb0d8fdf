"""log_softmax's two-pass row path (a fast float64 sum with the row's max,
then y = (x - max) - (lse - max) with no exp) and the float32 log-sum-exp's
float64 fallback sum, on every kernel set, at every tail of their loops:
rows the error bound certifies and rows it sends to the exact online path
(dominant entries, huge spreads, +-inf, NaN, all -inf), against float64 /
long double references. The short-row batch kernels are switched off so
that every row length reaches the row kernels."""

import math

import numpy as np
import pytest

import simdsoftmax as ssm
from reference import assert_lse_close, ref_logsumexp, wide
from simdsoftmax import _core
from tiles import sizes_for, tiles, union_sizes


@pytest.fixture
def row_kernels():
    """Every row goes through the row kernels (no short-row batch path)."""
    _core.testing.set_short_rows_max(0)
    yield
    _core.testing.set_short_rows_max(2**64 - 1)


def two_pass_sizes(isa, dtype):
    t = tiles(isa, dtype)
    return union_sizes(t[k] for k in ("lanes", "lanes_wide", "expsum_lse", "expsum_top", "write_shift"))


def pass1_tile(isa, dtype):
    """The first pass's block: expsum_top for float64 data, expsum_lse else."""
    return tiles(isa, dtype)["expsum_top" if np.dtype(dtype) == np.float64 else "expsum_lse"]


def exact_log_softmax(x):
    """x - lse per row in long double, with lse - max = log1p(sum of the
    others' exp(x - max)) so that values near 0 keep their relative accuracy."""
    xl = x.astype(np.longdouble)
    top = xl.max(axis=1, keepdims=True)
    d = xl - top
    first = np.argmax(xl, axis=1)
    e = np.exp(d)
    e[np.arange(len(x)), first] = 0
    v = np.log1p(e.sum(axis=1, keepdims=True))
    return d - v


def assert_log_softmax_contract(x, y, where):
    """Every entry within 2 ulp of its dtype plus 4 float64 eps of |lse| (the
    contract of test_log_softmax.py) and within 4 eps relative (the dominant
    entry's promise, above the dtype's smallest normal); -inf exactly where x
    is -inf."""
    dtype = x.dtype
    ref = exact_log_softmax(x)
    fin = np.isfinite(ref)
    assert np.array_equal(np.isfinite(y), fin), where
    assert np.all(y[~fin] == -np.inf), where
    with np.errstate(invalid="ignore"):  # -inf - -inf where x is masked
        lse = np.broadcast_to((x.astype(np.longdouble) - ref).max(axis=1, where=fin, initial=-np.inf)[:, None], x.shape)
    err = np.abs(y[fin].astype(np.longdouble) - ref[fin])
    ulp_bound = 2 * np.spacing(np.abs(ref[fin]).astype(dtype)).astype(np.longdouble)
    ulp_bound += 4 * np.finfo(np.float64).eps * np.abs(lse[fin])
    assert np.all(err <= ulp_bound), (where, float((err / ulp_bound).max()))
    nonzero = np.abs(ref[fin]) > np.finfo(dtype).tiny  # relative error means nothing below
    rel = err[nonzero] / np.abs(ref[fin][nonzero])
    assert rel.size == 0 or rel.max() <= 4 * np.finfo(dtype).eps, (where, float(rel.max()))
    assert np.all(y[fin] <= 0), where


def run_rows(x):
    y = np.full_like(x, 7.0)
    special = _core.log_softmax(x, y)
    return y, list(special)


def test_certified_rows_every_tail(isa, dtype, row_kernels):
    """Ordinary logits (the certified path) at every tail of the sum's block
    and the write pass's unroll, with a masked entry in one row."""
    rng = np.random.default_rng(31)
    for n in two_pass_sizes(isa, dtype):
        for scale in (1.0, 8.0, 300.0):
            x = (rng.standard_normal((3, n)) * scale + 5).astype(dtype)
            if n > 2:
                x[1, rng.integers(n)] = -np.inf
            y, special = run_rows(x)
            assert special == []
            assert_log_softmax_contract(x, y, f"n={n} scale={scale}")


def test_across_the_certification_bound(isa, dtype, row_kernels):
    """One entry above n - 1 equal others by a gap from 0 to 60: lse - max
    runs from log(n) down to ~1e-10, across the bound where the fast sum can
    no longer certify the dominant entry and the exact path takes over. Every
    entry, the dominant one included, keeps the contract on both sides. (Far
    beyond, lse - max below ~1e-16, the exact path's double-double sum is
    the limit: that is its own test's business.)"""
    for n in sizes_for(pass1_tile(isa, dtype))[::5] + [1000]:
        for gap in (0.0, 0.5, 2.0, 5.0, 9.0, 14.0, 20.0, 25.0, 30.0):
            for at in {0, n // 2, n - 1}:
                x = np.full((1, n), -3.0, dtype)
                x[0, at] = -3.0 + gap
                y, special = run_rows(x)
                assert special == []
                assert_log_softmax_contract(x, y, f"n={n} gap={gap} at={at}")


# lse - max of a row with one dominant entry, from ~1 down to 1e-10: across
# float32's certification bound (~6e-8 since the sum recomputes the max's own
# term exactly; ~2e-3 before) and float64's (~2).
EDGE_V = (1.0, 0.1, 4e-3, 2e-3, 1e-3, 1e-5, 1e-6, 2e-7, 1e-7, 6e-8, 4e-8, 1e-8, 1e-10)


def dominant_row(rng, n, dtype, v, at):
    """n entries whose lse - max is v (up to rounding x to dtype): the
    others random, the dominant one at `at` placed -log(expm1(v)) above the
    others' log-sum-exp."""
    x = rng.standard_normal(n) * 0.5 - 3.0
    if n > 1:
        others = np.delete(x, at)
        top = others.max()
        lse_others = top + np.log(np.exp(others - top).sum())
        x[at] = lse_others - math.log(math.expm1(v))
    return x.astype(dtype)[None, :]


def test_dominant_entry_every_tail(isa, dtype, row_kernels):
    """Rows with one dominant entry, lse - max from 1 to 1e-10, at every
    length up to two blocks of the sum and the entry at the first, a middle
    and the last positions (the sum's blocks, single vectors and masked
    tail): the sum's max term is recomputed with the accurate exp wherever it
    sits, and every entry, the dominant one included, keeps the contract on
    both sides of the certification bound."""
    rng = np.random.default_rng(53)
    for n in sizes_for(pass1_tile(isa, dtype)):
        for v in EDGE_V:
            for at in sorted({0, 1 % n, n // 2, max(n - 2, 0), n - 1}):
                x = dominant_row(rng, n, dtype, v, at)
                y, special = run_rows(x)
                assert special == []
                assert_log_softmax_contract(x, y, f"n={n} v={v} at={at}")


def test_float64_top_sum_edges(isa, row_kernels):
    """float64 rows around the edges of expsum_top's certification
    (z = sum of the others' exp(x - max) relative to the max's exactly-1
    term): v = lse - max from 20 down to 1e-14, tied maxima, |lse| near 0
    (log-probabilities as input, where the 2-ulp bound leaves about 1 ulp
    of v and the exact path takes over), lane references raised mid-row
    (ascending rows spanning 1500 and a huge first-to-max gap), |max| near
    1e6, at every
    tail of expsum_top's block."""
    rng = np.random.default_rng(61)
    for n in sizes_for(tiles(isa, np.float64)["expsum_top"]):
        rows = []
        for v in (20.0, 3.0, 1.0, 0.3, 1e-3, 1e-7, 1e-11, 1e-14):
            rows.append(dominant_row(rng, n, np.float64, v, rng.integers(n))[0])
        logp = rng.standard_normal(n) * 2
        logp -= ref_logsumexp(logp[None, :], dtype=wide(np.float64))[0][0]
        rows.append(logp)  # lse ~ 0
        rows.append(logp + 1e-12)
        tied = np.full(n, -1.0)
        tied[:: max(1, n // 3)] = 0.5
        rows.append(tied)
        rows.append(np.linspace(-750.0, 750.0, n))
        ramp = rng.standard_normal(n)
        ramp[-1] = 700.0
        ramp[0] = -700.0
        rows.append(ramp)
        rows.append(np.full(n, 1e6))  # exp(max)'s argument reduction far out (2^20 is the limit)
        rows.append(rng.standard_normal(n) * 3 - 1e6)
        x = np.array(rows)
        y, special = run_rows(x)
        assert special == []
        assert_log_softmax_contract(x, y, f"n={n}")


def same_bits_on_1_and_2_threads(x, set_threads):
    """log_softmax of the rows x (no special row) on 1 and on 2 threads: the
    same bits; returns them."""
    set_threads(1)
    y1, s1 = run_rows(x)
    set_threads(2)
    y2, s2 = run_rows(x)
    assert s1 == s2 == []
    np.testing.assert_array_equal(y1, y2)
    return y1


def test_dominant_entry_in_a_later_chunk(isa, dtype, small_chunks, row_kernels):
    """A row cut into chunks whose dominant entry sits in a later chunk (every
    chunk recomputes its own max's term; the bounds combine): the contract,
    and the same bits for 1 and 2 threads."""
    rng = np.random.default_rng(59)
    for v in (1e-2, 1e-4, 1e-6, 1e-7, 1e-9):
        for at in (0, 36, 37, 600, 1000):
            x = dominant_row(rng, 1001, dtype, v, at)
            assert_log_softmax_contract(x, same_bits_on_1_and_2_threads(x, small_chunks), f"v={v} at={at}")


def test_fallback_rows_every_tail(isa, dtype, row_kernels):
    """Rows the fast sum cannot take (a huge spread beyond its range, a max
    beyond +-2^20, a dominant entry) give the exact path's results; rows with
    NaN, +inf or only -inf are reported special (for SciPy's formulas)."""
    rng = np.random.default_rng(37)
    big = 1e30 if dtype == np.float32 else 1e300
    for n in two_pass_sizes(isa, dtype)[::3]:
        x = rng.standard_normal((4, n)).astype(dtype)
        p = rng.integers(n)
        x[0] *= big
        x[1] += 3e6
        x[2, p] = 80.0
        x[3] -= 5e6
        y, special = run_rows(x)
        assert special == []
        assert_log_softmax_contract(x, y, f"n={n}")
        for kind in ("nan", "inf", "all -inf"):
            z = rng.standard_normal((3, n)).astype(dtype)
            z[1] = {"nan": np.where(np.arange(n) == p, np.nan, z[1]),
                    "inf": np.where(np.arange(n) == p, np.inf, z[1]),
                    "all -inf": np.full(n, -np.inf)}[kind]  # fmt: skip
            y, special = run_rows(z)
            assert special == [1], (kind, n)
            assert_log_softmax_contract(z[[0, 2]], y[[0, 2]], f"n={n} {kind}")


def test_public_special_rows_like_scipy(isa, dtype, row_kernels):
    """NaN, +inf and all -inf rows through ssm.log_softmax: what SciPy gives."""
    scipy_special = pytest.importorskip("scipy.special")
    n = 2 * tiles(isa, dtype)["expsum_lse"] + 3
    x = np.random.default_rng(41).standard_normal((4, n)).astype(dtype)
    x[0, 5] = np.nan
    x[1, 7] = np.inf
    x[2] = -np.inf
    got = ssm.log_softmax(x, axis=1)
    with np.errstate(invalid="ignore"):
        want = scipy_special.log_softmax(x, axis=1)
    np.testing.assert_array_equal(got[:3], want[:3].astype(dtype))  # NaN where SciPy's are
    assert_log_softmax_contract(x[3:], got[3:], "ordinary row")


def test_chunked_rows_and_threads(isa, dtype, small_chunks, row_kernels):
    """Rows cut into chunks (partial sums and maxima combined across chunks)
    give the same bits for 1 and 2 threads, within the contract."""
    rng = np.random.default_rng(43)
    x = (rng.standard_normal((3, 1001)) * 4).astype(dtype)
    x[1, 600] = 40.0  # dominant entry in a later chunk: the exact path
    assert_log_softmax_contract(x, same_bits_on_1_and_2_threads(x, small_chunks), "chunked")


def test_float32_logsumexp_fallback_sum(isa, row_kernels):
    """float32 log-sum-exp within 1 ulp where its float32 sum cannot certify
    the result (|lse| small): the float64 fast sum, then the online pass."""
    rng = np.random.default_rng(47)
    for n in union_sizes(tiles(isa, np.float32)[k] for k in ("lanes", "expsum_fast", "expsum_lse")):
        for target in (-0.7, 1e-3, 0.3, 2.0, 7.5):
            x = rng.standard_normal((2, n))
            x -= ref_logsumexp(x, dtype=np.float64)[0][:, None] - target
            x = x.astype(np.float32)
            out = ssm.logsumexp(x, axis=1)
            assert_lse_close(out, ref_logsumexp(x, dtype=wide(np.float32))[0], f"n={n} target={target}")
