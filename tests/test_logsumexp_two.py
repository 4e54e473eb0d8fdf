"""float32 logsumexp of rows of two entries (rows_generic.h lse_rows_two on
AVX2, rows_logsumexp32_two_avx512.h's table exp and log on AVX-512: the
kernel sets that split a vector pair into first and second entries; the
others take their group kernels): lse = m + log1p(exp(d)) in float64
lanes, each row certified within the 1-ulp
contract or left to the per-row path (lse near 0, NaN, +-inf). Row counts
around multiples of the lane count (the batch's last rows go through the
group kernels), entries from ties to 700 apart and beyond, results near 0,
huge and tiny magnitudes, special entries at every position; against the
long double reference, on every kernel set this machine runs.
"""
import numpy as np
import pytest
from scipy import special

import simdsoftmax as ssm
from simdsoftmax import _core
from reference import assert_lse_close


def lanes(isa):
    return _core.testing.tiles(isa, "float32")["lanes"]


def ref_two(x):
    """m + log1p(exp(d)) in long double: where lse is near 0 with the other
    entry far below (m ~ -1e-8, d ~ -17), reference.py's max + log(sum)
    loses 1 + exp(d)'s low bits; this form keeps them."""
    xl = x.astype(np.longdouble)
    m, low = xl.max(axis=1), xl.min(axis=1)
    with np.errstate(invalid="ignore", over="ignore"):
        return m + np.log1p(np.exp(low - m))


def check(x, where):
    out, sign = ssm.logsumexp(x, axis=1, return_sign=True)
    assert out.tobytes() == ssm.logsumexp(x, axis=1).tobytes(), where
    ref = ref_two(x)
    finite = np.isfinite(ref) & np.all(np.isfinite(x), axis=1)
    assert np.all(sign[finite] == 1.0), where
    assert_lse_close(out[finite], ref[finite], where)
    return out


def pairs(rng, rows):
    """Rows of two of many kinds: spreads from ties to beyond 700, offsets
    from 0 to 1e30, results near 0 (m in [-ln 2, 0] with the other entry
    placed so that lse ~ 0), subnormals and -0."""
    m = rng.standard_normal(rows) * np.geomspace(1e-3, 1e4, rows)
    d = -np.abs(rng.standard_normal(rows)) * rng.choice([1e-6, 0.1, 1.0, 10.0, 90.0, 800.0], rows)
    x = np.stack([m, m + d], axis=1)
    k = rows // 5
    # lse = 0 exactly where m = -log1p(exp(d)): m rounded to float32 leaves
    # |lse| from ~2^-24 down to 0.
    dd = -rng.uniform(0.0, 20.0, k)
    x[:k, 1] = dd - np.log1p(np.exp(dd))
    x[:k, 0] = -np.log1p(np.exp(dd))
    x[k:2 * k] *= rng.choice([1e-30, 1e-40, 1e20, 1e30], (k, 1))
    fixed = np.array([[0.0, -0.0], [-0.0, -0.0], [1e-45, -1e-45], [3.0e38, 3.0e38]])
    c = min(4, rows - 2 * k)
    x[2 * k:2 * k + c] = fixed[:c]
    flip = rng.random(rows) < 0.5
    x[flip] = x[flip][:, ::-1]
    return x.astype(np.float32)


def test_every_row_count_and_kind(isa):
    w = lanes(isa)
    rng = np.random.default_rng(2)
    for rows in sorted({2, w - 1, w, w + 1, 2 * w, 3 * w + 5, 64 * w + 3, 5000}):
        if rows < 2:
            continue
        x = pairs(rng, rows)
        got = check(x, (isa, rows))
        # A row's bits do not depend on where it sits in the batch (the
        # batch's last rows included) or on the rows beside it.
        perm = rng.permutation(rows)
        assert check(x[perm], (isa, rows, "permuted")).tobytes() == got[perm].tobytes()


def special_entries(isa, value, seed, fn):
    """fn (a batch function) on rows of two with `value` put at each entry
    in turn: the other rows' results keep their bits; yields (where, the
    row, fn's result for it)."""
    rng = np.random.default_rng(seed)
    rows = 3 * lanes(isa) + 3
    base = pairs(rng, rows)
    plain = fn(base)
    for r in range(rows):
        for c in range(2):
            x = base.copy()
            x[r, c] = value
            got = fn(x)
            others = np.arange(rows) != r
            assert got[others].tobytes() == plain[others].tobytes(), (isa, r, c)
            yield (isa, r, c), x[r:r + 1], got[r:r + 1]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_special_entry_at_every_position(isa, value):
    for where, row, got in special_entries(isa, value, 3, lambda x: ssm.logsumexp(x, axis=1)):
        want = special.logsumexp(row[0].astype(np.float64)).astype(np.float32)
        np.testing.assert_array_equal(got[0], want, err_msg=str(where))


def test_near_zero_rows_in_every_lane(isa, restore_settings):
    """Rows whose lse is near 0 (left to the per-row path) in every lane of a
    step, with ordinary rows around them; 1 and 2 threads, the same bits."""
    w = lanes(isa)
    rng = np.random.default_rng(4)
    rows = 8 * w
    x = pairs(rng, rows)
    dd = -rng.uniform(0.0, 5.0, w)
    at = np.arange(w) * 9 % rows
    x[at, 0] = -np.log1p(np.exp(dd))
    x[at, 1] = dd - np.log1p(np.exp(dd))
    ssm.set_num_threads(1)
    one = check(x, (isa, "1 thread"))
    ssm.set_num_threads(2)
    _core.testing.set_chunking(w * 2, 1 << 20)
    assert check(x, (isa, "2 threads")).tobytes() == one.tobytes()


def test_either_side_of_the_certified_range(isa):
    """Rows whose |lse| lies on either side of 2^-16, where the AVX-512 pair
    kernel (rows_logsumexp32_two_avx512.h) stops certifying and leaves the
    row to the per-row path, and around 2^-24 and 1, with spreads d from 0
    to beyond the clamp at -708 and rows of -FLT_MAX beside -inf: within 1
    ulp, the same bits in any order."""
    rng = np.random.default_rng(6)
    rows = 40 * lanes(isa) + 3
    target = rng.choice([1.0, -1.0], rows) * rng.choice([2.0**-16, 2.0**-24, 1.0], rows)
    target *= rng.uniform(0.5, 2.0, rows)
    d = -rng.choice([0.0, 1e-3, 0.5, 3.0, 17.0, 90.0, 720.0], rows) * rng.uniform(0.5, 1.0, rows)
    m = target - np.log1p(np.exp(d))
    x = np.stack([m, m + d], axis=1).astype(np.float32)
    x[-1] = [-np.finfo(np.float32).max, -np.inf]
    x[-2] = [-np.inf, -np.finfo(np.float32).max]
    flip = rng.random(rows) < 0.5
    x[flip] = x[flip][:, ::-1]
    got = check(x, (isa, "certified range"))
    fmax = -np.finfo(np.float32).max
    assert got[-1] == fmax and got[-2] == fmax
    perm = rng.permutation(rows)
    assert check(x[perm], (isa, "certified range, permuted")).tobytes() == got[perm].tobytes()
