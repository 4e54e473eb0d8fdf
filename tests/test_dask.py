"""simdsoftmax.dask against the in-memory functions.

Every chunking (one chunk, uneven chunks, along and across the reduced
axes, empty chunks) must give what the in-memory function gives: the same
dtypes and special values, values within the accuracy bound, and for the
Gumbel samplers the very same draws. Most tests use Dask's synchronous
scheduler; the last ones run on a real dask.distributed LocalCluster with
worker processes, one of which is killed in the middle of a computation.
"""
import os
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import simdsoftmax as ssm  # noqa: E402
import simdsoftmax.dask as ssd  # noqa: E402

F32_ULP = 2.0**-23


@pytest.fixture(autouse=True)
def synchronous():
    """Run graphs in the test's thread (deterministic, cheap on 2 cores)."""
    with dask.config.set(scheduler="synchronous"):
        yield


def compute(*arrays):
    return dask.compute(*arrays)


def assert_same(actual, expected, rtol=0.0, atol=0.0):
    """Equal dtype and shape, NaN where expected has NaN, infinities equal,
    finite values within the tolerance."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(actual[~finite & ~np.isnan(expected)], expected[~finite & ~np.isnan(expected)])
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=rtol, atol=atol)


# Chunkings of a (13, 41) array: one chunk, rows only, along the axis only,
# uneven both ways, single elements along the axis, and zero-size chunks.
CHUNKINGS_2D = {
    "one": (-1, -1),
    "rows": (4, -1),
    "cols": (-1, 9),
    "uneven": ((1, 7, 5), (3, 20, 1, 17)),
    "single": ((13,), (1,) * 41),
    "empty": ((6, 0, 7), (0, 10, 0, 31, 0)),
}


@pytest.fixture(params=list(CHUNKINGS_2D), ids=lambda c: f"chunks={c}")
def chunks2d(request):
    return CHUNKINGS_2D[request.param]


def logits(shape, dtype=np.float64, seed=0, scale=10.0):
    x = np.random.default_rng(seed).standard_normal(shape) * scale
    return x.astype(dtype)


# --------------------------------------------------------------------------
# softmax, log_softmax, logsumexp


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 1)])
def test_softmax_float32_within_4_ulp_of_exact(chunks2d, axis):
    x = logits((13, 41), np.float32)
    y = ssd.softmax(da.from_array(x, chunks=chunks2d), axis=axis).compute()
    x64 = x.astype(np.float64)
    top = x64.max(axis=axis, keepdims=True)
    exact = np.exp(x64 - top) / np.exp(x64 - top).sum(axis=axis, keepdims=True)
    assert y.dtype == np.float32
    normal = exact > np.finfo(np.float32).tiny
    assert np.abs(y[normal] / exact[normal] - 1).max() <= 4 * F32_ULP


@pytest.mark.parametrize("axis", [None, 0, 1, (1, 0)])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int64", "bool"])
def test_rowwise_and_logsumexp_match_in_memory(chunks2d, axis, dtype):
    x = logits((13, 41), np.float64, seed=1, scale=3.0).astype(dtype)
    xd = da.from_array(x, chunks=chunks2d)
    rtol = {"float16": 1e-3, "float32": 8 * F32_ULP}.get(dtype, 1e-14)
    got = compute(
        ssd.softmax(xd, axis=axis),
        ssd.log_softmax(xd, axis=axis),
        ssd.logsumexp(xd, axis=axis),
        ssd.logsumexp(xd, axis=axis, keepdims=True),
    )
    expected = (
        ssm.softmax(x, axis=axis),
        ssm.log_softmax(x, axis=axis),
        ssm.logsumexp(x, axis=axis),
        ssm.logsumexp(x, axis=axis, keepdims=True),
    )
    for g, e in zip(got, expected):
        assert_same(g, e, rtol=rtol, atol=rtol)


@pytest.mark.parametrize(
    "shape,chunks,axis",
    [
        ((4, 6, 5), (2, (1, 5), (3, 2)), 1),
        ((4, 6, 5), (3, 2, 2), (0, 2)),
        ((4, 6, 5), ((1, 3), 6, (2, 0, 3)), (2, 0)),
        ((4, 6, 5), (1, 1, 1), None),
        ((3, 1, 7), (2, 1, 3), (1,)),
    ],
)
def test_nd_axes(shape, chunks, axis):
    x = logits(shape, np.float64, seed=2)
    xd = da.from_array(x, chunks=chunks)
    got = compute(ssd.softmax(xd, axis), ssd.log_softmax(xd, axis), ssd.logsumexp(xd, axis))
    expected = ssm.softmax(x, axis), ssm.log_softmax(x, axis), ssm.logsumexp(x, axis)
    for g, e in zip(got, expected):
        assert_same(g, e, rtol=1e-14, atol=1e-13)


def test_log_softmax_keeps_the_remainder_near_a_dominant_entry():
    # log_softmax of the dominant entry is -log1p(499 e^-40) ~ -2.1e-15: only
    # an exact combination of the partials keeps it (a plain sum of
    # S_c exp(M_c - M) in float64 rounds it to a multiple of 2^-52).
    # (The dominant entry comes first: the in-memory kernels lose part of this
    # remainder when a lane's max arrives after its smaller terms.)
    x = np.full(500, -40.0)
    x[0] = 0.0
    exact = -np.log1p(499 * np.exp(-40.0))
    for chunks in (30, 1, (1, 498, 1)):
        xd = da.from_array(x, chunks=chunks)
        y = ssd.log_softmax(xd).compute()
        np.testing.assert_allclose(y[0], exact, rtol=1e-14)
        assert_same(y, ssm.log_softmax(x), rtol=1e-14)
        np.testing.assert_allclose(ssd.logsumexp(xd).compute(), -exact, rtol=1e-14)


def test_huge_magnitudes_do_not_overflow():
    x = np.array([[3e38, -3e38, 3e38 - 2e31, 1.0], [-3e38, -3.3e38, -3e38, -3e38]], np.float32)
    xd = da.from_array(x, chunks=(1, 1))
    assert_same(ssd.softmax(xd, axis=1).compute(), ssm.softmax(x, axis=1), rtol=8 * F32_ULP)
    assert_same(ssd.logsumexp(xd, axis=1).compute(), ssm.logsumexp(x, axis=1), rtol=F32_ULP)


SPECIAL_VALUES = np.array([np.nan, np.inf, -np.inf, 0.0, 1.0, -3.0, 800.0, -800.0])
SPECIAL_WEIGHTS = np.array([0.0, 1.0, -1.0, 2.0, np.inf, -np.inf, np.nan, 0.5])


def special_rows(dtype):
    rng = np.random.default_rng(3)
    x = rng.choice(SPECIAL_VALUES, size=(300, 6), p=[0.05, 0.05, 0.3, 0.15, 0.15, 0.1, 0.1, 0.1])
    x[0] = -np.inf
    x[1] = [np.inf, -np.inf, 0, 1, 2, 3]
    x[2] = [0, 0, np.nan, 0, np.inf, 0]
    x[3] = [-np.inf, -np.inf, -np.inf, 5, -np.inf, -np.inf]
    b = rng.choice(SPECIAL_WEIGHTS, size=x.shape, p=[0.3, 0.2, 0.2, 0.1, 0.05, 0.05, 0.05, 0.05])
    b[4] = [1, -1, 0, 0, 0, 0]
    x[4] = [7, 7, np.inf, np.nan, 0, 0]  # an exact zero sum, and +inf/NaN under zero weights
    return x.astype(dtype), b.astype(dtype)


@pytest.mark.parametrize("chunks", [(300, 6), (37, 1), (50, 4), (3, (2, 0, 3, 1))], ids=str)
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_special_values_as_in_memory(dtype, chunks):
    x, b = special_rows(dtype)
    xd, bd = da.from_array(x, chunks=chunks), da.from_array(b, chunks=chunks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # SciPy's own formulas warn on these rows
        expected = [
            ssm.softmax(x, axis=1),
            ssm.log_softmax(x, axis=1),
            ssm.logsumexp(x, axis=1),
            *ssm.logsumexp(x, axis=1, return_sign=True),
            ssm.logsumexp(x, axis=1, b=b),
            *ssm.logsumexp(x, axis=1, b=b, return_sign=True),
        ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and the Dask version must not
        got = compute(
            ssd.softmax(xd, axis=1),
            ssd.log_softmax(xd, axis=1),
            ssd.logsumexp(xd, axis=1),
            *ssd.logsumexp(xd, axis=1, return_sign=True),
            ssd.logsumexp(xd, axis=1, b=bd),
            *ssd.logsumexp(xd, axis=1, b=bd, return_sign=True),
        )
    rtol = {"float16": 1e-3, "float32": 8 * F32_ULP}.get(dtype, 1e-14)
    for g, e in zip(got, expected):
        assert_same(g, e, rtol=rtol, atol=rtol)


@pytest.mark.parametrize(
    "a_shape,b_shape,b_chunks", [((6, 20), (20,), 7), ((6, 20), (6, 1), 2), ((1, 20), (6, 20), (3, 5))]
)
def test_logsumexp_broadcast_weights(a_shape, b_shape, b_chunks):
    rng = np.random.default_rng(4)
    a = rng.standard_normal(a_shape)
    b = rng.standard_normal(b_shape)
    ad = da.from_array(a, chunks=(2, 6))
    for bb in (b, da.from_array(b, chunks=b_chunks)):
        for axis in (None, 0, 1):
            got = compute(*ssd.logsumexp(ad, axis=axis, b=bb, return_sign=True))
            expected = ssm.logsumexp(a, axis=axis, b=b, return_sign=True)
            for g, e in zip(got, expected):
                assert_same(g, e, rtol=1e-13, atol=1e-13)


def test_logsumexp_dtype_promotion_follows_in_memory():
    a32 = np.arange(6, dtype=np.float32)
    ad = da.from_array(a32, chunks=4)
    assert ssd.logsumexp(ad, b=2.0).dtype == ssm.logsumexp(a32, b=2.0).dtype == np.float32
    assert ssd.logsumexp(ad, b=np.ones(6)).dtype == np.float64
    assert ssd.logsumexp(da.arange(5, chunks=2)).dtype == np.float64
    assert_same(ssd.logsumexp(ad, b=2.0).compute(), ssm.logsumexp(a32, b=2.0), rtol=F32_ULP)


@pytest.mark.parametrize("shape,axis", [((0, 5), 1), ((5, 0), 1), ((5, 0), 0), ((0,), None)])
def test_empty_arrays(shape, axis):
    x = np.zeros(shape)
    xd = da.from_array(x)
    assert_same(ssd.softmax(xd, axis).compute(), ssm.softmax(x, axis))
    assert_same(ssd.log_softmax(xd, axis).compute(), ssm.log_softmax(x, axis))
    for g, e in zip(compute(*ssd.logsumexp(xd, axis, return_sign=True)), ssm.logsumexp(x, axis, return_sign=True)):
        assert_same(g, e)


def test_zero_dimensional_input():
    assert_same(ssd.softmax(3.0).compute(), np.asarray(ssm.softmax(3.0)))
    assert_same(ssd.log_softmax(np.float32(3)).compute(), np.asarray(ssm.log_softmax(np.float32(3))))
    assert_same(ssd.logsumexp(2.0, keepdims=True).compute(), ssm.logsumexp(2.0, keepdims=True))


def test_complex_input_uses_the_numpy_path():
    x = np.random.default_rng(5).standard_normal((4, 9)) + 1j
    xd = da.from_array(x, chunks=(2, 4))
    assert_same(ssd.softmax(xd, axis=1).compute(), ssm.softmax(x, axis=1), rtol=1e-14)
    assert_same(ssd.logsumexp(xd, axis=1).compute(), ssm.logsumexp(x, axis=1), rtol=1e-14)
    for g, e in zip(compute(*ssd.logsumexp(xd, axis=0, return_sign=True)), ssm.logsumexp(x, 0, return_sign=True)):
        assert_same(g, e, rtol=1e-14, atol=1e-15)


def test_non_dask_input_and_every_kernel_set(isa):
    x = logits((5, 33), np.float32, seed=6)
    assert_same(ssd.softmax(x, axis=1).compute(), ssm.softmax(x, axis=1), rtol=8 * F32_ULP)
    assert_same(ssd.logsumexp(x.tolist(), axis=1).compute(), ssm.logsumexp(x.tolist(), axis=1), rtol=1e-14)
    xd = da.from_array(x, chunks=(2, 7))
    assert_same(ssd.log_softmax(xd, axis=1).compute(), ssm.log_softmax(x, axis=1), rtol=4 * F32_ULP, atol=1e-5)


def test_argument_errors():
    xd = da.zeros((3, 4), chunks=2)
    with pytest.raises(ValueError, match="repeated"):
        ssd.softmax(xd, axis=(1, 1))
    with pytest.raises(np.exceptions.AxisError):
        ssd.log_softmax(xd, axis=2)
    with pytest.raises(ValueError, match="broadcast"):
        ssd.logsumexp(xd, b=np.ones(3))
    with pytest.raises(TypeError):
        ssd.softmax(da.from_array(np.array(["a", "b"])))
    unknown = xd[xd[:, 0] > -1]  # rows of unknown count
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        ssd.softmax(unknown, axis=0)
    assert_same(ssd.softmax(unknown, axis=1).compute(), ssm.softmax(np.zeros((3, 4)), axis=1))


# --------------------------------------------------------------------------
# Gumbel: bit-identical draws


@pytest.mark.parametrize("temperature", [1.0, 0.37, 0.0])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int32"])
def test_gumbel_draws_are_bit_identical(chunks2d, dtype, temperature):
    x = logits((13, 41), np.float64, seed=7, scale=2.0)
    x[x < -2] = -np.inf  # masked logits: some chunks hold fewer than k finite ones
    x = x.astype(dtype) if dtype != "int32" else np.round(x.clip(-5, 5) * 2).astype(dtype)
    xd = da.from_array(x, chunks=chunks2d)
    for axis in (1, 0):
        for k in (1, 4):
            expected = ssm.gumbel_topk(x, k, axis=axis, temperature=temperature, rng=11)
            got = ssd.gumbel_topk(xd, k, axis=axis, temperature=temperature, rng=11).compute()
            np.testing.assert_array_equal(got, expected)
            assert got.dtype == np.intp
        expected = ssm.gumbel_argmax(x, axis=axis, temperature=temperature, rng=12)
        np.testing.assert_array_equal(
            ssd.gumbel_argmax(xd, axis=axis, temperature=temperature, rng=12).compute(), expected
        )


@pytest.mark.parametrize(
    "shape,chunks,axis",
    [
        ((4, 6, 50), (3, 4, 13), 2),
        ((4, 6, 50), (4, 6, 7), 2),  # trailing batch dimension whole: one kernel call per chunk
        ((4, 6, 50), (1, 1, 50), 2),
        ((4, 30, 5), (3, 7, 2), 1),
        ((30, 4, 5), (8, 3, 5), 0),
        ((100,), (17,), 0),
    ],
)
def test_gumbel_nd_global_positions(shape, chunks, axis):
    x = logits(shape, np.float32, seed=8, scale=1.0)
    xd = da.from_array(x, chunks=chunks)
    for k in (1, 3):
        np.testing.assert_array_equal(
            ssd.gumbel_topk(xd, k, axis=axis, rng=21).compute(), ssm.gumbel_topk(x, k, axis=axis, rng=21)
        )
    got = ssd.gumbel_argmax(xd, axis=axis, rng=22).compute()
    np.testing.assert_array_equal(got, ssm.gumbel_argmax(x, axis=axis, rng=22))


def test_gumbel_k_equals_number_of_finite_logits():
    x = np.full((3, 40), -np.inf)
    x[:, [0, 13, 26, 39]] = [1.0, 2.0, 3.0, 4.0]
    xd = da.from_array(x, chunks=(2, 10))
    np.testing.assert_array_equal(ssd.gumbel_topk(xd, 4, rng=3).compute(), ssm.gumbel_topk(x, 4, rng=3))


def test_gumbel_generator_is_advanced_like_in_memory():
    x = logits((5, 20), np.float64, seed=9)
    xd = da.from_array(x, chunks=(2, 6))
    g_mem, g_dask = np.random.default_rng(99), np.random.default_rng(99)
    for _ in range(3):
        expected = ssm.gumbel_topk(x, 2, rng=g_mem)
        lazy = ssd.gumbel_topk(xd, 2, rng=g_dask)
        # The key is drawn at call time: computing twice gives the same draw.
        np.testing.assert_array_equal(lazy.compute(), expected)
        np.testing.assert_array_equal(lazy.compute(), expected)
    assert g_mem.integers(2**62) == g_dask.integers(2**62)


@pytest.mark.parametrize(
    "bad,message",
    [
        ((2, 17, np.nan), r"row \(2,\) contains NaN"),
        ((4, 3, np.inf), r"row \(4,\) contains \+inf"),
    ],
)
def test_gumbel_bad_rows_raise_like_in_memory(bad, message):
    x = logits((6, 30), np.float64, seed=10)
    x[bad[0], bad[1]] = bad[2]
    xd = da.from_array(x, chunks=(3, 8))
    with pytest.raises(ValueError, match=message):
        ssm.gumbel_argmax(x, rng=0)
    with pytest.raises(ValueError, match=message):
        ssd.gumbel_argmax(xd, rng=0).compute()
    with pytest.raises(ValueError, match=message):
        ssd.gumbel_topk(xd, 2, temperature=0, rng=0).compute()


def test_gumbel_short_rows_raise_like_in_memory():
    x = np.zeros((6, 30))
    x[3, 2:] = -np.inf  # two finite logits
    xd = da.from_array(x, chunks=(2, 7))
    for k, message in ((3, r"row \(3,\) has fewer finite logits than k"),):
        with pytest.raises(ValueError, match=message):
            ssm.gumbel_topk(x, k, rng=0)
        with pytest.raises(ValueError, match=message):
            ssd.gumbel_topk(xd, k, rng=0).compute()
    x[3] = -np.inf
    with pytest.raises(ValueError, match=r"row \(3,\) has no finite logit"):
        ssd.gumbel_argmax(da.from_array(x, chunks=(2, 7)), rng=0).compute()
    with pytest.raises(ValueError, match="fewer finite logits than k"):
        ssd.gumbel_topk(xd, 31, rng=0)  # k > n: known before computing
    assert ssd.gumbel_topk(xd, 0).compute().shape == (6, 0)
    with pytest.raises(ValueError, match="k must be >= 0"):
        ssd.gumbel_topk(xd, -1)
    with pytest.raises(ValueError, match="temperature"):
        ssd.gumbel_argmax(xd, temperature=-1)
    with pytest.raises(ValueError, match="at least one dimension"):
        ssd.gumbel_argmax(da.from_array(np.float64(1)))


# --------------------------------------------------------------------------
# The graph


def test_graph_is_lazy_and_small():
    calls = []

    def block(b):
        if b.size:  # (Dask calls it on empty arrays to learn the dtype)
            calls.append(1)
        return b

    x = da.ones((200, 400), chunks=(50, 40)).map_blocks(block, dtype=float)  # 4 x 10 chunks
    nblocks = 40
    results = [
        ssd.softmax(x, axis=1),
        ssd.log_softmax(x, axis=None),
        ssd.logsumexp(x, axis=1),
        ssd.gumbel_topk(x, 3, rng=0),
    ]
    assert not calls  # nothing computed while building
    for r in results:
        graph = r.__dask_optimize__(r.__dask_graph__(), r.__dask_keys__())
        # the input's own chunks, partials, a tree of combines and one pass
        assert len(graph) <= 4 * nblocks, len(graph)
    # Rows within one chunk each: one task per chunk (after the input's).
    whole_rows = da.ones((200, 400), chunks=(50, 400))
    for r in (ssd.softmax(whole_rows, axis=1), ssd.log_softmax(whole_rows, axis=-1)):
        assert len(r.__dask_optimize__(r.__dask_graph__(), r.__dask_keys__())) <= 2 * 4


def test_importing_simdsoftmax_does_not_import_dask():
    code = "import sys, simdsoftmax; assert not any(m == 'dask' or m.startswith('dask.') for m in sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_without_dask_the_error_says_what_to_install():
    code = (
        "import sys\n"
        "sys.modules['dask'] = sys.modules['dask.array'] = None  # as if not installed\n"
        "try:\n"
        "    import simdsoftmax.dask\n"
        "except ImportError as e:\n"
        "    assert 'simdsoftmax[dask]' in str(e), e\n"
        "else:\n"
        "    raise SystemExit('imported')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("name", ssd.__all__)
def test_public_names_are_documented_and_their_examples_run(name):
    import doctest

    func = getattr(ssd, name)
    assert "\n    Examples\n    --------\n" in func.__doc__
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(func, name, globs={}):
        runner.run(test)
    assert runner.failures == 0


# --------------------------------------------------------------------------
# A real cluster: worker processes, and a worker killed mid-computation

@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes with small memory, torn down after."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit="1GiB",
        dashboard_address=None,
        silence_logs=50,  # CRITICAL: the killed worker's complaints are expected
        timeout=120,
    )
    try:
        with distributed.Client(cluster, set_as_default=False, timeout=120) as c:
            c.wait_for_workers(2, timeout=120)
            yield c
    finally:
        cluster.close(timeout=60)


def run(client, *arrays):
    """Compute on the cluster, bounded in time."""
    return [future.result(timeout=180) for future in client.compute(list(arrays))]


def test_cluster_results_identical_to_in_memory(client):
    x = logits((64, 5000), np.float32, seed=12)
    xd = da.from_array(x, chunks=(16, 1300))
    got = run(
        client,
        ssd.softmax(xd, axis=1),
        ssd.log_softmax(xd, axis=0),
        ssd.logsumexp(xd, axis=1),
        ssd.gumbel_topk(xd, 5, rng=4),
        ssd.gumbel_argmax(xd, axis=0, rng=5),
    )
    # The same graph on the local scheduler gives bit-for-bit the same values...
    local = compute(
        ssd.softmax(xd, axis=1), ssd.log_softmax(xd, axis=0), ssd.logsumexp(xd, axis=1)
    )
    for g, e in zip(got, local):
        np.testing.assert_array_equal(g, e)
    # ...which are the in-memory ones within the accuracy bound, and the draws exactly.
    assert_same(got[0], ssm.softmax(x, axis=1), rtol=8 * F32_ULP)
    assert_same(got[1], ssm.log_softmax(x, axis=0), rtol=4 * F32_ULP, atol=1e-5)
    assert_same(got[2], ssm.logsumexp(x, axis=1), rtol=F32_ULP)
    np.testing.assert_array_equal(got[3], ssm.gumbel_topk(x, 5, rng=4))
    np.testing.assert_array_equal(got[4], ssm.gumbel_argmax(x, axis=0, rng=5))
    # and the workers ran the extension themselves
    isas = client.run(lambda: __import__("simdsoftmax").isa())
    assert len(isas) == 2


def test_cluster_survives_a_killed_worker(client, tmp_path):
    """A task kills its worker process (SIGKILL) the first time it runs; the
    nanny restarts the worker, Dask recomputes what was lost and retries the
    task, and the result is still right."""
    marker = str(tmp_path / "killed-once")
    pids_before = set(client.run(os.getpid).values())

    def kill_once(block, block_id=None):
        # Chunk (3, 2) of the input is produced late, while other chunks and
        # partials already sit in the workers' memory.
        if block_id == (3, 2) and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return block

    x = logits((64, 6000), np.float64, seed=13)
    xd = da.from_array(x, chunks=(8, 1000)).map_blocks(kill_once, dtype=x.dtype)
    got = run(client, ssd.softmax(xd, axis=1), ssd.gumbel_topk(xd, 3, rng=6), ssd.logsumexp(xd, axis=0))
    assert os.path.exists(marker)  # the worker was killed...
    client.wait_for_workers(2, timeout=120)
    assert set(client.run(os.getpid).values()) != pids_before  # ...and replaced
    assert_same(got[0], ssm.softmax(x, axis=1), rtol=1e-14)
    np.testing.assert_array_equal(got[1], ssm.gumbel_topk(x, 3, rng=6))
    assert_same(got[2], ssm.logsumexp(x, axis=0), rtol=1e-14)



def test_gumbel_unaligned_chunk_is_copied_not_passed_on():
    """A contiguous but unaligned chunk must not reach the kernels as is
    (misaligned float loads; see tools/sanitize.sh)."""
    raw = np.zeros(4 * 12 + 1, np.uint8)
    x = raw[1:].view(np.float32).reshape(3, 4)
    x[...] = np.arange(12).reshape(3, 4)
    assert not x.flags.aligned
    d = da.from_array(x, chunks=(3, 4))  # one chunk: the unaligned array itself
    got = ssd.gumbel_topk(d, 2, rng=1).compute(scheduler="sync")
    np.testing.assert_array_equal(got, ssm.gumbel_topk(np.array(x), 2, rng=1))
