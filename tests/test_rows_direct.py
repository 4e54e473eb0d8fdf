"""softmax of batches of rows of a few vectors and more (the short-row
kernels' one-row-at-a-time path, kernels/rows_direct.h, 128 bytes to 256
elements): every length around the vector widths, special rows at every
position, rows in place and with out=, on every kernel set and both dtypes.
"""
import numpy as np
import pytest

import simdsoftmax as ssm

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
