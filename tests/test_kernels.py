"""Kernel accuracy and safety, on every kernel set this machine can run.

Talks to simdsoftmax._core directly (2-D C-contiguous rows) so that every
algorithm of every kernel set is exercised without the Python layer's
conversions. References are independent: float64 for float32 data (the
"exact result computed in float64 from the same inputs") and NumPy longdouble
(80-bit on x86) for float64 data.
"""
import numpy as np
import pytest

from simdsoftmax import _core

ALGORITHMS = ["two-pass", "three-pass-recompute", "three-pass-reload", "online", "auto"]
# Widest unroll: 4 accumulators x 16 float32 lanes (AVX-512). Every size up to
# 2*64+1 crosses every vector tail and every unroll remainder.
WIDEST_UNROLL = 64
SMALL_SIZES = list(range(1, 2 * WIDEST_UNROLL + 2))
LARGE_SIZES = [10**6 + 3]
F32_SOFTMAX_ULP = 4  # relative error <= 4 * 2^-23 (SPEC section 2)
F64_RTOL = 1e-14
F64_LSE_ATOL = 2 * 2.0**-52
# Measured maxima of the kernels' exp over normal results, rounded up: float32
# by the exhaustive sweep (tools/exp_ulp_sweep.py), float64 over 10^8 samples.
EXP_MAX_ULP = {"float32": 1.1, "float64": 1.25}


@pytest.fixture(params=_core.supported_isas(), ids=lambda s: f"isa={s}")
def kernel_isa(request):
    previous = _core.get_isa()
    _core.set_isa(request.param)
    assert _core.get_isa() == request.param
    yield request.param
    _core.set_isa(previous)


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


def wide(dtype):
    return np.float64 if dtype == np.float32 else np.longdouble


def ref_softmax(x):
    xw = x.astype(wide(x.dtype))
    mx = xw.max(axis=-1, keepdims=True)
    e = np.exp(xw - mx)
    return e / e.sum(axis=-1, keepdims=True)


def ref_logsumexp(x, b=None):
    xw = x.astype(wide(x.dtype))
    if b is None:
        mx = xw.max(axis=-1)
        return mx + np.log(np.exp(xw - mx[:, None]).sum(axis=-1))
    bw = b.astype(wide(x.dtype))
    mx = np.where(bw != 0, xw, -np.inf).max(axis=-1)
    with np.errstate(invalid="ignore"):  # 0 * exp(+inf) for zero weights: NaN, as intended
        s = (bw * np.exp(xw - mx[:, None])).sum(axis=-1)
    return mx + np.log(np.abs(s)), np.sign(s)


def assert_softmax_close(y, ref):
    """The accuracy contract: float32 <= 4 ulp relative for outputs above the
    smallest normal; float64 <= 1e-14 relative."""
    dt = y.dtype
    tiny = np.finfo(dt).tiny
    big = ref > tiny
    rel = np.abs(y[big].astype(ref.dtype) - ref[big]) / ref[big]
    bound = F32_SOFTMAX_ULP * 2.0**-23 if dt == np.float32 else F64_RTOL
    assert rel.size == 0 or rel.max() <= bound, f"max relative error {rel.max():.3g} > {bound:.3g}"
    # below the smallest normal: the absolute error stays below it too
    assert np.all(np.abs(y[~big].astype(ref.dtype) - ref[~big]) <= 2 * tiny)


def run_softmax(x, algorithm, out=None):
    y = np.empty_like(x) if out is None else out
    special = _core.softmax(x, y, algorithm)
    return y, special


