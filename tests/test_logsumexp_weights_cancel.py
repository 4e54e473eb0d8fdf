"""Weighted logsumexp whose weights cancel, on every kernel set, float32 and
float64, against mpmath at 200 bits.

With b of both signs, S = sum b exp(x - max) can be far smaller than the
magnitudes it is summed from: two equal entries with weights 1 and -1 at
the max leave the rest, e^-30 of the max's term, and two entries 1e-10
apart with weights 1 and -1 leave S = 1e-10 from terms of size 1. The
float64 sums keep an absolute error ~2^-53 times those magnitudes, and
log1p(S - 1) loses every digit of an S far below 1; the kernels must
recognize such rows (the magnitudes summed beside S) and sum them again in
double-double. Also weights that are all >= 0 but leave S far from the
max's own weight (small weights; 0.6 at the max, 0.4 from the others,
with lse near 0). Sums that cancel exactly give SciPy's result (-inf,
sign 0 where its own sum is 0).
Paths: short-row groups (batches of rows up to the group kernel's
kMaxN = 256), single rows (the row path, one chunk), rows split into chunks
on two threads, and a reduction over a non-last axis. Contract
(docs/design.md): float32 within 1 ulp of the rounded exact result;
float64 within 1e-14 relative plus 2^-49 |log |S|| absolute, and never
worse than 2^-26 relative.
"""

import functools

import mpmath
import numpy as np
import pytest
import scipy.special as sp

import simdsoftmax as ssm
from simdsoftmax import _core

# The group kernel's longest row, and lengths around its lanes' tails.
GROUP_LENGTHS = (2, 3, 5, 8, 9, 17, 64, 255, 256)
LONG_LENGTHS = (257, 1000, 4099)


def exact(x, b):
    """(log |S|, sign, log |S| - max) of S = sum b exp(x) at 200 bits; (None, 0, 0) for S = 0."""
    key = (np.asarray(x).tobytes(), np.asarray(b).tobytes(), np.asarray(x).dtype.char)
    if key not in _EXACT:
        _EXACT[key] = _exact(x, b)
    return _EXACT[key]


_EXACT = {}


def _exact(x, b):
    with mpmath.workprec(200):
        terms = [mpmath.mpf(float(w)) * mpmath.exp(mpmath.mpf(float(v))) for v, w in zip(x, b) if w != 0]
        s = mpmath.fsum(terms)
        if s == 0:
            return None, 0.0, 0.0
        top = max(float(v) for v, w in zip(x, b) if w != 0)
        rel = float(mpmath.log(abs(s)) - top)
        return mpmath.log(abs(s)), float(mpmath.sign(s)), rel


def assert_close(got, sign, x, b, dtype, where):
    e, e_sign, log_s = exact(x, b)
    if e is None:
        # SciPy's formula: -inf, sign 0 where its own sum is 0 (pairs w,
        # -w); where its products round (w/2, w/2, -w), what it gives.
        want, want_sign = sp.logsumexp(x, b=b, return_sign=True)
        assert (got, sign) == (want, want_sign) or (np.isnan(got) and np.isnan(want)), (where, got, sign, want)
        return
    assert sign == e_sign, (where, sign, e_sign)
    if dtype == np.float32:
        want = np.float32(float(e))
        ulps = abs(float(got) - float(want)) / float(np.spacing(abs(want)))
        assert ulps <= 1, (where, float(got), float(e), ulps)
    else:
        err = abs(mpmath.mpf(float(got)) - e)
        bound = 1e-14 * abs(e) + 2.0**-49 * abs(log_s)
        assert err <= bound and err <= 2.0**-26 * abs(e), (where, float(got), float(e), float(err / abs(e)))


def survivors(rng, n, target, dtype):
    """n entries with weights in [0.5, 1.5) (sign flipped with probability
    1/4) whose own log-sum-exp is about target."""
    x = rng.standard_normal(n)
    b = rng.uniform(0.5, 1.5, n) * np.where(rng.random(n) < 0.25, -1.0, 1.0)
    b[np.argmax(x)] = 1.0  # the survivors' total stays positive
    x = x.astype(dtype).astype(np.float64)
    b = b.astype(dtype).astype(np.float64)
    e, _, _ = exact(x, b)
    return (x - float(e) + target).astype(dtype), b.astype(dtype)


