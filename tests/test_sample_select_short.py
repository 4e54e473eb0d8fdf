"""The k best of chunks too short for a sampled floor when k is large against
them (kernels/sample_generic.h, select_collect: one filtered pass into a
buffer of 1024 candidates that keeps its k best when it fills), against a
stable float64 sort: sizes around the vector tiles, the sample that places
the first threshold (128 values) and the buffer; ties at the k-th value
(all-equal rows, a few distinct values), -inf (fewer finite values than k:
the heap does those), +inf and NaN, k >= n, per-row k, and orders that
defeat the sample. Then top-k's two draws (on the candidates' own noise, or
the masked pass) against each other and against gumbel_argmax over the kept
set. Every kernel set, both dtypes."""

import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core

from test_sample import masked, ref_kept_rows
from test_sample_select import ref_topk

# tiles: 1, 4, 8, 16 lanes; 64 sample values (rows from 128 take the sample);
# 1024 candidates in the buffer (up to k = 256)
SIZES = [2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 127, 128, 129, 255, 257, 1000, 1023, 1024, 1025, 1041, 4099]


def rows_of(kind, n, dtype, g):
    if kind == "normal":
        x = g.normal(0, 3, (3, n))
    elif kind == "ties":  # few distinct values: ties at the k-th, prunes that keep ties
        x = np.round(g.normal(0, 1, (3, n)))
    elif kind == "equal":
        x = np.zeros((3, n))
    elif kind == "ascending":  # the best at the end: prunes raise the threshold late
        x = np.sort(g.normal(0, 1, (3, n)), axis=-1)
    elif kind == "descending":
        x = -np.sort(g.normal(0, 1, (3, n)), axis=-1)
    elif kind == "spikes":  # the sample sees none of the best: fewer than k reach its threshold
        x = g.normal(0, 1, (3, n))
        x[:, 1::7] += 20
    elif kind == "neginf":  # most -inf: fewer finite values than k on some rows
        x = g.normal(0, 1, (3, n))
        x[g.random(x.shape) < 0.8] = -np.inf
        x[:, n // 2] = 0.5  # one finite value per row at least
    else:
        raise AssertionError(kind)
    return x.astype(dtype)


def ks_for(n):
    return sorted({k for k in (2, 3, 5, n // 9 + 2, n // 3, n - 1, 255, 256, 257) if 1 <= k < n})


@pytest.mark.parametrize("kind", ["normal", "ties", "equal", "ascending", "descending", "spikes", "neginf"])
def test_topk_against_stable_sort(isa, dtype, kind):
    g = np.random.default_rng(len(kind))
    for n in SIZES:
        x = rows_of(kind, n, dtype, g)
        for k in ks_for(n):
            values, indices = ssm.topk(x, k)
            want_values, want_indices = ref_topk(x, k)
            np.testing.assert_array_equal(indices, want_indices, err_msg=f"{kind} n={n} k={k}")
            np.testing.assert_array_equal(values, want_values)


def test_topk_prunes_and_infinities(isa, dtype):
    # long enough for several prunes of the buffer (the sample places the first
    # threshold low), with +inf among the best and ties at the k-th value
    g = np.random.default_rng(3)
    for n in (9000, 20000, 65535):
        x = np.round(g.normal(0, 2, (2, n)) * 8) / 8
        x[0, g.integers(0, n, 5)] = np.inf
        x[1, : n // 2] = -np.inf
        x = x.astype(dtype)
        for k in (2, 40, 100, 256):
            values, indices = ssm.topk(x, k)
            want_values, want_indices = ref_topk(x, k)
            np.testing.assert_array_equal(indices, want_indices, err_msg=f"n={n} k={k}")
            np.testing.assert_array_equal(values, want_values)


def test_nan_is_reported(isa, dtype):
    for n in (17, 1000, 4099):
        x = np.random.default_rng(n).normal(0, 1, (3, n)).astype(dtype)
        x[1, n // 2] = np.nan
        with pytest.raises(ValueError, match=r"row \(1,\).*NaN"):
            ssm.topk(x, max(2, n // 5))
        with pytest.raises(ValueError, match=r"row \(1,\).*NaN"):
            ssm.sample(x, top_k=max(2, n // 5))


@pytest.mark.parametrize("kind", ["normal", "ties", "equal", "spikes", "neginf"])
def test_sample_top_k_per_row_is_gumbel_argmax_over_the_kept_set(isa, dtype, kind):
    g = np.random.default_rng(11)
    for n in (16, 17, 64, 129, 1000, 1025):
        x = rows_of(kind, n, dtype, g)
        top_k = np.array([2, n // 3 + 1, n + 5])  # per row; k >= n keeps every finite value
        for params in (dict(top_k=top_k), dict(top_k=top_k, top_p=0.8), dict(top_k=top_k, min_p=0.1)):
            kept = ref_kept_rows(x, **params)
            for seed in (0, 5):
                got = ssm.sample(x, rng=seed, **params)
                np.testing.assert_array_equal(got, ssm.gumbel_argmax(masked(x, kept), rng=seed), err_msg=f"{n}")
            greedy = ssm.sample(x, temperature=0, **params)
            np.testing.assert_array_equal(greedy, np.argmax(np.where(kept, x, -np.inf), axis=-1))


@pytest.mark.parametrize("n", [16, 64, 256, 1000, 1025, 4096, 32768])
@pytest.mark.parametrize("k", [1, 2, 8, 20, 50, 200])
def test_top_k_draws_agree(isa, dtype, n, k):
    # top-k's two draws, on the candidates' own noise (1) or by the masked
    # pass (2): the same tokens and log-probabilities, whichever the rule picks
    if k >= n:
        return
    g = np.random.default_rng(n + k)
    x = np.stack([g.normal(0, 3, n), np.round(g.normal(0, 1, n))]).astype(dtype)
    params = [dict(top_k=k), dict(top_k=k, top_p=0.9, min_p=0.05, temperature=0.7)]
    for p in params:
        got = {}
        previous = _core.sample_top_k_draw(0)
        try:
            for how in (0, 1, 2):
                _core.sample_top_k_draw(how)
                got[how] = ssm.sample(x, rng=3, logprobs="processed", **p)
        finally:
            _core.sample_top_k_draw(previous)
        for how in (1, 2):
            np.testing.assert_array_equal(got[how][0], got[0][0], err_msg=f"{p} how={how}")
            np.testing.assert_array_equal(got[how][1], got[0][1])
        kept = ref_kept_rows(x, **p)
        want = ssm.gumbel_argmax(masked(x, kept), temperature=p.get("temperature", 1.0), rng=3)
        np.testing.assert_array_equal(got[0][0], want)


@pytest.fixture
def select_method():
    """Set the k-best selection's method (0 rule, 1 buffer, 2 heap); put the rule back after."""
    yield _core.sample_select_method
    _core.sample_select_method(0)


@pytest.mark.parametrize("kind", ["normal", "ties", "ascending", "spikes", "neginf"])
def test_buffer_and_heap_agree_everywhere(isa, dtype, kind, select_method):
    # each method forced where the rule would take the other one (k < 8,
    # more than 256 values per kept one, rows of a sampled floor)
    g = np.random.default_rng(7 + len(kind))
    for n in (9, 64, 1000, 4099, 70001):
        x = rows_of(kind, n, dtype, g)
        for k in sorted({min(n, k) for k in (1, 2, 7, 8, 16, 64, 256)}):
            want_values, want_indices = ref_topk(x, k)
            for method in (1, 2):
                select_method(method)
                values, indices = ssm.topk(x, k)
                np.testing.assert_array_equal(indices, want_indices, err_msg=f"{kind} n={n} k={k} method={method}")
                np.testing.assert_array_equal(values, want_values)
            tokens = [None, None]
            for method in (1, 2):
                select_method(method)
                tokens[method - 1] = ssm.sample(x, top_k=k, top_p=0.9, rng=5)
            np.testing.assert_array_equal(tokens[0], tokens[1], err_msg=f"{kind} n={n} k={k}")