def logits(rng, rows, n, dtype, scale=8.0):
    return (rng.standard_normal((rows, n)) * scale).astype(dtype)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_softmax_every_tail(kernel_isa, dtype, algorithm):
    rng = np.random.default_rng(1)
    for n in [0] + SMALL_SIZES:
        x = logits(rng, 3, n, dtype)
        if n > 2:
            x[1, rng.integers(n)] = -np.inf  # a masked logit
        y, special = run_softmax(x, algorithm)
        assert special.size == 0
        if n:
            assert_softmax_close(y, ref_softmax(x))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_softmax_large_rows(kernel_isa, dtype, algorithm):
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
def test_softmax_whole_finite_range(kernel_isa, dtype, algorithm, scale):
    """Values across the whole finite range, incl. |x| above the fast
    reduction's 2^20 (the published two-pass kernels lose accuracy there)."""
    rng = np.random.default_rng(3)
    n = 777
    base = rng.standard_normal((4, n))
    x = np.clip(base * scale, -np.finfo(dtype).max, np.finfo(dtype).max).astype(dtype)
    # rows whose max is huge but whose top entries are close together, so the
    # softmax has several non-trivial outputs
    big = np.float64(min(scale, np.finfo(dtype).max / 4))
    x[2] = (big + np.arange(n) % 7 * np.spacing(dtype(big)) * 1).astype(dtype)
    x[3] = (-big + rng.integers(0, 40, n).astype(np.float64)).astype(dtype)
    x = np.clip(x, -np.finfo(dtype).max, np.finfo(dtype).max)
    y, special = run_softmax(x, algorithm)
    assert special.size == 0
    assert_softmax_close(y, ref_softmax(x))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_softmax_denormal_and_tiny_inputs(kernel_isa, dtype, algorithm):
    tiny = np.finfo(dtype).tiny
    x = np.array([[tiny / 8, tiny, -tiny / 4, 0.0, tiny * 3] * 13], dtype=dtype)
    y, special = run_softmax(x, algorithm)
    assert special.size == 0
    np.testing.assert_allclose(y, np.full_like(y, 1 / x.shape[1]), rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_softmax_masks_contribute_exact_zero(kernel_isa, dtype, algorithm):
    rng = np.random.default_rng(4)
    for n in (5, 64, 1000):
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
def test_softmax_special_rows_are_reported_and_untouched(kernel_isa, dtype, algorithm):
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


def softmax_call(x, algorithm, out=None):
    """The API's entry (_core.softmax_call over the last axis): (y, special)."""
    r = _core.softmax_call(x, -1, out, algorithm)
    if isinstance(r, tuple):
        y, special, n = r
        assert n == x.shape[-1]
        return y, special
    return r, np.zeros(0, np.intp)


def assert_same_normal_values(y, expected):
    """Equal bits wherever the result is a normal number; below it (where the
    max-pass path rounds twice into subnormals) within the smallest normal."""
    tiny = np.finfo(y.dtype).tiny
    normal = np.abs(expected) >= 2 * tiny
    np.testing.assert_array_equal(y[normal], expected[normal])
    assert np.all(np.abs(y[~normal] - expected[~normal]) <= tiny)


@pytest.mark.parametrize("algorithm", ["three-pass-reload", "auto"])
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_reload_without_max_pass_every_tail(kernel_isa, dtype, algorithm, scale):
    """softmax_call lets three-pass-reload reference a sampled max: the same
    results as the max-pass path (_core.softmax), at every vector tail."""
    rng = np.random.default_rng(11)
    for n in SMALL_SIZES + [1000, 16384, 16385, 100003]:
        x = logits(rng, 3, n, dtype, scale)
        y, special = softmax_call(x, algorithm)
        assert special.size == 0
        assert_softmax_close(y, ref_softmax(x))
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
def test_reload_without_max_pass_falls_back(kernel_isa, dtype, n):
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
def test_softmax_in_place(kernel_isa, dtype, algorithm):
    rng = np.random.default_rng(5)
    x = logits(rng, 3, 1001, dtype)
    ref = ref_softmax(x)
    y, special = run_softmax(x, algorithm, out=x)
    assert y is x and special.size == 0
    assert_softmax_close(x, ref)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_no_access_outside_the_row(kernel_isa, dtype, algorithm):
    """NaN sentinels just outside the input would make a row special if any
    lane read them; the output's sentinels must survive the masked stores."""
    rng = np.random.default_rng(6)
    pad = 64
    for n in (1, 3, 15, 17, 31, 33, 63, 65, 127, 129):
        xbuf = np.full(n + 2 * pad, np.nan, dtype=dtype)
        xbuf[pad : pad + n] = logits(rng, 1, n, dtype)[0]
        ybuf = np.full(n + 2 * pad, 1234.0, dtype=dtype)
        x = xbuf[pad : pad + n].reshape(1, n)
        y = ybuf[pad : pad + n].reshape(1, n)
        special = _core.softmax(x, y, algorithm)
        assert special.size == 0
        assert np.all(ybuf[:pad] == 1234.0) and np.all(ybuf[pad + n :] == 1234.0)
        assert_softmax_close(y, ref_softmax(x))


def test_algorithms_agree(kernel_isa, dtype):
    rng = np.random.default_rng(7)
    x = logits(rng, 4, 3001, dtype, scale=20.0)
    outs = [run_softmax(x, a)[0] for a in ALGORITHMS]
    ref = ref_softmax(x)
    bound = 2 * F32_SOFTMAX_ULP * 2.0**-23 if dtype == np.float32 else 2 * F64_RTOL
    for y in outs[1:]:
        big = ref > np.finfo(dtype).tiny
        rel = np.abs(y[big].astype(np.float64) - outs[0][big]) / outs[0][big]
        assert rel.max() <= bound


def test_shift_invariance(kernel_isa, dtype):
    """softmax(x + c) == softmax(x) for shifts c that keep x + c exact."""
    rng = np.random.default_rng(8)
    x = (rng.integers(-400, 400, (2, 513)) / 8).astype(dtype)
    for c in (2.0**10, -(2.0**12), 2.0**15):
        for a in ALGORITHMS:
            y0 = run_softmax(x, a)[0]
            y1 = run_softmax((x + c).astype(dtype), a)[0]
            assert_softmax_close(y1, ref_softmax(x))
            assert_softmax_close(y0, ref_softmax(x))


def test_log_softmax(kernel_isa, dtype):
    rng = np.random.default_rng(9)
    for n in SMALL_SIZES[::7] + [1000, 10**5]:
        for scale in (1.0, 30.0, 1e4, 1e7, 1e30):
            x = np.clip(rng.standard_normal((2, n)) * scale, -1e38, 1e38).astype(dtype)
            if n > 3:
                x[0, 1] = -np.inf
            y = np.empty_like(x)
            assert _core.log_softmax(x, y).size == 0
            xw = x.astype(wide(dtype))
            ref = xw - ref_logsumexp(x)[:, None]
            fin = np.isfinite(ref)
            assert np.array_equal(np.isfinite(y), fin)
            err = np.abs(y[fin].astype(ref.dtype) - ref[fin])
            lse = np.abs(ref_logsumexp(x))[:, None] * np.ones_like(ref)
            eps = np.finfo(dtype).eps
            bound = 2 * np.spacing(np.abs(ref[fin]).astype(dtype)) + 4 * np.finfo(np.float64).eps * lse[fin]
            assert np.all(err <= bound.astype(ref.dtype) + eps * 0), f"n={n} scale={scale}"


def test_logsumexp_one_ulp(kernel_isa, dtype):
    rng = np.random.default_rng(10)
    for n in [1, 2, 3] + SMALL_SIZES[::5] + [10**5, 10**6 + 3]:
        for scale in (1e-3, 1.0, 8.0, 1e3, 1e6, 1e20):
            rows = 3 if n < 10**5 else 1
            x = (rng.standard_normal((rows, n)) * scale).astype(dtype)
            out = np.empty(rows, dtype)
            assert _core.logsumexp(x, out).size == 0
            ref = ref_logsumexp(x)
            if dtype == np.float32:
                # within 1 ulp of the float32-rounded exact result
                r32 = ref.astype(np.float32)
                assert np.all(np.abs(out.astype(np.float64) - r32) <= np.spacing(np.abs(r32)).astype(np.float64))
            else:
                # 1e-14 relative, plus the sum's own rounding (0.5 ulp of a
                # double) that log turns into an absolute error: near lse = 0
                # no double-precision exp can do better (README, Accuracy).
                np.testing.assert_allclose(out, ref.astype(np.float64), rtol=F64_RTOL, atol=F64_LSE_ATOL)


@pytest.mark.parametrize("offset", [-1.0e6, -1.0e5, -700.0, 650.0, 3.0e4, 1.0e6])
def test_float64_sums_of_equal_terms_far_from_zero(kernel_isa, offset):
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
        np.testing.assert_allclose(out, ref_logsumexp(x).astype(np.float64), rtol=F64_RTOL, atol=F64_LSE_ATOL)


def test_logsumexp_near_zero_result(kernel_isa, dtype):
    """lse close to 0 is where a float32-arithmetic pass loses hundreds of
    ulps; the float64-arithmetic pass keeps float32 within 1 ulp."""
    x = np.array([[0.0, -7.0], [-0.5, -1.2], [-3.0, -0.0001]], dtype=dtype)
    out = np.empty(3, dtype)
    _core.logsumexp(x, out)
    ref = ref_logsumexp(x)
    if dtype == np.float32:
        r32 = ref.astype(np.float32)
        assert np.all(np.abs(out.astype(np.float64) - r32) <= np.spacing(np.abs(r32)))
    else:
        np.testing.assert_allclose(out, ref.astype(np.float64), rtol=F64_RTOL, atol=F64_LSE_ATOL)


def test_logsumexp_weighted(kernel_isa, dtype):
    rng = np.random.default_rng(11)
    for n in (1, 7, 64, 129, 5000):
        x = (rng.standard_normal((4, n)) * 5).astype(dtype)
        b = rng.standard_normal((4, n)).astype(dtype)
        b[0] = np.abs(b[0])
        b[1, ::3] = 0
        x[1, ::3] = np.inf  # masked by b == 0, as in SciPy
        out = np.empty(4, dtype)
        sign = np.empty(4, dtype)
        special = _core.logsumexp_weighted(x, b, out, sign)
        ref, rsign = ref_logsumexp(np.where(b == 0, 0, x).astype(dtype), b)
        ok = np.setdiff1d(np.arange(4), special)
        # n == 1: row 1's only weight is 0 -> no term at all (special, as SciPy's -inf)
        assert special.tolist() == ([1] if n == 1 else []) or (n > 1 and set(special) <= {2, 3})
        assert np.array_equal(sign[ok], rsign[ok].astype(dtype))
        rtol = 1e-6 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(out[ok], ref[ok].astype(np.float64), rtol=rtol, atol=rtol)


def test_logsumexp_special_rows(kernel_isa, dtype):
    x = np.array([[1.0, np.nan], [1.0, np.inf], [-np.inf, -np.inf], [0.0, 0.0]], dtype=dtype)
    out = np.full(4, 9.0, dtype)
    assert _core.logsumexp(x, out).tolist() == [0, 1, 2]
    assert out[:3].tolist() == [9.0, 9.0, 9.0]
    assert out[3] == dtype(np.log(2.0))
    b = np.array([[1.0, 1.0], [0.0, 0.0], [1.0, -1.0], [1.0, np.inf]], dtype=dtype)
    x = np.zeros((4, 2), dtype)
    sign = np.empty(4, dtype)
    out = np.full(4, 9.0, dtype)
    # all-zero weights, an exactly-cancelling sum and an infinite weight are special
    assert _core.logsumexp_weighted(x, b, out, sign).tolist() == [1, 2, 3]
    assert out[0] == dtype(np.log(2.0)) and sign[0] == 1


def test_exp_kernel_accuracy(kernel_isa, dtype):
    """The kernel's exp over random bit patterns of the finite range where the
    result is normal; the full float32 sweep is tools/exp_ulp_sweep.py."""
    rng = np.random.default_rng(12)
    if dtype == np.float32:
        x = rng.uniform(-87.3, 88.7, 2_000_003).astype(np.float32)
    else:
        x = rng.uniform(-708.0, 709.7, 2_000_003)
    bound = EXP_MAX_ULP[np.dtype(dtype).name]
    y = np.empty_like(x)
    _core.testing.exp(x, y)
    ref = np.exp(x.astype(wide(dtype)))
    ulp = np.abs(y.astype(ref.dtype) - ref) / np.spacing(np.abs(ref.astype(dtype))).astype(ref.dtype)
    assert ulp.max() <= bound
    # edges: overflow, underflow, specials
    edge = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1000.0, -1e6, -3e38 if dtype == np.float32 else -1e300], dtype)
    out = np.empty_like(edge)
    _core.testing.exp(edge, out)
    assert out[0] == np.inf and out[1] == 0 and np.isnan(out[2]) and out[3] == 1 and out[4] == 1
    assert out[5] == np.inf and out[6] == 0 and out[7] == 0