def cancel_row(rng, n, pos, kind, dtype):
    """A row of n >= 2 with a pair of cancelling terms at pos and the entry
    after it (wrapping), the other n - 2 entries the survivors.

    kind "exact": both at max + 30, weights w and -w (exactly 0 together);
    the survivors' lse near 0 (1e-3) or not (2.5).
    kind "close": the pair 16 float spacings apart at max + 30 (float32:
    max + 12), weights 1 and -1: S ~ 1e-12 (1e-5) of the pair's own terms.
    kind "zero": every term cancels exactly (pairs of equal entries)."""
    x = np.empty(n, dtype)
    b = np.empty(n, dtype)
    other = [i for i in range(n) if i not in (pos, (pos + 1) % n)]
    if kind == "zero":
        # Pairs of equal entries with weights w and -w; for odd n, the last
        # three equal with w/2, w/2 and -w.
        order = [pos, (pos + 1) % n] + other
        tail = 3 if n % 2 else 0
        for j in range(0, n - tail, 2):
            x[order[j]] = x[order[j + 1]] = rng.standard_normal()
            w = dtype(rng.uniform(0.5, 2.0))
            b[order[j]], b[order[j + 1]] = w, -w
        if tail:
            x[order[-3:]] = rng.standard_normal()
            w = dtype(rng.uniform(0.5, 2.0))
            b[order[-3:]] = (w / 2, w / 2, -w)
        return x, b
    target = 1e-3 if rng.random() < 0.5 else 2.5
    if other:
        xs, bs = survivors(rng, len(other), target, dtype)
        x[other], b[other] = xs, bs
        top = float(xs.max())
    else:
        top = 0.0
    if kind == "exact":
        big = dtype(top + 30.0)
        w = dtype(rng.uniform(0.5, 2.0))
        x[pos], x[(pos + 1) % n] = big, big
        b[pos], b[(pos + 1) % n] = w, -w
    else:
        # e^(big - top) 16 ulp(big) ~ 1: the pair's remainder is about the
        # survivors' size, out of terms ~1e12 (float64) or ~1e5 (float32)
        # times larger.
        big = dtype(top + (30.0 if dtype == np.float64 else 12.0))
        step = np.spacing(big) * 16
        x[pos], x[(pos + 1) % n] = big, dtype(big - step)
        b[pos], b[(pos + 1) % n] = 1, -1
    return x, b


