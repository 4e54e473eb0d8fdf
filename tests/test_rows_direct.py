"""softmax of batches of rows of a few vectors and more (the short-row
kernels' one-row-at-a-time path, kernels/rows_direct.h, 128 bytes to 256
elements): every length around the vector widths, special rows at every
position, rows in place and with out=, on every kernel set and both dtypes.
"""
import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core

from test_rows import SPECIALS, assert_softmax_close, logits, ref_softmax, wide

# Every length from 16 (128 bytes of float64) to 3 x 16 + 1, then lengths
# with every tail size of the 4-, 8- and 16-lane vectors up to the limit.
LENGTHS = sorted(set(range(16, 50)) | {63, 64, 65, 97, 100, 127, 128, 129, 200, 241, 255, 256})
ROWS = [2, 3, 17, 37]


@pytest.mark.parametrize("n", LENGTHS)
def test_direct_rows_accuracy(isa, dtype, n):
    rng = np.random.default_rng(n)
    for rows in ROWS:
        x = logits(rng, rows, n, dtype, scale=4.0)
        x[-1] += 300.0 if dtype == np.float64 else 60.0  # a large max: terms far from 1
        assert_softmax_close(ssm.softmax(x, axis=1), ref_softmax(x))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # SciPy formulas on NaN rows
@pytest.mark.parametrize("kind", list(SPECIALS))
@pytest.mark.parametrize("n", [16, 32, 33, 100, 256])
def test_direct_special_rows_every_position(isa, dtype, kind, n):
    """A special row anywhere in the batch (and its special entry at the
    row's tail) gives SciPy's result; the other rows are untouched by it,
    with out= and in place alike."""
    special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(40 + n)
    rows = 19
    base = logits(rng, rows, n, dtype)
    for p in range(rows):
        x = base.copy()
        SPECIALS[kind](x[p])
        with np.errstate(all="ignore"):
            want = special.softmax(x.astype(wide(dtype)), axis=1)
        got = ssm.softmax(x, axis=1)
        ordinary = np.ones(rows, bool)
        ordinary[p] = kind in ("huge max", "huge negative", "largest finite", "one finite")
        assert_softmax_close(got[ordinary], ref_softmax(x[ordinary]))
        if not ordinary[p]:
            np.testing.assert_array_equal(got[p], want[p].astype(dtype), err_msg=f"p={p}")
        out = np.empty_like(x)
        assert ssm.softmax(x, axis=1, out=out) is out
        np.testing.assert_array_equal(out, got)
        assert ssm.softmax(x, axis=1, out=x) is x
        np.testing.assert_array_equal(x, got)


@pytest.mark.parametrize("n", [17, 31, 100, 255])
def test_direct_nan_in_the_tail(isa, dtype, n):
    """A NaN among the last, partial vector's entries makes the row NaN."""
    rng = np.random.default_rng(8)
    for at in range(n - 16, n):
        x = logits(rng, 5, n, dtype)
        x[2, at] = np.nan
        y = ssm.softmax(x, axis=1)
        assert np.all(np.isnan(y[2]))
        keep = np.array([0, 1, 3, 4])
        assert_softmax_close(y[keep], ref_softmax(x[keep]))