def test_probes(kernel_isa, dtype):
    rng = np.random.default_rng(13)
    for n in (0, 1, 17, 1000, 4097):
        x = rng.standard_normal(n).astype(dtype)
        assert _core.probe_read(x) == pytest.approx(float(x.astype(np.float64).sum()), rel=1e-4, abs=1e-4)
        y = np.empty_like(x)
        _core.probe_copy(x, y)
        assert np.array_equal(x, y)
        _core.probe_write(y, 2.5)
        assert np.all(y == 2.5)


def test_bad_arguments_are_rejected_before_writing():
    x = np.zeros((2, 3), np.float32)
    out = np.full((2, 3), 5.0, np.float32)
    with pytest.raises(ValueError, match="algorithm"):
        _core.softmax(x, out, "three-pass")
    with pytest.raises(ValueError, match="out"):
        _core.softmax(x, np.zeros((2, 4), np.float32), "auto")
    with pytest.raises(ValueError, match="out"):
        _core.softmax(x, np.zeros((2, 3), np.float64), "auto")
    ro = np.zeros((2, 3), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        _core.softmax(x, ro, "auto")
    with pytest.raises(TypeError, match="float32 or float64"):
        _core.softmax(x.astype(np.int32), out, "auto")
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.softmax(np.zeros((3, 2), np.float32).T, out, "auto")
    assert np.all(out == 5.0)


def test_dispatch_table():
    compiled = _core.compiled_isas()
    supported = _core.supported_isas()
    assert compiled[-1] == "scalar" and supported[-1] == "scalar"
    assert set(supported) <= set(compiled)
    assert _core.get_isa() in supported
    with pytest.raises(ValueError, match="unknown kernel set"):
        _core.set_isa("sse9")
    for name in compiled:
        if name not in supported:
            with pytest.raises(ValueError, match="not supported"):
                _core.set_isa(name)
    info = _core.cpu_info()
    if "avx512" in supported:
        assert info["avx512f"] and info["os_saves_zmm"]
    if "avx2" in supported:
        assert info["avx2"] and info["fma"] and info["os_saves_ymm"]


def mp_softmax_and_lse(row):
    """softmax and log-sum-exp of a float64 row in 60-digit arithmetic."""
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(60):
        xs = [mpmath.mpf(float(v)) if np.isfinite(v) else None for v in row]
        finite = [v for v in xs if v is not None]
        m = max(finite)
        terms = [mpmath.exp(v - m) if v is not None else mpmath.mpf(0) for v in xs]
        s = mpmath.fsum(terms)
        return [float(t / s) for t in terms], float(m + mpmath.log(s))


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
def test_float64_edge_cases_against_mpmath(kernel_isa, algorithm, row):
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


def test_log_softmax_dominant_entry_after_a_max_jump(kernel_isa, dtype):
    """A lane whose running max jumps (79 -> 107, rescaling its sum to ~7e-13)
    and then adds the new max's own term 1 breaks Fast2Sum's |s| >= |y|; the
    low part lost there is all of log1p(S - 1) that matters for the max entry.
    Found by tests/test_fuzz.py: it was 1e-10 relative off on every kernel set.
    The three 64-element blocks put the jump in every lane of every ISA."""
    for p in (0, 1, 5, 17, 63):
        x = np.concatenate([np.full(64, 79.0), np.full(64, -1000.0), np.full(64, 89.0)]).astype(dtype)
        x[64 + p] = 107.0
        y = np.empty((1, x.size), dtype)
        assert _core.log_softmax(x[None, :], y).size == 0
        xl = x.astype(np.longdouble)
        exact = -np.log1p(np.exp(xl[xl < 107] - 107).sum())  # the others' terms alone
        err = abs(y[0, 64 + p] - exact) / abs(exact)
        assert err <= 4 * np.finfo(dtype).eps, f"p={p}: relative error {float(err):.3g}"


def assert_log_softmax_rows(mpmath, xm, ym, bound, dtype, where):
    """Each log_softmax value ym[r, i] within `bound` relative of x_i - lse(x)
    for row xm[r], in 50-digit arithmetic (exact zeros and values below the
    dtype's smallest normal, where relative error means nothing, skipped)."""
    with mpmath.workdps(50):
        for row, out in zip(xm, ym):
            vals = [mpmath.mpf(float(v)) for v in row]
            m = max(vals)
            lse = m + mpmath.log(mpmath.fsum(mpmath.exp(v - m) for v in vals))
            for v, got in zip(vals, out):
                exact = v - lse
                if exact != 0 and abs(exact) > np.finfo(dtype).tiny:
                    assert abs(mpmath.mpf(float(got)) - exact) <= bound * abs(exact), (where, float(got), float(exact))


@pytest.mark.parametrize("order", ["C", "F"])
def test_log_softmax_dominant_entry_any_axis(kernel_isa, dtype, order):
    """A dominant entry's log-probability -log1p(sum of the others) keeps its
    relative accuracy whatever the layout and axis (60-digit reference)."""
    import simdsoftmax as ssm

    mpmath = pytest.importorskip("mpmath")
    rng = np.random.default_rng(21)
    x = np.asarray((rng.standard_normal((6, 3, 5)) * 15).astype(dtype), order=order)
    bound = 4 * np.finfo(dtype).eps
    for axis in (0, 1, 2):
        y = ssm.log_softmax(x, axis=axis)
        xm, ym = np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis]), np.moveaxis(y, axis, -1).reshape(-1, x.shape[axis])
        assert_log_softmax_rows(mpmath, xm, ym, bound, dtype, axis)


