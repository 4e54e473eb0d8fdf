"""simdsoftmax.dask.logsumexp near 0, where max + log S cancels.

The chunks' float64 partials give lse = max + log S to ~1e-16 |max|, far
more than ulp(1e-9) in float32 or 2^-26 |lse| in float64 (the in-memory
contract, test_logsumexp_near_zero.py). Rows that may be near 0 also carry
a double-double sum of b*exp(x) from every chunk (_graph._near_zero_sums),
whatever the chunking: along the row in one chunk, in halves, in uneven
pieces, one element per chunk, across rows. References: mpmath at 200
bits from the rows' own values; every kernel set (the partials are the
set's).
"""

import functools

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
mpmath = pytest.importorskip("mpmath")

import simdsoftmax.dask as ssd  # noqa: E402
from simdsoftmax.dask import _graph  # noqa: E402
from test_logsumexp_near_zero import assert_contract, cases, exact_lse  # noqa: E402

# Chunkings along the row (the reduced axis) for rows of n elements.
LAYOUTS = {
    "whole": lambda n: (n,),
    "halves": lambda n: (n - n // 2, n // 2) if n > 1 else (1,),
    "uneven": lambda n: tuple(c for c in (1, n // 3, n - 1 - n // 3) if c),
    "sevens": lambda n: (7,) * (n // 7) + ((n % 7,) if n % 7 else ()),
    "single": lambda n: (1,) * n,
}


@pytest.fixture(autouse=True)
def synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def lse_of(rows, layout, **kw):
    """Dask logsumexp over the last axis, rows in chunks of 4."""
    n = rows.shape[1]
    x = da.from_array(rows, chunks=((4,) * (len(rows) // 4) + ((len(rows) % 4,) if len(rows) % 4 else ()),
                                    LAYOUTS[layout](n)))
    return dask.compute(ssd.logsumexp(x, axis=-1, **kw))[0]


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_near_zero_rows(isa, dtype, layout):
    """The in-memory near-zero cases (|lse| 1e-11 .. 1e-7, rows of 2 .. 1000)."""
    for n, (rows, exact) in cases(dtype).items():
        if layout in ("single", "sevens") and n > 100:
            continue  # a task per few elements: the shorter rows cover it
        assert_contract(lse_of(rows, layout), exact, dtype, f"dask {layout} n={n}", rows)


@functools.lru_cache(maxsize=None)
def log_probabilities(dtype):
    """Rows log(p) of Dirichlet probabilities rounded to dtype (lse ~ the
    rounding: ~1e-8 in float32, ~1e-16 in float64) and their exact lse."""
    rng = np.random.default_rng(21)
    rows = np.log(rng.dirichlet(np.full(300, 0.3), size=12)).astype(dtype)
    return rows, [exact_lse(r) for r in rows]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_log_probabilities(isa, dtype):
    rows, exact = log_probabilities(dtype)
    assert max(abs(float(e)) for e in exact) < (1e-6 if dtype == np.float32 else 1e-13)
    for layout in ("whole", "uneven", "sevens"):
        assert_contract(lse_of(rows, layout), exact, dtype, f"log-probabilities {layout}", rows)
    # The same rows weighted by 1, with the sign.
    res, sgn = lse_of(rows, "uneven", b=np.ones_like(rows), return_sign=True)
    assert np.all(sgn == 1)
    assert_contract(res, exact, dtype, "weighted", rows)


def test_ordinary_rows_take_no_double_double_sum(monkeypatch):
    """Rows whose chunks' own log-sum-exps are far from 0 (logits) never call
    the double-double sum; log-probabilities do."""
    calls = []
    real = _graph._core.row_sums_dd

    def counting(*args):
        calls.append(len(args[2]))
        return real(*args)

    monkeypatch.setattr(_graph._core, "row_sums_dd", counting)
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((8, 1000))
    lse_of(logits, "halves")
    lse_of(logits - 100.0, "halves")  # chunks below e^-40: their float64 sums
    assert calls == []
    lse_of(np.log(rng.dirichlet(np.ones(1000), size=8)), "halves")
    assert sum(calls) == 16