def positions(n):
    return range(n) if n <= 9 else sorted({0, 1, n // 2, n - 2, n - 1})


@functools.lru_cache(maxsize=None)
def group_cases(dtype, kind):
    rng = np.random.default_rng(2026 + len(kind))
    out = {}
    for n in GROUP_LENGTHS:
        if kind == "exact" and n == 2:
            continue  # nothing survives: that is kind "zero"
        out[n] = [cancel_row(rng, n, p, kind, dtype) for p in positions(n)]
    return out


KINDS = ("exact", "close", "zero")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_short_rows(isa, dtype, kind):
    """Batches of rows up to the group kernel's 256 (each cancelling row among
    ordinary weighted ones, in every lane position), single rows, and the
    same rows as columns (axis=0), with and without return_sign."""
    rng = np.random.default_rng(7)
    for n, rows in group_cases(dtype, kind).items():
        xs = np.array([r[0] for r in rows])
        bs = np.array([r[1] for r in rows])
        # Ordinary rows around them: weights >= 0, every cancelling row in a
        # different lane of its group.
        filler_x = rng.standard_normal((len(rows) + 3, n)).astype(dtype)
        filler_b = rng.random((len(rows) + 3, n)).astype(dtype)
        x = np.concatenate([filler_x[:3], xs, filler_x[3:]])
        b = np.concatenate([filler_b[:3], bs, filler_b[3:]])
        res, sgn = ssm.logsumexp(x, axis=-1, b=b, return_sign=True)
        plain = ssm.logsumexp(x, axis=-1, b=b)
        col_res, col_sgn = ssm.logsumexp(np.ascontiguousarray(x.T), axis=0, b=np.ascontiguousarray(b.T),
                                         return_sign=True)
        for i in range(x.shape[0]):
            assert_close(res[i], sgn[i], x[i], b[i], dtype, f"batch n={n} row {i}")
            assert_close(col_res[i], col_sgn[i], x[i], b[i], dtype, f"columns n={n} row {i}")
            if sgn[i] > 0:
                assert plain[i] == res[i], (n, i)
            elif sgn[i] < 0:
                assert np.isnan(plain[i]), (n, i)
        for i, (xr, br) in enumerate(rows):
            got, s = ssm.logsumexp(xr, b=br, return_sign=True)
            assert_close(got, s, xr, br, dtype, f"row n={n} case {i}")


@functools.lru_cache(maxsize=None)
def long_cases(dtype):
    rng = np.random.default_rng(41)
    out = []
    for n in LONG_LENGTHS:
        for kind in KINDS:
            for p in (0, n // 3, n - 1):
                out.append(cancel_row(rng, n, p, kind, dtype))
    return out


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_long_rows(isa, dtype, threads, small_chunks):
    """Rows beyond the group kernel (the row path), cut into chunks of 37
    (small_chunks) and summed on one and two threads, as one batch and as
    single rows."""
    small_chunks(threads)
    cases = long_cases(dtype)
    for n in LONG_LENGTHS:
        rows = [c for c in cases if c[0].size == n]
        x = np.array([r[0] for r in rows])
        b = np.array([r[1] for r in rows])
        res, sgn = ssm.logsumexp(x, axis=-1, b=b, return_sign=True)
        for i, (xr, br) in enumerate(rows):
            assert_close(res[i], sgn[i], xr, br, dtype, f"batch n={n} row {i} threads={threads}")
            got, s = ssm.logsumexp(xr, b=br, return_sign=True)
            assert_close(got, s, xr, br, dtype, f"row n={n} row {i} threads={threads}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_small_and_uneven_weights(isa, dtype):
    """Weights all >= 0 whose sum S is far from the max's own weight: every
    weight 1e-6 (log1p(S - 1) would lose 6 digits), and a max of weight
    0.6 with the others adding ~0.4, shifted so that lse is within 1e-12 ..
    1e-3 of 0."""
    rng = np.random.default_rng(43)
    for n in (2, 3, 8, 17, 100, 300):
        rows = []
        for target in (1e-12, 1e-8, 1e-3):
            x = rng.standard_normal(n)
            b = np.full(n, 0.4 / max(n - 1, 1))
            b[np.argmax(x)] = 0.6
            x = np.where(np.arange(n) == np.argmax(x), 0.0, x - 3.0)  # the max's term dominates less
            x = x.astype(dtype).astype(np.float64)
            b = b.astype(dtype).astype(np.float64)
            e, _, _ = exact(x, b)
            rows.append(((x - float(e) + target).astype(dtype), b.astype(dtype)))
            xs = rng.standard_normal(n).astype(dtype)
            rows.append((xs, np.full(n, 1e-6, dtype)))
        x = np.array([r[0] for r in rows])
        b = np.array([r[1] for r in rows])
        res = ssm.logsumexp(x, axis=-1, b=b)
        for i, (xr, br) in enumerate(rows):
            assert_close(res[i], 1.0, xr, br, dtype, f"batch n={n} row {i}")
            assert_close(ssm.logsumexp(xr, b=br), 1.0, xr, br, dtype, f"row n={n} row {i}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_passes(isa, dtype):
    """The row path (_core.testing.lse_passes) sums a row whose weights
    cancel again (two passes or more), and an ordinary row with weights >= 0
    once."""
    rng = np.random.default_rng(47)
    for n in (3, 17, 1000):
        x, b = cancel_row(rng, n, n // 2, "exact", dtype)
        lse, passes, ok = _core.testing.lse_passes(x, b)
        assert ok and passes >= 2, (n, passes)
        assert_close(lse, exact(x, b)[1], x, b, dtype, f"row n={n}")
        xo = (rng.standard_normal(n) * 2).astype(dtype)
        bo = rng.random(n).astype(dtype)
        lse, passes, ok = _core.testing.lse_passes(xo, bo)
        assert ok and passes == 1, (n, passes)
