"""topk(): against a stable argsort (descending, lower index first on ties),
on every kernel set and dtype, at sizes that hit every vector tail, with
chunked rows and threads; errors."""

import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core

_hooks = getattr(_core, "testing", None)


def set_chunking(chunk_elements, chunked_row):
    (_hooks.set_chunking if _hooks else _core._set_chunking)(chunk_elements, chunked_row)


def set_parallel_min(elements):
    (_hooks.set_parallel_min if _hooks else _core._set_parallel_min)(elements)


def ref_topk(x2, k):
    order = np.argsort(-x2.astype(np.float64), axis=-1, kind="stable")[:, :k]
    return np.take_along_axis(x2, order, -1), order


SIZES = list(range(1, 18)) + [31, 32, 33, 63, 64, 65, 127, 128, 129, 1000]


@pytest.mark.parametrize("kind", ["normal", "ties", "inf"])
def test_against_stable_argsort(isa, dtype, kind):
    g = np.random.default_rng(5)
    for n in SIZES:
        x = g.normal(size=(4, n))
        if kind == "ties":
            x = np.round(x * 2) / 2
        if kind == "inf":
            x[g.random(x.shape) < 0.3] = -np.inf
            x[g.random(x.shape) < 0.05] = np.inf
        x = x.astype(dtype)
        for k in sorted({1, min(2, n), min(3, n), n // 2 or 1, n}):
            values, indices = ssm.topk(x, k)
            want_v, want_i = ref_topk(x, k)
            np.testing.assert_array_equal(indices, want_i, err_msg=f"n={n} k={k}")
            np.testing.assert_array_equal(values, want_v)
            assert values.dtype == dtype and indices.dtype == np.intp


def test_all_equal_and_sorted_inputs():
    for x in (np.zeros(100), np.arange(100.0), -np.arange(100.0), np.full(70, -np.inf)):
        values, indices = ssm.topk(x, 10)
        want_v, want_i = ref_topk(x[None], 10)
        np.testing.assert_array_equal(indices, want_i[0])
        np.testing.assert_array_equal(values, want_v[0])


def test_axes_dtypes_and_shapes():
    g = np.random.default_rng(1)
    x = g.normal(size=(5, 6, 7))
    for axis in (0, 1, 2, -1):
        values, indices = ssm.topk(x, 3, axis=axis)
        order = np.argsort(-x, axis=axis, kind="stable")
        want_i = np.take(order, np.arange(3), axis=axis)
        np.testing.assert_array_equal(indices, want_i)
        np.testing.assert_array_equal(values, np.take_along_axis(x, want_i, axis))
    h = g.normal(size=(3, 40)).astype(np.float16)
    values, indices = ssm.topk(h, 5)
    assert values.dtype == np.float16
    np.testing.assert_array_equal(indices, ref_topk(h, 5)[1])
    values, indices = ssm.topk([3, 1, 2], 2)
    assert values.dtype == np.float64 and values.tolist() == [3.0, 2.0] and indices.tolist() == [0, 2]
    values, indices = ssm.topk(np.zeros((3, 4)), 0)
    assert values.shape == (3, 0) and indices.shape == (3, 0)
    values, indices = ssm.topk(np.zeros((0, 4)), 2)
    assert values.shape == (0, 2)



def test_one_step_call_matches_the_general_path(isa, dtype):
    """A C-contiguous ndarray along its last axis is taken in one step (no axis
    moves); the same values through the general path (a strided view, axis
    given as a NumPy integer) give the same results, shapes and dtypes, and a
    bad row is named by its batch index either way."""
    g = np.random.default_rng(6)
    for shape in ((16,), (1, 16), (3, 5), (2, 3, 17), (4, 1, 1)):
        x = g.normal(size=shape).astype(dtype)
        strided = np.repeat(x, 2, axis=-1)[..., ::2]
        assert not strided.flags.c_contiguous or x.shape[-1] == 1
        for k in sorted({1, min(2, shape[-1]), shape[-1]}):
            fast = ssm.topk(x, k)
            general = ssm.topk(strided, k, axis=np.int64(-1))
            for a, b in zip(fast, general):
                assert a.shape == b.shape == shape[:-1] + (k,) and a.dtype == b.dtype
                np.testing.assert_array_equal(a, b)
            assert fast[1].dtype == np.intp and fast[0].dtype == dtype
    x = np.zeros((2, 3, 4), dtype)
    x[1, 2, 3] = np.nan
    for arr in (x, np.repeat(x, 2, axis=-1)[..., ::2]):
        with pytest.raises(ValueError, match=r"^x: row \(1, 2\) contains NaN$"):
            ssm.topk(arr, 2)
    with pytest.raises(ValueError, match=r"^x: the row contains NaN$"):
        ssm.topk(x[1, 2], 1)

def test_errors():
    x = np.zeros((3, 5))
    x[1, 2] = np.nan
    x[2, 0] = np.nan
    with pytest.raises(ValueError, match=r"row \(1,\) contains NaN"):
        ssm.topk(x, 2)
    with pytest.raises(ValueError, match="k must be"):
        ssm.topk(np.zeros(5), 6)
    with pytest.raises(ValueError, match="k must be"):
        ssm.topk(np.zeros(5), -1)
    with pytest.raises(TypeError, match="k must be an integer"):
        ssm.topk(np.zeros(5), 2.0)
    with pytest.raises(TypeError, match="k must be an integer"):
        ssm.topk(np.zeros(5), True)


@pytest.mark.parametrize("threads", [1, 2])
def test_short_rows_either_side_of_the_scan(isa, topk_threads, dtype, threads):
    """Rows of up to 1024 values and k up to 16 take the one-scan kernel, and
    on AVX-512 rows of up to 64 values many rows at a time (batches
    of 64 rows, blocks of 1024 across threads), rows of up to 16384 values
    with k up to a vector's lanes (16 / 8 float32, 8 / 4 float64) the vector
    insert; the rest the long-row selection: both sides of each limit
    against a stable argsort (ties of -0.0 and +0.0, -inf and +inf entries,
    rows of one repeated value), in batches split across threads, and the
    first row with a NaN named whichever rows after it have one too."""
    ssm.set_num_threads(threads)
    set_parallel_min(1)
    g = np.random.default_rng(12)
    for n in (1, 2, 8, 9, 15, 16, 17, 31, 33, 64, 65, 127, 128, 129, 1023, 1024, 1025, 16384, 16385):
        rows = 2100 if n <= 16 else 131 if n < 1000 else 37 if n < 2000 else 5
        x = np.round(g.normal(size=(rows, n)) * 3) / 2
        x[g.random(x.shape) < 0.1] = -0.0
        x[g.random(x.shape) < 0.05] = -np.inf
        x[g.random(x.shape) < 0.02] = np.inf
        x[x.shape[0] // 3] = 1.5  # a row of one repeated value
        x = x.astype(dtype)
        for k in sorted({1, min(n, 3), min(n, 4), min(n, 5), min(n, 7), min(n, 8), min(n, 9), min(n, 15),
                         min(n, 16), min(n, 17), n if n < 2000 else 40}):
            values, indices = ssm.topk(x, k)
            want_v, want_i = ref_topk(x, k)
            np.testing.assert_array_equal(indices, want_i, err_msg=f"n={n} k={k}")
            np.testing.assert_array_equal(values, want_v)
            np.testing.assert_array_equal(np.signbit(values), np.signbit(want_v))  # -0.0 stays -0.0
        bad = x.copy()
        first = x.shape[0] // 2
        bad[first, n // 2] = np.nan
        bad[-1, 0] = np.nan
        with pytest.raises(ValueError, match=rf"row \({first},\) contains NaN"):
            ssm.topk(bad, min(n, 16))


@pytest.fixture
def topk_threads():
    before = _core.runtime_settings()
    threads = ssm.get_num_threads()
    yield
    set_chunking(before["chunk_elements"], before["chunked_row"])
    set_parallel_min(before["parallel_min"])
    ssm.set_num_threads(threads)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunked_and_threaded_rows(topk_threads, dtype):
    g = np.random.default_rng(9)
    for x in (g.normal(size=(1, 30000)), np.round(g.normal(size=(3, 5000)) * 4), np.zeros((2, 3000))):
        x = x.astype(dtype)
        want_v, want_i = ref_topk(x, 50)
        for isa in ssm.available_isas():
            with ssm.use_isa(isa):
                for chunking, threads in [((1 << 16, 1 << 24), 1), ((997, 100), 2), ((64, 64), 3)]:
                    set_chunking(*chunking)
                    set_parallel_min(0)
                    ssm.set_num_threads(threads)
                    values, indices = ssm.topk(x, 50)
                    np.testing.assert_array_equal(indices, want_i, err_msg=f"{isa} {chunking}")
                    np.testing.assert_array_equal(values, want_v)
