"""float32 logsumexp certified from its one fast pass: the float32 exp-sum
adds its blocks in float64 lanes, and its error bound (~6-7 * 2^-24
relative, kernels/expsum_fast.h) proves 1 ulp for every |lse| >= 4 with no
second pass over the row. On every kernel set, at row lengths that cross
every tail of the log-sum-exp passes: results within 1 ulp of a long double
reference for lse in and around [4, 8), [-8, -4], near 0, large, and rows
one entry dominates; and ordinary rows with |lse| >= 4 read once
(_core.testing.lse_passes counts the passes of the row path)."""

import numpy as np
import pytest

import simdsoftmax as ssm
from reference import assert_lse_close, ref_logsumexp
from simdsoftmax import _core
from tiles import lse_sizes

F32 = np.float32


def row_with_lse(rng, n, target, spread=1.0, dominant=None):
    """A float32 row of `n` logits whose log-sum-exp is about `target`:
    normal logits (standard deviation `spread`), shifted; `dominant`: the
    first entry lies that far above the others' log-sum-exp."""
    x = rng.standard_normal(n) * spread
    if dominant is not None and n > 1:
        rest = np.logaddexp.reduce(x[1:])
        x[0] = rest + dominant
    x += target - np.logaddexp.reduce(x)
    return x.astype(F32)


def ref32(x):
    """The long double log-sum-exp of a row."""
    return ref_logsumexp(x[None, :], dtype=np.longdouble)[0][0]


def check_rows(rows, where):
    """Each row's certified result is within 1 ulp of the reference, matches
    the public function bit for bit, and -> its pass counts."""
    passes = []
    for x in rows:
        lse, p, ok = _core.testing.lse_passes(x)
        assert ok, where
        out = np.array([lse], F32)
        assert_lse_close(out, [ref32(x)], f"{where} n={x.size}")
        assert ssm.logsumexp(x) == out[0], f"{where} n={x.size}"
        passes.append(p)
    return np.array(passes)


def off_four(x, lse):
    """Results that round to +-4 have a lower neighbour only 2^-22 away, which
    the fast bound cannot always clear: such rows may take a second pass."""
    return abs(F32(lse)) != 4


BANDS = {
    "[4,8)": (4.0, 8.0),
    "[-8,-4]": (-8.0, -4.0),
    "around 4": (3.5, 4.5),
    "around -4": (-4.5, -3.5),
    "near 0": (-0.05, 0.05),
    "(-4,4)": (-4.0, 4.0),
    "large": (8.0, 2000.0),
    "large negative": (-2000.0, -8.0),
}


@pytest.mark.parametrize("band", list(BANDS))
def test_float32_lse_one_ulp_every_tail(isa, band):
    """1 ulp at every row length that crosses a tail of the fast sums; rows
    with |lse| >= 4 (and not rounding to +-4) in one pass."""
    lo, hi = BANDS[band]
    rng = np.random.default_rng(list(BANDS).index(band))
    sizes = lse_sizes(isa, F32)
    rows = [row_with_lse(rng, n, rng.uniform(lo, hi), spread=rng.choice([0.1, 1.0, 3.0])) for n in sizes]
    passes = check_rows(rows, band)
    lses = np.array([ref32(x) for x in rows], dtype=np.float64)
    one = (np.abs(lses) >= 4.0) & (np.abs(lses.astype(F32)) != 4)
    assert np.all(passes[one] == 1), (band, np.array(sizes)[one][passes[one] != 1])
    assert np.all(passes <= 3)


@pytest.mark.parametrize("n", [97, 100, 256, 1000, 4096, 10**5 + 3])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_float32_ordinary_rows_take_one_pass(isa, n, sign):
    """Ordinary logits (normal, any offset) with |lse| >= 4: one pass, 1 ulp."""
    rng = np.random.default_rng(n + int(sign > 0))
    rows = [row_with_lse(rng, n, sign * t, spread=s) for t in (4.001, 5.0, 7.99, 8.0, 30.0, 1e4) for s in (0.5, 2.0)]
    passes = check_rows(rows, f"n={n}")
    assert np.all(passes == 1), passes


@pytest.mark.parametrize("dominant", [1e-3, 2.0, 9.0, 17.0, 40.0])
def test_float32_dominated_rows(isa, dominant):
    """One entry far above the others' log-sum-exp (lse - max down to
    ~4e-18): 1 ulp, and one pass when |lse| >= 4."""
    rng = np.random.default_rng(int(dominant * 7))
    sizes = [1, 2, 3, 17, 65, 129, 257, 513, 4099]
    rows = [row_with_lse(rng, n, t, dominant=dominant) for n in sizes for t in (-6.0, -0.3, 0.02, 4.5, 6.0, 300.0)]
    passes = check_rows(rows, f"dominant={dominant}")
    lses = np.array([ref32(x) for x in rows], dtype=np.float64)
    one = (np.abs(lses) >= 4.0) & (np.abs(lses.astype(F32)) != 4)
    assert np.all(passes[one] == 1)


def test_float32_long_chunked_row_one_pass(isa):
    """A row cut into chunks (partials combined in chunk order): the bound
    of each chunk's sum still certifies |lse| >= 4 in one pass."""
    rng = np.random.default_rng(5)
    n = (1 << 18) + (1 << 16) + 7
    rows = [row_with_lse(rng, n, t) for t in (-5.0, 4.25, 6.5, 100.0)]
    passes = check_rows(rows, "chunked")
    assert np.all(passes == 1)


def test_small_lse_still_certified_or_recomputed(isa):
    """|lse| < 4: the float32 sum may not certify; the float64 sum or the
    online pass then gives 1 ulp (at most three passes, never more). Not
    closer to 0 than ~1e-6: within ~1e-9 of 0 the float64 sum's own rounding
    (~2^-53 absolute) is more than an ulp of the result, on any path."""
    rng = np.random.default_rng(11)
    rows = [row_with_lse(rng, n, t) for n in (5, 96, 97, 1000, 5000) for t in (-3.9, -1.0, -1e-4, 1e-6, 0.7, 3.99)]
    passes = check_rows(rows, "small")
    assert np.all((passes >= 1) & (passes <= 3))


def test_float64_rows_through_the_hook(isa):
    """The hook also takes float64 rows (1e-14 relative)."""
    rng = np.random.default_rng(3)
    for n in (1, 7, 100, 4096):
        x = rng.standard_normal(n) * 3.0 + 10.0
        lse, passes, ok = _core.testing.lse_passes(x)
        assert ok and 1 <= passes <= 2
        assert_lse_close(np.array([lse]), ref_logsumexp(x[None, :])[0])


def test_hook_reports_special_rows(isa):
    """A NaN row is no ordinary result (ok False), after the passes it took."""
    x = np.array([1.0, np.nan, 2.0], F32)
    lse, passes, ok = _core.testing.lse_passes(x)
    assert not ok and passes >= 1
    with pytest.raises(ValueError):
        _core.testing.lse_passes(np.zeros((2, 2), F32))
