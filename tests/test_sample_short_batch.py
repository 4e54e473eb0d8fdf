"""sample() with filters on short rows (at most the short-row kernel's length):
each row's filters give its floor, the rows are masked below it and drawn a
block at a time by the short-row Gumbel kernel. Bit-identical to the
row-by-row draw (the path switched off with
_core.testing.set_gumbel_short_rows_max(0)) and to gumbel_argmax of the
logits masked by the float64 sort-based reference, on every kernel set,
with per-row parameters, rows without a filter among filtered ones, several
blocks, threads, and bad rows reported as the row-by-row path reports them.
"""
import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core
from test_sample import make_rows, masked, ref_kept_rows

# vector and tile edges of the kernels up to the path's limit (256), and past it
SIZES = [1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 255, 256, 257]
FILTERS = [
    dict(min_p=0.05),
    dict(min_p=0.3, temperature=0.7),
    dict(top_k=3),
    dict(top_p=0.8),
    dict(top_k=5, top_p=0.9, min_p=0.1, temperature=1.5),
]


@pytest.fixture(autouse=True)
def short_rows_on():
    """Every test starts and ends with the short-row path at its own limit."""
    _core.testing.set_gumbel_short_rows_max(1 << 30)
    yield
    _core.testing.set_gumbel_short_rows_max(1 << 30)


def both_ways(x, rng, **params):
    """sample() with the short-row path on, then off (row by row)."""
    _core.testing.set_gumbel_short_rows_max(1 << 30)
    on = ssm.sample(x, rng=rng, **params)
    _core.testing.set_gumbel_short_rows_max(0)
    off = ssm.sample(x, rng=rng, **params)
    _core.testing.set_gumbel_short_rows_max(1 << 30)
    return on, off


@pytest.mark.parametrize("params", FILTERS, ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()))
@pytest.mark.parametrize("kind", ["normal", "ties", "masked", "peaked"])
def test_short_batch_is_the_row_by_row_draw(isa, dtype, params, kind):
    for n in SIZES:
        x = make_rows(kind, 70, n, dtype, seed=n)  # more rows than one 64-row batch of the kernel
        for seed in (0, 1):
            on, off = both_ways(x, seed, **params)
            np.testing.assert_array_equal(on, off, err_msg=f"n={n} {params}")
            kept = ref_kept_rows(x, **params)
            want = ssm.gumbel_argmax(masked(x, kept), temperature=params.get("temperature", 1.0), rng=seed)
            np.testing.assert_array_equal(on, want, err_msg=f"n={n} {params}")


def test_per_row_parameters_and_unfiltered_rows(isa, dtype):
    g = np.random.default_rng(3)
    for n in (8, 64, 200):
        rows = 3000  # several blocks of the path, in parallel where the pool takes them
        x = g.normal(0, 2, (rows, n)).astype(dtype)
        min_p = np.where(g.random(rows) < 0.3, 0.0, g.uniform(0, 0.5, rows))
        top_k = np.where(g.random(rows) < 0.5, 0, g.integers(1, n + 1, rows))
        top_p = np.where(g.random(rows) < 0.5, 1.0, g.uniform(0.05, 1.0, rows))
        params = dict(min_p=min_p, top_k=top_k, top_p=top_p, temperature=0.8)
        on, off = both_ways(x, 9, **params)
        np.testing.assert_array_equal(on, off, err_msg=f"n={n}")
        kept = ref_kept_rows(x, **params)
        assert kept[np.arange(rows), on].all()


def test_threads_and_isas_give_the_same_tokens(small_chunks):
    set_threads = small_chunks
    x = make_rows("ties", 500, 24, np.float32, seed=5)
    want = None
    before = ssm.isa()
    try:
        for isa in ssm.available_isas():
            ssm.use_isa(isa)  # process-wide: the pool's threads too
            for threads in (1, 2, 3):
                set_threads(threads)
                got = ssm.sample(x, min_p=0.2, top_k=6, rng=4)
                if want is None:
                    want = got
                np.testing.assert_array_equal(got, want, err_msg=f"{isa} threads={threads}")
    finally:
        ssm.use_isa(before)


@pytest.mark.parametrize("bad, message", [(np.nan, "contains NaN"), (np.inf, "contains \\+inf"),
                                          (-np.inf, "has no finite logit")])
def test_bad_rows_are_named_as_row_by_row(isa, dtype, bad, message):
    for params in (dict(min_p=0.1), dict(top_k=2), dict(top_p=0.5)):
        x = make_rows("normal", 100, 16, dtype, seed=1)
        x[40, 3] = bad
        if bad == -np.inf:
            x[40] = bad  # no finite logit: the whole row
        x[70] = bad  # a later bad row: the first one is named
        min_p = np.full(100, params.get("min_p", 0.0))
        min_p[40] = 0.0  # row 40 unfiltered: its fault from the batch draw
        kw = dict(params, min_p=min_p) if "min_p" in params else params
        for short in (1 << 30, 0):
            _core.testing.set_gumbel_short_rows_max(short)
            with pytest.raises(ValueError, match=rf"row \(40,\) {message}"):
                ssm.sample(x, rng=0, **kw)
