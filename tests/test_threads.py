"""Threads, chunking, store policies and the strided (any-axis) kernels.

The defaults only chunk rows above 2^20 elements and only use threads above
2^17; the `small_chunks` fixture shrinks both (test hooks in _core) so that
every path runs on arrays small enough for a test, on every kernel set.
"""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core

ALGORITHMS = ["two-pass", "three-pass-recompute", "three-pass-reload", "online", "auto"]
THREAD_COUNTS = [1, 2, 3, 7]


@pytest.fixture
def restore_settings():
    before = _core.runtime_settings()
    threads = ssm.get_num_threads()
    yield
    _core.testing.set_chunking(before["chunk_elements"], before["chunked_row"])
    _core.testing.set_parallel_min(before["parallel_min"])
    _core.testing.set_store_policy(before["store_policy"])
    ssm.set_num_threads(threads)


@pytest.fixture
def small_chunks(restore_settings):
    """Rows above 100 elements are split into chunks of 37; every call may use threads."""
    _core.testing.set_chunking(37, 100)
    _core.testing.set_parallel_min(0)


def logits(rng, shape, dtype, scale=6.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def ref_softmax(x, axis=-1):
    xw = x.astype(np.float64 if x.dtype == np.float32 else np.longdouble)
    e = np.exp(xw - xw.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def assert_softmax_close(y, ref):
    tiny = np.finfo(y.dtype).tiny
    big = ref > tiny
    bound = 4 * 2.0**-23 if y.dtype == np.float32 else 1e-14
    rel = np.abs(y[big].astype(ref.dtype) - ref[big]) / ref[big]
    assert rel.max() <= bound, rel.max()


def every_function(x):
    """All kernel entry points on a 2-D C-contiguous x, results as a tuple."""
    out = []
    for a in ALGORITHMS:
        y = np.empty_like(x)
        out.append((y, _core.softmax(x, y, a)))
    for a in ("three-pass-reload", "auto"):
        # The API's entry: three-pass-reload without its max pass (fresh y).
        r = _core.softmax_call(x, -1, None, a)
        out.append(r if isinstance(r, tuple) else (r,))
    y = np.empty_like(x)
    out.append((y, _core.log_softmax(x, y)))
    lse = np.zeros(x.shape[0], x.dtype)
    out.append((lse, _core.logsumexp(x, lse)))
    b = np.where(np.isfinite(x), np.abs(x[::-1]), 1.0).astype(x.dtype) + 0.5
    lse_b, sign = np.zeros(x.shape[0], x.dtype), np.zeros(x.shape[0], x.dtype)
    out.append((lse_b, sign, _core.logsumexp_weighted(x, b, lse_b, sign)))
    x3 = x.reshape(x.shape[0], -1, 1) if x.shape[1] % 20 else x.reshape(x.shape[0], 20, -1)
    y3 = np.empty_like(x3)
    out.append((y3, _core.softmax_strided(x3, y3, "auto")))
    y3 = np.empty_like(x3)
    out.append((y3, _core.log_softmax_strided(x3, y3)))
    o2 = np.zeros((x3.shape[0], x3.shape[2]), x.dtype)
    out.append((o2, _core.logsumexp_strided(x3, o2)))
    return out


def assert_identical(a, b):
    for ra, rb in zip(a, b):
        for ea, eb in zip(ra, rb):
            np.testing.assert_array_equal(ea, eb)
            assert np.asarray(ea).tobytes() == np.asarray(eb).tobytes()


@pytest.mark.parametrize("shape", [(1, 1000), (1, 4097), (9, 333), (64, 80)])
def test_thread_count_invariance(isa, dtype, small_chunks, shape):
    rng = np.random.default_rng(1)
    x = logits(rng, shape, dtype)
    x[0, 5] = -np.inf
    results = {}
    for t in THREAD_COUNTS:
        ssm.set_num_threads(t)
        results[t] = every_function(x)
    for t in THREAD_COUNTS[1:]:
        assert_identical(results[1], results[t])


def test_thread_count_invariance_default_chunking(isa, restore_settings):
    """A row above the default chunked_row with the default chunk size."""
    rng = np.random.default_rng(2)
    x = logits(rng, (1, _core.runtime_settings()["chunked_row"] * 3 + 77), np.float32)
    _core.testing.set_parallel_min(0)
    outs = {}
    for t in (1, 2, 3):
        ssm.set_num_threads(t)
        y = np.empty_like(x)
        _core.softmax(x, y, "two-pass")
        lse = np.empty(1, np.float32)
        _core.logsumexp(x, lse)
        outs[t] = (y, lse)
    for t in (2, 3):
        assert outs[t][0].tobytes() == outs[1][0].tobytes()
        assert outs[t][1].tobytes() == outs[1][1].tobytes()
    assert_softmax_close(outs[1][0], ref_softmax(x))


@pytest.mark.parametrize("chunk", [1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 129])
def test_chunk_boundaries_at_every_vector_tail(isa, dtype, restore_settings, chunk):
    """Chunked rows whose chunks end at every offset within a vector."""
    _core.testing.set_chunking(chunk, 8)
    _core.testing.set_parallel_min(0)
    ssm.set_num_threads(3)
    rng = np.random.default_rng(3)
    for n in (9, 100, 3 * chunk + 5, 257):
        x = logits(rng, (2, n), dtype)
        ref = ref_softmax(x)
        for a in ALGORITHMS:
            y = np.empty_like(x)
            assert _core.softmax(x, y, a).size == 0
            assert_softmax_close(y, ref)
        lse = np.empty(2, dtype)
        _core.logsumexp(x, lse)
        xw = x.astype(np.float64 if dtype == np.float32 else np.longdouble)
        mx = xw.max(axis=1)
        ref_lse = mx + np.log(np.exp(xw - mx[:, None]).sum(axis=1))
        np.testing.assert_allclose(lse, ref_lse.astype(np.float64), rtol=4 * np.finfo(dtype).eps)
        y = np.empty_like(x)
        _core.log_softmax(x, y)
        np.testing.assert_allclose(y, (xw - ref_lse[:, None]).astype(np.float64), rtol=8 * np.finfo(dtype).eps,
                                   atol=8 * np.finfo(dtype).eps)


def test_special_rows_when_chunked(isa, dtype, small_chunks):
    x = logits(np.random.default_rng(4), (5, 500), dtype)
    x[0, 250] = np.nan
    x[1, 499] = np.inf
    x[2] = -np.inf
    x[3, 100] = 3e6 if dtype == np.float32 else 1e300  # outside the fast range: exact path
    ssm.set_num_threads(2)
    for a in ALGORITHMS:
        y = np.full_like(x, 7.0)
        assert _core.softmax(x, y, a).tolist() == [0, 1, 2]
        assert np.all(y[:3] == 7.0)
        assert_softmax_close(y[3:], ref_softmax(x[3:]))


def threads_of_process():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc")
def test_pool_is_reused(small_chunks):
    x = logits(np.random.default_rng(5), (8, 1000), np.float32)
    ssm.set_num_threads(3)
    expected = ssm.softmax(x, axis=1)
    counts = set()
    for _ in range(20):
        np.testing.assert_array_equal(ssm.softmax(x, axis=1), expected)
        counts.add(threads_of_process())
    assert len(counts) == 1  # no thread created per call
    for t in (1, 2, 5, 2, 3):
        ssm.set_num_threads(t)
        assert ssm.get_num_threads() == t
        np.testing.assert_array_equal(ssm.softmax(x, axis=1), expected)
    # lowering and raising the count again creates no new workers beyond the most asked for
    before = threads_of_process()
    for t in (5, 1, 4, 5):
        ssm.set_num_threads(t)
        ssm.softmax(x, axis=1)
    assert threads_of_process() == before


def test_calls_from_many_python_threads(small_chunks):
    rng = np.random.default_rng(6)
    xs = [logits(rng, (16, 700), np.float32) for _ in range(6)]
    ssm.set_num_threads(2)
    expected = [(ssm.softmax(x, axis=1), ssm.logsumexp(x, axis=0), ssm.log_softmax(x, axis=0)) for x in xs]
    results = [None] * len(xs)
    errors = []

    def work(i):
        try:
            for _ in range(5):
                results[i] = (ssm.softmax(xs[i], axis=1), ssm.logsumexp(xs[i], axis=0), ssm.log_softmax(xs[i], axis=0))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r, e in zip(results, expected):
        for a, b in zip(r, e):
            np.testing.assert_array_equal(a, b)


def test_set_num_threads_checks(restore_settings):
    with pytest.raises(ValueError):
        ssm.set_num_threads(0)
    with pytest.raises(ValueError):
        _core.set_num_threads(0)
    assert _core.default_num_threads() >= 1
    if hasattr(os, "sched_getaffinity"):
        assert _core.default_num_threads() == len(os.sched_getaffinity(0))


def test_num_threads_from_environment():
    code = "import simdsoftmax as s; print(s.get_num_threads(), s._core.get_num_threads())"
    env = dict(os.environ, SIMDSOFTMAX_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["3", "3"]


def test_threadpoolctl_controls_the_pool(restore_settings):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    ssm.set_num_threads(2)
    info = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "simdsoftmax"]
    assert len(info) == 1 and info[0]["num_threads"] == 2
    with threadpoolctl.threadpool_limits(1):
        assert ssm.get_num_threads() == 1
    assert ssm.get_num_threads() == 2
    with threadpoolctl.threadpool_limits(limits=1, user_api="simdsoftmax"):
        assert ssm.get_num_threads() == 1
    assert ssm.get_num_threads() == 2


# --------------------------------------------------------------------------
# Store policies


@pytest.mark.parametrize("offset", [0, 1, 3, 5, 16])
def test_streaming_and_regular_stores_agree(isa, dtype, restore_settings, offset):
    """Both store paths, forced, give identical results (alignment heads at every offset)."""
    rng = np.random.default_rng(7)
    base = logits(rng, (3 * 301 + offset,), dtype)
    x = base[offset:].reshape(3, 301)
    results = {}
    for policy in ("stream", "regular"):
        _core.testing.set_store_policy(policy)
        assert _core.runtime_settings()["store_policy"] == policy
        ybuf = np.full(3 * 301 + offset + 8, 5.0, dtype)
        y = ybuf[offset : offset + 3 * 301].reshape(3, 301)
        r = []
        for a in ALGORITHMS:
            _core.softmax(x, y, a)
            r.append(y.copy())
        _core.log_softmax(x, y)
        r.append(y.copy())
        x3, y3 = x.reshape(3, 7, 43), y.reshape(3, 7, 43)
        _core.softmax_strided(x3, y3, "auto")
        r.append(y.copy())
        _core.log_softmax_strided(x3, y3)
        r.append(y.copy())
        _core.probe_copy(x, y)
        r.append(y.copy())
        _core.probe_write(y, 1.5)
        r.append(y.copy())
        assert np.all(ybuf[:offset] == 5.0) and np.all(ybuf[offset + 3 * 301 :] == 5.0)
        results[policy] = r
    for a, b in zip(results["stream"], results["regular"]):
        assert a.tobytes() == b.tobytes()
    assert_softmax_close(results["stream"][0], ref_softmax(x))
    with pytest.raises(ValueError, match="store policy"):
        _core.testing.set_store_policy("sometimes")


def test_auto_policies_follow_the_cache():
    s = _core.runtime_settings()
    assert s["l2_bytes"] > 0 and s["l1d_bytes"] > 0 and s["cache_source"]
    llc = s["l3_bytes"] or s["l2_bytes"]
    assert s["stream_min_bytes"] >= llc
    assert s["l2_bytes"] // 2 <= s["reload_max_bytes"] <= max(s["l2_bytes"], llc)
    # auto: three-pass-reload for rows that stay in the core's cache, two-pass beyond
    assert _core.resolve_auto(256, "float32") == "three-pass-reload"
    assert _core.resolve_auto(64 << 20, "float32") == "two-pass"
    assert _core.resolve_auto(64 << 20, "float64") == "two-pass"


# --------------------------------------------------------------------------
# Any axis: strided kernels through the public API


def axis_reference(func, x, axis):
    xw = x.astype(np.float64 if x.dtype == np.float32 else np.longdouble)
    with np.errstate(all="ignore"):
        mx = np.max(xw, axis=axis, keepdims=True)
        mx = np.where(np.isfinite(mx), mx, 0)
        s = np.exp(xw - mx).sum(axis=axis, keepdims=True)
        lse = mx + np.log(s)
        if func == "softmax":
            return np.exp(xw - lse)
        if func == "log_softmax":
            return xw - lse
        return np.squeeze(lse, axis=axis)


def check_against_reference(func, y, ref, dtype):
    eps = np.finfo(dtype).eps
    ref = np.asarray(ref)
    fin = np.isfinite(ref)
    assert np.array_equal(np.isfinite(y), fin)
    if func == "softmax":
        big = ref > np.finfo(dtype).tiny
        rel = np.abs(y[big].astype(ref.dtype) - ref[big]) / ref[big]
        assert rel.max() <= (4 * 2.0**-23 if dtype == np.float32 else 1e-14)
    else:
        np.testing.assert_allclose(y[fin], ref[fin].astype(np.float64), rtol=4 * eps, atol=4 * eps)


@pytest.mark.parametrize("func", ["softmax", "log_softmax", "logsumexp"])
@pytest.mark.parametrize(
    "shape,axis",
    [((40, 33), 0), ((7, 50, 17), 1), ((3, 5, 64), 0), ((6, 4, 65), (0, 1)), ((129, 16), 0), ((2, 3, 4, 20), 1)],
)
@pytest.mark.parametrize("order", ["C", "F"])
def test_non_last_axes_and_fortran_order(isa, dtype, func, shape, axis, order):
    rng = np.random.default_rng(8)
    x = np.asarray(logits(rng, shape, dtype), order=order)
    ref = axis_reference(func, x, axis)
    y = getattr(ssm, func)(x, axis=axis)
    check_against_reference(func, y, ref, dtype)
    if func != "logsumexp":
        z = x.copy(order="K")
        assert getattr(ssm, func)(z, axis=axis, out=z) is z
        np.testing.assert_array_equal(z, y)


@pytest.mark.parametrize("func", ["softmax", "log_softmax", "logsumexp"])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # SciPy-formula rows with NaN/inf, as SciPy
def test_strided_special_columns(isa, dtype, func):
    """Columns with NaN, +inf, all -inf, masks and out-of-range values are
    redone contiguously (or left to the SciPy formulas) column by column."""
    rng = np.random.default_rng(9)
    x = logits(rng, (50, 40), dtype)
    x[3, 1] = np.nan
    x[7, 2] = np.inf
    x[:, 3] = -np.inf
    x[::2, 4] = -np.inf
    big = 3e6 if dtype == np.float32 else 1e300
    x[10, 5] = big
    x[:, 6] = -big + np.arange(50)
    x[:, 7] = x[:, 7] * 0 + 1e-30
    y = ssm.softmax(x, axis=0)
    with np.errstate(all="ignore"):
        expected_rows = ssm.softmax(np.ascontiguousarray(x.T), axis=1).T
    if func == "softmax":
        np.testing.assert_allclose(y, expected_rows, rtol=32 * np.finfo(dtype).eps, atol=0)
        assert np.all(np.isnan(y[:, 1:4]))
        assert np.all(y[::2, 4] == 0)
    got = getattr(ssm, func)(x, axis=0)
    with np.errstate(all="ignore"):
        want = getattr(ssm, func)(np.ascontiguousarray(x.T), axis=1)
        want = want.T if func != "logsumexp" else want
    # log_softmax near 0: both paths are accurate to a few eps absolute
    atol = 0 if func == "softmax" else 64 * np.finfo(dtype).eps
    np.testing.assert_allclose(got, want, rtol=32 * np.finfo(dtype).eps, atol=atol)
    # in place: special columns are filled by the formulas from intact input
    z = x.copy()
    if func != "logsumexp":
        getattr(ssm, func)(z, axis=0, out=z)
        np.testing.assert_allclose(z, want, rtol=32 * np.finfo(dtype).eps, atol=atol)


def test_strided_threads_invariance(isa, dtype, small_chunks):
    rng = np.random.default_rng(10)
    x = logits(rng, (4, 300, 100), dtype)
    res = {}
    for t in THREAD_COUNTS:
        ssm.set_num_threads(t)
        res[t] = [ssm.softmax(x, axis=1), ssm.log_softmax(x, axis=1), ssm.logsumexp(x, axis=1)]
    for t in THREAD_COUNTS[1:]:
        for a, b in zip(res[1], res[t]):
            assert a.tobytes() == b.tobytes()


def test_tuning_variants_agree(isa, dtype):
    x = logits(np.random.default_rng(11), (5000,), dtype)
    sums = []
    for v in range(6):
        name, m, e = _core.testing.tune_expsum(x, v)
        sums.append(m * 2.0**e)
    np.testing.assert_allclose(sums, sums[0], rtol=1e-6 if dtype == np.float32 else 1e-14)


def test_strided_logsumexp_near_zero(isa, dtype):
    """Normalized log-probabilities: lse ~ 0, where the fast pass cannot certify
    the result and the accurate per-column pass must take over."""
    rng = np.random.default_rng(12)
    x = logits(rng, (300, 70), dtype, scale=2.0)
    lp = ssm.log_softmax(x, axis=0)
    got = ssm.logsumexp(lp, axis=0)
    got_rows = ssm.logsumexp(np.ascontiguousarray(lp.T), axis=1)
    ref = axis_reference("logsumexp", lp, 0)
    if dtype == np.float32:
        # 1 ulp, plus the float64 sum's own rounding (2^-52 absolute): at
        # |lse| ~ 1e-9 a float32 ulp is smaller than that (README, Accuracy)
        r32 = ref.astype(np.float32)
        for g in (got, got_rows):
            err = np.abs(g.astype(np.float64) - r32)
            assert np.all(err <= np.spacing(np.abs(r32)).astype(np.float64) + 2 * 2.0**-52)
    else:
        for g in (got, got_rows):
            np.testing.assert_allclose(g, ref.astype(np.float64), rtol=1e-14, atol=2 * 2.0**-52)