@pytest.mark.parametrize("order", ["C", "F"])
def test_log_softmax_dominant_entry_strided(kernel_isa, dtype, order):
    """The same over a non-last axis with an inner axis of >= 16 elements (the
    in-place strided kernels): columns of 40 small terms (x ~ -25) and one
    dominant entry at a random row, so -log1p(S - 1) needs S - 1 to full
    relative accuracy whichever row holds the max (50-digit reference)."""
    import simdsoftmax as ssm

    mpmath = pytest.importorskip("mpmath")
    rng = np.random.default_rng(22)
    x = (rng.standard_normal((40, 2, 24)) * 3 - 25).astype(dtype)
    for j in range(2):
        for k in range(24):
            x[rng.integers(40), j, k] = rng.standard_normal() * 2
    x = np.asarray(x, order=order)
    axis = 0 if order == "C" else 2
    if order == "F":
        x = np.asfortranarray(np.moveaxis(x, 0, 2))  # reduced axis last, in F order: strided in memory
    bound = 4 * np.finfo(dtype).eps
    y = ssm.log_softmax(x, axis=axis)
    y_in_place = x.copy(order="A")
    assert ssm.log_softmax(y_in_place, axis=axis, out=y_in_place) is y_in_place
    np.testing.assert_array_equal(y_in_place, y)
    xm = np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])
    ym = np.moveaxis(y, axis, -1).reshape(-1, x.shape[axis])
    assert_log_softmax_rows(mpmath, xm, ym, bound, dtype, axis)
