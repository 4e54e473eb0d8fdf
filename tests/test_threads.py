"""The kernels' thread pool and the chunking of long rows.

By default rows are chunked only above runtime_settings()["chunked_row"]
elements and calls use threads only from runtime_settings()["parallel_min"];
the `small_chunks` fixture (conftest.py) shrinks both through
_core.testing so that every path runs on arrays small enough for a test, on
every kernel set. Every thread count and chunking gives the same bits.
"""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import simdsoftmax as ssm
from reference import ALGORITHMS, assert_softmax_close, ref_logsumexp, ref_softmax, wide
from simdsoftmax import _core
from tiles import tiles

THREAD_COUNTS = [1, 2, 3, 7]


def logits(rng, shape, dtype, scale=6.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


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


def chunk_sizes():
    """Chunk lengths ending at every offset within a vector, and at the edges
    of every kernel set's fast-sum block (the longest step of a row pass)."""
    sizes = {1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 129}
    for name in ssm.available_isas():
        for dt in ("float32", "float64"):
            block = tiles(name, dt)["expsum_fast"]
            sizes |= {block - 1, block + 1}
    return sorted(sizes)


@pytest.mark.parametrize("chunk", chunk_sizes())
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
        xw = x.astype(wide(dtype))
        ref_lse = ref_logsumexp(x)[0]
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




def test_parallel_min_follows_the_wake_latency(restore_settings):
    """Unset (a fresh process), the threshold is 4 elements per ns of the
    measured wake-up time, clamped to 16 Ki-16 Mi; set, it is what was set
    (0: every call may use threads)."""
    code = (
        "from simdsoftmax import _core\n"
        "w = _core.testing.wake_latency_ns()\n"
        "p = _core.runtime_settings()['parallel_min']\n"
        "assert p == int(min(max(4 * w, 16384), 16777216)), (p, w)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    _core.testing.set_parallel_min(12345)
    assert _core.runtime_settings()["parallel_min"] == 12345
    _core.testing.set_parallel_min(0)
    assert _core.runtime_settings()["parallel_min"] == 1