@pytest.mark.parametrize("n", [16, 33, 100, 256])
def test_direct_rows_tiny_terms(isa, n):
    """float64 terms near and below 2^-1022 relative to the row's power of
    two (x - max from -700 to -760, the max's own term from 2^-0.5 to 2^0.5):
    outputs above the smallest normal within 1e-14 relative, the ones below
    it (terms that may flush to 0) within the smallest normal."""
    rng = np.random.default_rng(90 + n)
    rows = 24
    top = rng.uniform(-50.0, 50.0, rows)
    top[:8] = (np.arange(8) / 8.0 - 0.5) * np.log(2.0)  # max log2 e across its rounding interval
    x = top[:, None] - rng.uniform(700.0, 760.0, (rows, n))
    x[np.arange(rows), rng.integers(n, size=rows)] = top
    x[: rows // 2, 1] = top[: rows // 2] - 0.3  # a sum above the max's own term
    y = ssm.softmax(x, axis=1)
    ref = ref_softmax(x)
    assert np.any((ref > 0) & (ref < np.finfo(np.float64).tiny))  # the flush range is reached
    assert_softmax_close(y, ref)


# Lengths with every tail size of the 8-lane float32 vector (AVX2 takes the
# last 8 elements as one whole vector overlapping the one before: the max
# sees them twice, only the tail's terms are summed, the product is stored
# twice over the overlap).
TAIL_LENGTHS = list(range(32, 41)) + [60, 97, 100, 103, 127, 129, 255]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("n", TAIL_LENGTHS)
def test_direct_overlapping_tail_every_position(isa, n):
    """The row's max, an inf or a NaN at each of the last 16 positions
    (the overlapped lanes and the tail): SciPy's result for that row, the
    other rows as without it, nothing written outside the output, in place
    the same bits."""
    special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(700 + n)
    rows, pad = 5, 19
    base = logits(rng, rows, n, np.float32)
    plain = ssm.softmax(base, axis=1)
    for at in range(max(0, n - 16), n):
        for value in (np.float32(40.0), np.float32(np.inf), np.float32(-np.inf), np.float32(np.nan)):
            x = base.copy()
            x[2, at] = value
            sentinel = np.float32(-3.5)
            buf = np.full(x.size + 2 * pad, sentinel, np.float32)
            out = buf[pad:pad + x.size].reshape(x.shape)
            assert ssm.softmax(x, axis=1, out=out) is out
            assert np.all(buf[:pad] == sentinel) and np.all(buf[pad + x.size:] == sentinel)
            keep = np.array([0, 1, 3, 4])
            np.testing.assert_array_equal(out[keep], plain[keep])
            if value == 40.0 or value == -np.inf:
                assert_softmax_close(out[2:3], ref_softmax(x[2:3]))
                if value == -np.inf:
                    assert out[2, at] == 0.0
            else:
                with np.errstate(all="ignore"):
                    want = special.softmax(x[2].astype(np.float64)).astype(np.float32)
                np.testing.assert_array_equal(out[2], want, err_msg=f"at={at} value={value}")
            z = x.copy()
            assert ssm.softmax(z, axis=1, out=z) is z
            np.testing.assert_array_equal(z, out, err_msg=f"in place, at={at}")


@pytest.mark.parametrize("scale", [1e-3, 1.0, 30.0, 200.0])
def test_direct_tail_lengths_accuracy_many_rows(isa, scale):
    """float32 against float64 over many rows per tail length, wide and
    narrow logits (outputs down to the subnormals), the max at every
    position, the tail's in particular."""
    rng = np.random.default_rng(int(scale * 1000) + 11)
    for n in TAIL_LENGTHS:
        rows = 1500
        x = (rng.standard_normal((rows, n)) * scale).astype(np.float32)
        x[np.arange(rows), n - 1 - np.arange(rows) % n] += np.float32(scale)
        x += np.float32(rng.uniform(-80, 80))
        assert_softmax_close(ssm.softmax(x, axis=1), ref_softmax(x))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # SciPy formulas on NaN rows
@pytest.mark.parametrize("rows", [2, 3, 8, 9])
def test_direct_adjacent_special_rows(isa, dtype, rows, restore_settings):
    """Every length from 32 to 72 and a few longer, special rows first,
    second, both first rows, last or both last rows of even and odd row
    counts (either row of a pair, were rows taken two at a time), 1-3
    threads splitting even these small batches.
    The other rows the same bits as without the special ones, every thread
    count the same bits, nothing written outside the sentinel-framed
    output, in place the same bits."""
    special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(rows)
    pad = 19
    kinds = list(SPECIALS)
    for n in list(range(32, 73)) + [100, 128, 129, 255, 256]:
        base = logits(rng, rows, n, dtype)
        ssm.set_num_threads(1)
        plain = ssm.softmax(base, axis=1)
        specials = [(), (0,), (1,), (0, 1), (rows - 1,), (rows - 2, rows - 1)]
        for case, at in enumerate(specials):
            x = base.copy()
            ordinary = np.ones(rows, bool)
            for k, p in enumerate(at):
                kind = kinds[(n + case + 3 * k) % len(kinds)]
                SPECIALS[kind](x[p])
                ordinary[p] = kind in ("huge max", "huge negative", "largest finite", "one finite")
            untouched = np.ones(rows, bool)
            untouched[list(at)] = False
            with np.errstate(all="ignore"):
                want = special.softmax(x.astype(wide(dtype)), axis=1).astype(dtype)
            for threads in (1, 2, 3):
                ssm.set_num_threads(threads)
                _core.testing.set_parallel_min(0)  # threads even on these small batches
                sentinel = dtype.type(-3.5)
                buf = np.full(x.size + 2 * pad, sentinel, dtype)
                out = buf[pad:pad + x.size].reshape(x.shape)
                assert ssm.softmax(x, axis=1, out=out) is out
                assert np.all(buf[:pad] == sentinel) and np.all(buf[pad + x.size:] == sentinel)
                if threads == 1:
                    first = out.copy()
                np.testing.assert_array_equal(out, first, err_msg=f"n={n} at={at} threads={threads}")
                np.testing.assert_array_equal(out[untouched], plain[untouched], err_msg=f"n={n} at={at}")
                z = x.copy()
                assert ssm.softmax(z, axis=1, out=z) is z
                np.testing.assert_array_equal(z, out, err_msg=f"in place n={n} at={at}")
            assert_softmax_close(out[ordinary], ref_softmax(x[ordinary]))
            np.testing.assert_array_equal(out[~ordinary], want[~ordinary], err_msg=f"n={n} at={at}")


@pytest.mark.parametrize("n", [32, 33, 40, 47, 48, 56, 64, 100, 255, 256])
def test_direct_f32_terms_at_the_flush_across_the_range(isa, n):
    """float32 rows whose max lies anywhere in the fast range (|max| up to
    2^20) and whose other entries sweep from 80 below it (outputs near the
    subnormals) to 140 below (terms at and past the row's flush at 2^-190
    of the max's, where AVX2 clamps x at a per-row bound, folded_term):
    against float64 over many rows, entries far below exactly 0, vector
    counts odd and even, in place the same bits."""
    rng = np.random.default_rng(1300 + n)
    rows = 61
    top = rng.uniform(-1.04e6, 1.04e6, rows)
    top[:6] = [0.0, 1048575.0, -1048575.0, 87.5, -103.0, 0.5 * np.log(2.0)]
    top = top.astype(np.float32)
    x = (top[:, None] - rng.uniform(80.0, 140.0, (rows, n))).astype(np.float32)
    x[np.arange(rows), rng.integers(n, size=rows)] = top
    x[::3, 1] = top[::3] - np.float32(0.3)  # a sum above the max's own term
    y = ssm.softmax(x, axis=1)
    ref = ref_softmax(x)
    assert np.any((ref > 0) & (ref < 2.0**-152)) and np.any((ref > 0) & (ref < np.finfo(np.float32).tiny) & (y > 0))
    assert_softmax_close(y, ref)
    assert np.all(y[ref < 2.0**-152] == 0)
    z = x.copy()
    assert ssm.softmax(z, axis=1, out=z) is z
    np.testing.assert_array_equal(z, y)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # special rows
@pytest.mark.parametrize("n", [32, 33, 40, 64, 100, 255, 256])
def test_direct_batch_rows_as_alone(isa, dtype, n):
    """A row's bits do not depend on the rows before it in the batch (the
    batch's constants kept across its rows; rows of every regime one after
    another: tiny and wide logits, maxima across the fast range, special
    rows): the batch reversed and the batch in a random order give the same
    rows."""
    rng = np.random.default_rng(70 + n)
    rows = 300
    x = rng.standard_normal((rows, n)) * rng.choice([1e-3, 1.0, 40.0, 300.0], size=(rows, 1))
    x += rng.uniform(-9e5, 9e5, size=(rows, 1)) * (rng.random((rows, 1)) < 0.3)
    x = x.astype(dtype)
    x[7, n // 3] = np.nan
    x[11, :] = -np.inf
    x[12, n - 1] = np.inf
    x[13, :] = 2e6
    whole = ssm.softmax(x, axis=1)
    np.testing.assert_array_equal(ssm.softmax(x[::-1].copy(), axis=1)[::-1], whole)
    order = rng.permutation(rows)
    np.testing.assert_array_equal(ssm.softmax(x[order], axis=1), whole[order])
