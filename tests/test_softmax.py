"""softmax: the row kernels of every algorithm on every kernel set this machine
can run, at sizes that cross every tail of every kernel's loop, against a
float64 (float32 data) or long double (float64 data) reference; then the
public function's algorithm= and its special values.

Kernel tests talk to simdsoftmax._core directly (2-D C-contiguous rows), so
that every algorithm of every kernel set runs without the Python layer's
conversions.
"""

import warnings

import numpy as np
import pytest
import scipy.special as sp

import simdsoftmax as ssm
from reference import (
    ALGORITHMS,
    F64_LSE_ATOL,
    F64_RTOL,
    assert_same_normal_values,
    assert_softmax_close,
    mp_softmax_and_lse,
    ref_logsumexp,
    ref_softmax,
    softmax_rtol,
    SPECIAL_ROWS,
    assert_like_scipy,
    random_logits,
    tol,
)
from simdsoftmax import _core
from tiles import row_sizes, sizes_for, tiles

# Every size up to 2 * 64 + 1 (AVX-512 float32: 4 accumulators x 16 lanes) on
# every kernel set, besides each kernel set's own tile-driven sizes.
FIXED_SIZES = list(range(1, 130))
LARGE_SIZES = [10**6 + 3]


def logits(rng, rows, n, dtype, scale=8.0):
    return (rng.standard_normal((rows, n)) * scale).astype(dtype)


def run_softmax(x, algorithm, out=None):
    y = np.empty_like(x) if out is None else out
    special = _core.softmax(x, y, algorithm)
    return y, special


def softmax_call(x, algorithm, out=None):
    """The API's entry (_core.softmax_call over the last axis): (y, special)."""
    r = _core.softmax_call(x, -1, out, algorithm)
    if isinstance(r, tuple):
        y, special, n = r
        assert n == x.shape[-1]
        return y, special
    return r, np.zeros(0, np.intp)


def every_row_size(isa, dtype):
    return sorted(set(row_sizes(isa, dtype)) | set(FIXED_SIZES))


# --------------------------------------------------------------------------
# Row kernels


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_softmax_every_tail(isa, dtype, algorithm):
    """Every tail of every row kernel: 1 .. 2*tile-1 and multiples, for the
    largest step of the set's kernels (the fast sums' block: AVX-512 float32
    256 elements), a masked logit in one row."""
    rng = np.random.default_rng(1)
    for n in [0] + every_row_size(isa, dtype):
        x = logits(rng, 3, n, dtype)
        if n > 2:
            x[1, rng.integers(n)] = -np.inf  # a masked logit
        y, special = run_softmax(x, algorithm)
        assert special.size == 0
        if n:
            assert_softmax_close(y, ref_softmax(x), f"n={n}")


def test_tile_sizes_cover_each_kernel(isa, dtype):
    """The sweep above crosses each row kernel's step: tile - 1, tile, tile + 1
    and 2 * tile - 1 are all among its sizes."""
    sizes = set(every_row_size(isa, dtype))
    t = tiles(isa, dtype)
    for name in ("expsum_fast", "expsum_store_pow2", "max_scan", "scale", "write_exp"):
        assert {t[name] - 1, t[name], t[name] + 1, 2 * t[name] - 1} <= sizes, name


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_softmax_large_rows(isa, dtype, algorithm):
    rng = np.random.default_rng(2)
    for n in LARGE_SIZES + [10**5]:
        x = logits(rng, 1, n, dtype)
        y, special = run_softmax(x, algorithm)
        assert special.size == 0
        assert_softmax_close(y, ref_softmax(x))
        assert abs(y.astype(np.float64).sum() - 1.0) < 1e-3


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize(
    "scale",
    [1e-38, 1e-20, 1e-3, 1.0, 50.0, 1e3, 1e5, 1e6, 3e6, 1e10, 1e20, 1e30, 3e38],
)
def test_softmax_whole_finite_range(isa, dtype, algorithm, scale):
    """Values across the whole finite range, incl. |x| above the fast
    reduction's 2^20 (the published two-pass kernels lose accuracy there)."""
    rng = np.random.default_rng(3)
    n = 777
    base = rng.standard_normal((4, n))
    x = np.clip(base * scale, -np.finfo(dtype).max, np.finfo(dtype).max).astype(dtype)
    # rows whose max is huge but whose top entries are close together, so the
    # softmax has several non-trivial outputs
    big = np.float64(min(scale, np.finfo(dtype).max / 4))
    x[2] = (big + np.arange(n) % 7 * np.spacing(dtype.type(big)) * 1).astype(dtype)
    x[3] = (-big + rng.integers(0, 40, n).astype(np.float64)).astype(dtype)
    x = np.clip(x, -np.finfo(dtype).max, np.finfo(dtype).max)
    y, special = run_softmax(x, algorithm)
    assert special.size == 0
    assert_softmax_close(y, ref_softmax(x))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_softmax_denormal_and_tiny_inputs(isa, dtype, algorithm):
    tiny = np.finfo(dtype).tiny
    x = np.array([[tiny / 8, tiny, -tiny / 4, 0.0, tiny * 3] * 13], dtype=dtype)
    y, special = run_softmax(x, algorithm)
    assert special.size == 0
    np.testing.assert_allclose(y, np.full_like(y, 1 / x.shape[1]), rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_softmax_masks_contribute_exact_zero(isa, dtype, algorithm):
    rng = np.random.default_rng(4)
    t = tiles(isa, dtype)
    for n in sorted({5, 64, 1000, t["expsum_fast"] + 1, 2 * t["expsum_fast"] - 1}):
        x = logits(rng, 2, n, dtype)
        mask = rng.random((2, n)) < 0.5
        mask[:, 0] = False
        x[mask] = -np.inf
        y, special = run_softmax(x, algorithm)
        assert special.size == 0
        assert np.all(y[mask] == 0)
        assert not np.isnan(y).any()
        assert_softmax_close(y, ref_softmax(x))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_softmax_special_rows_are_reported_and_untouched(isa, dtype, algorithm):
    x = np.array(
        [
            [1.0, np.nan, 2.0],
            [1.0, np.inf, 2.0],
            [-np.inf, -np.inf, -np.inf],
            [1.0, 2.0, 3.0],
            [np.nan, -np.inf, np.inf],
        ],
        dtype=dtype,
    )
    y = np.full_like(x, 7.0)
    special = run_softmax(x, algorithm, out=y)[1]
    assert special.tolist() == [0, 1, 2, 4]
    assert np.all(y[[0, 1, 2, 4]] == 7.0)
    assert_softmax_close(y[3:4], ref_softmax(x[3:4]))


@pytest.mark.parametrize("algorithm", ["two-pass", "three-pass-recompute", "three-pass-reload"])
def test_softmax_one_factor_write_range(isa, dtype, algorithm):
    """The write passes scale exp(x) by one power of two (write_passes.h,
    WriteExp): rows whose outputs run from 1 down through the subnormals to 0,
    the max at every position of a tile and around the row's end, and
    reload's guessed reference far below the max (terms up to the 2^100
    check), against the float64 / long double reference at every tail."""
    rng = np.random.default_rng(29)
    t = tiles(isa, dtype)
    tile = max(t["write_exp"], t["expsum_store_pow2"])
    binades = 160 if dtype == np.float32 else 1090
    span = binades * np.log(2.0)
    for n in sorted({tile - 1, tile, tile + 1, 2 * tile + 3, 1000}):
        rows = min(n, tile + 2)
        x = -rng.uniform(0.0, span, (rows, n))
        top = np.concatenate([np.arange(min(n, tile)), np.arange(max(0, n - 2), n)])[:rows]
        x[np.arange(rows), top] = 0.0
        x += rng.uniform(-60.0, 60.0, (rows, 1))
        # reload's sampled max up to ~69 below the max: terms near 2^100
        x[-1] = rng.uniform(-20.0, 0.0, n)
        x[-1, rng.integers(0, n)] = 69.0
        x = x.astype(dtype)
        y, special = run_softmax(x, algorithm)
        assert special.size == 0
        assert_softmax_close(y, ref_softmax(x), f"n={n}")
        if algorithm == "three-pass-reload":
            yg, special = softmax_call(x, algorithm)
            assert special.size == 0
            assert_same_normal_values(yg, y)
            assert_softmax_close(yg, ref_softmax(x), f"n={n} guessed")


@pytest.mark.parametrize("algorithm", ["three-pass-reload", "auto"])
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_reload_without_max_pass_every_tail(isa, dtype, algorithm, scale):
    """softmax_call lets three-pass-reload reference a sampled max: the same
    results as the max-pass path (_core.softmax), at every vector tail."""
    rng = np.random.default_rng(11)
    for n in every_row_size(isa, dtype) + [1000, 16384, 16385, 100003]:
        x = logits(rng, 3, n, dtype, scale)
        y, special = softmax_call(x, algorithm)
        assert special.size == 0
        assert_softmax_close(y, ref_softmax(x), f"n={n}")
        assert_same_normal_values(y, run_softmax(x, algorithm)[0])


def guess_breaking_rows(n, dtype):
    """Rows whose sampled max is far below the max (the pass stops early or its
    sum reaches 2^100), and special rows found only after blocks were written."""
    sampled = (n - 1) * np.arange(32) // 31
    far = np.zeros(n)
    far[1] = 200.0  # beyond float range above the guess: stops at the first block
    outlier = np.zeros(n)
    outlier[n - 2] = 80.0  # one term above 2^100, in the last block
    sum_over = np.full(n, 60.0)
    sum_over[sampled] = 0.0  # every term 2^86.6, each block fine, the sum above 2^100
    rising = np.linspace(-50.0, 150.0, n)
    rising[sampled] = -50.0
    nan_end, inf_end = np.zeros(n), np.zeros(n)
    nan_end[-1], inf_end[-1] = np.nan, np.inf
    masked = np.full(n, -np.inf)
    masked[n // 3] = 1.0
    all_masked = np.full(n, -np.inf)
    rows = [far, outlier, sum_over, rising, nan_end, inf_end, masked, all_masked, np.zeros(n)]
    return np.array(rows, dtype)


@pytest.mark.parametrize("n", [200, 16384, 16401])
def test_reload_without_max_pass_falls_back(isa, dtype, n):
    x = guess_breaking_rows(n, dtype)
    expected, expected_special = run_softmax(x, "three-pass-reload")
    for out in (None, np.full_like(x, 7.0)):
        y, special = softmax_call(x, "three-pass-reload", out)
        assert out is None or y is out
        assert special.tolist() == expected_special.tolist() == [4, 5, 7]
        ok = np.setdiff1d(np.arange(len(x)), special)
        assert_same_normal_values(y[ok], expected[ok])
        assert_softmax_close(y[ok], ref_softmax(x[ok]))
    # in place: the max pass first, special rows untouched
    x_copy = x.copy()
    y, special = softmax_call(x_copy, "three-pass-reload", x_copy)
    assert y is x_copy and special.tolist() == [4, 5, 7]
    np.testing.assert_array_equal(x_copy[special], x[special])
    np.testing.assert_array_equal(x_copy[ok], expected[ok])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_softmax_in_place(isa, dtype, algorithm):
    rng = np.random.default_rng(5)
    x = logits(rng, 3, 1001, dtype)
    ref = ref_softmax(x)
    y, special = run_softmax(x, algorithm, out=x)
    assert y is x and special.size == 0
    assert_softmax_close(x, ref)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_no_access_outside_the_row(isa, dtype, algorithm):
    """NaN sentinels just outside the input would make a row special if any
    lane read them; the output's sentinels must survive the masked stores."""
    rng = np.random.default_rng(6)
    pad = 64
    sizes = {1, 3, 15, 17, 31, 33, 63, 65, 127, 129}
    for name in ("expsum_fast", "expsum_store_pow2", "max_scan", "write_exp"):
        t = tiles(isa, dtype)[name]
        sizes |= {t - 1, t + 1, 2 * t - 1} - {0}
    for n in sorted(sizes):
        xbuf = np.full(n + 2 * pad, np.nan, dtype=dtype)
        xbuf[pad : pad + n] = logits(rng, 1, n, dtype)[0]
        ybuf = np.full(n + 2 * pad, 1234.0, dtype=dtype)
        x = xbuf[pad : pad + n].reshape(1, n)
        y = ybuf[pad : pad + n].reshape(1, n)
        special = _core.softmax(x, y, algorithm)
        assert special.size == 0
        assert np.all(ybuf[:pad] == 1234.0) and np.all(ybuf[pad + n :] == 1234.0)
        assert_softmax_close(y, ref_softmax(x))


def test_algorithms_agree(isa, dtype):
    """Every algorithm within twice the bound of two-pass's result."""
    rng = np.random.default_rng(7)
    x = logits(rng, 4, 3001, dtype, scale=20.0)
    base = run_softmax(x, "two-pass")[0]
    bound = 2 * softmax_rtol(dtype)
    big = ref_softmax(x) > np.finfo(dtype).tiny
    for a in ALGORITHMS:
        y = run_softmax(x, a)[0]
        rel = np.abs(y[big].astype(np.float64) - base[big]) / base[big]
        assert rel.max() <= bound, a


def test_shift_invariance(isa, dtype):
    """softmax(x + c) == softmax(x) for shifts c that keep x + c exact."""
    rng = np.random.default_rng(8)
    x = (rng.integers(-400, 400, (2, 513)) / 8).astype(dtype)
    for c in (2.0**10, -(2.0**12), 2.0**15):
        for a in ALGORITHMS:
            y0 = run_softmax(x, a)[0]
            y1 = run_softmax((x + c).astype(dtype), a)[0]
            assert_softmax_close(y1, ref_softmax(x))
            assert_softmax_close(y0, ref_softmax(x))


@pytest.mark.parametrize("offset", [-1.0e6, -1.0e5, -700.0, 650.0, 3.0e4, 1.0e6])
def test_float64_sums_of_equal_terms_far_from_zero(isa, offset):
    """float64 sums whose terms all sit far from 2^0 and close to each other.

    The AVX-512 float64 fast sums reduce exp's argument with one fma, which
    leaves every term a factor exp(n * ln2_lo), n ~ x log2 e (3e-12 relative
    at x = 1e5); each lane sum is taken back by exp(-c ln2_lo) at its own
    magnitude c, leaving at most (log2(terms per lane) + 1.1) ln2_lo. Many
    terms of equal size in a lane is the worst case of that remainder. Rows
    of 2^18 elements (one call, 2^15 terms per lane) and 2^20 + 3 (chunked).
    """
    rng = np.random.default_rng(31)
    for n in (2**18, 2**20 + 3):
        x = offset + rng.uniform(-0.5, 0.5, (1, n))
        for algorithm in ("two-pass", "three-pass-recompute", "auto"):
            y, special = run_softmax(x, algorithm)
            assert special.size == 0
            assert_softmax_close(y, ref_softmax(x))
        out = np.empty(1)
        assert _core.logsumexp(x, out).size == 0
        np.testing.assert_allclose(out, ref_logsumexp(x)[0].astype(np.float64), rtol=F64_RTOL, atol=F64_LSE_ATOL)


F64_EDGE_ROWS = [
    [1e300, np.nextafter(1e300, 0), np.nextafter(np.nextafter(1e300, 0), 0), -1e300],
    [-1e300, np.nextafter(-1e300, 0), -1e300, -np.inf],
    [709.0, 708.5, -745.0, 0.0],
    [-745.1, -745.2, -800.0, -1e5],
    [2.0**30, 2.0**30 - 1.5, 2.0**30 - 30.0, 2.0**30 + 0.25],
    [1e-310, -1e-310, 5e-324, 0.0],
    [0.1, 0.1 + 2**-55, 0.1 - 2**-56, -0.2],
    [np.finfo(np.float64).max, np.finfo(np.float64).max, -np.finfo(np.float64).max],
    [35.0, -35.0, 0.0, 1e-17, -1e-17],
]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("row", F64_EDGE_ROWS, ids=range(len(F64_EDGE_ROWS)))
def test_float64_edge_cases_against_mpmath(isa, algorithm, row):
    x = np.array([row], np.float64)
    ref_p, ref_lse = mp_softmax_and_lse(row)
    y, special = run_softmax(x, algorithm)
    assert special.size == 0
    ref_p = np.array(ref_p)
    big = ref_p > np.finfo(np.float64).tiny
    np.testing.assert_allclose(y[0][big], ref_p[big], rtol=F64_RTOL, atol=0)
    assert np.all(np.abs(y[0][~big]) <= 2 * np.finfo(np.float64).tiny)
    out = np.empty(1)
    assert _core.logsumexp(x, out).size == 0
    np.testing.assert_allclose(out[0], ref_lse, rtol=F64_RTOL, atol=F64_LSE_ATOL)


# --------------------------------------------------------------------------
# The fast sums (pass 1 of two-pass) and their tuning variants


def test_tuning_variants_agree(isa, dtype):
    x = (np.random.default_rng(11).standard_normal(5000) * 6).astype(dtype)
    sums = []
    for v in range(6):
        name, m, e = _core.testing.tune_expsum(x, v)
        sums.append(m * 2.0**e)
    np.testing.assert_allclose(sums, sums[0], rtol=1e-6 if dtype == np.float32 else 1e-14)


def test_tuning_variants_every_tail(isa, dtype):
    """Each (unroll, block) variant of the fast sum at every tail of its block,
    against the exact sum of exp(x): float32 within 16 float32 eps (the exp
    and the blocked float32 sum measure about 2 here), float64 within 1e-14."""
    rng = np.random.default_rng(12)
    t = tiles(isa, dtype)
    rtol = 16 * np.finfo(np.float32).eps if dtype == np.float32 else F64_RTOL
    sizes = sizes_for(max(t[k] for k in t if k.startswith("expsum_fast.")))
    for v in range(6):
        for n in sizes:
            x = (rng.standard_normal(n) * 4).astype(dtype)
            name, m, e = _core.testing.tune_expsum(x, v)
            exact = np.exp(x.astype(np.longdouble)).sum()
            assert abs(np.longdouble(m) * np.longdouble(2.0) ** int(e) / exact - 1) <= rtol, (name, n)


# --------------------------------------------------------------------------
# The public function: algorithm= and special values


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_special_rows_every_algorithm(isa, dtype, algorithm):
    x = np.array(SPECIAL_ROWS, dtype)
    assert_like_scipy(ssm.softmax(x, axis=1, algorithm=algorithm), sp.softmax(x, axis=1), **tol("softmax", dtype))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_masked_logits_are_exactly_zero(isa, dtype, algorithm):
    x = random_logits((5, 37), dtype)
    x[:, ::3] = -np.inf
    x[2, :] = -np.inf
    x[2, 4] = 0.5  # a single live entry
    y = ssm.softmax(x, axis=1, algorithm=algorithm)
    assert np.all(y[x == -np.inf] == 0)
    assert np.all(np.isfinite(y))
    assert abs(y[2, 4] - 1) <= 4 * np.finfo(dtype).eps  # (float32 two-pass: 1 ULP low on AVX)
    np.testing.assert_allclose(y, ref_softmax(x, axis=1, dtype=np.longdouble).astype(dtype), **tol("softmax", dtype))
    ly = ssm.log_softmax(x, axis=1)
    assert np.all(ly[x == -np.inf] == -np.inf)
    assert not np.any(np.isnan(ly))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("n", [1, 7, 16, 33, 1000])
def test_algorithms(isa, dtype, algorithm, n):
    x = random_logits((3, n), dtype, seed=n)
    y = ssm.softmax(x, axis=1, algorithm=algorithm)
    np.testing.assert_allclose(y, ref_softmax(x, axis=1, dtype=np.longdouble).astype(dtype), **tol("softmax", dtype))


@pytest.mark.parametrize("algorithm", ["fast", "", "Two-Pass", None, 2])
def test_bad_algorithm(algorithm):
    with pytest.raises(ValueError, match="algorithm") as info:
        ssm.softmax([1.0, 2.0], algorithm=algorithm)
    for name in ALGORITHMS:
        assert repr(name) in str(info.value)


def test_bad_algorithm_is_checked_first():
    out = np.zeros(0)
    with pytest.raises(ValueError, match="algorithm"):
        ssm.softmax(np.zeros(0), out=out, algorithm="nope")


def test_no_warnings_for_finite_input_any_algorithm(isa, dtype):
    x = (np.random.default_rng(13).standard_normal((4, 50)) * 100).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for algorithm in ALGORITHMS:
            ssm.softmax(x, axis=1, algorithm=algorithm)

