"""top-p on short rows (at most 4096 values): the finite values are collected
and each one's exact mass is computed once, for the total and the finish, with
no mass pass. Batches of such rows (MoE routers, small vocabularies) with one
top_p per row, against the sorted float64 reference of test_sample_top_p
through the exact property sample == gumbel_argmax(logits with the dropped
tokens at -inf) for the same rng state; row lengths around the vector tails
and the 4096 limit; ties at the threshold, -inf entries, flat and peaked
rows; on every kernel set, and bit for bit across kernel sets, thread counts
and chunkings (the kept mass through the processed log-probability)."""

import math

import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core

from test_sample_top_p import check_row, masked, ref_top_p

SIZES = [1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 66, 1000, 4095, 4096, 4097]


def rows_of_kinds(n, g):
    """Normal rows of several spreads, rounded (ties), flat, peaked, and with
    -inf entries."""
    rows = [g.normal(0, 3, n), g.normal(0, 0.3, n), np.round(g.normal(0, 1.5, n)), np.zeros(n)]
    peaked = g.normal(0, 1, n)
    peaked[n // 2] = 40.0
    rows.append(peaked)
    holes = g.normal(0, 1, n)
    holes[g.random(n) < 0.6] = -np.inf
    holes[n - 1] = 0.25
    rows.append(holes)
    return rows


@pytest.mark.parametrize("n", SIZES)
def test_batches_with_a_top_p_per_row(isa, dtype, n):
    g = np.random.default_rng(n)
    x = np.stack(rows_of_kinds(n, g)).astype(dtype)
    top_p = np.linspace(0.05, 0.999, x.shape[0])
    temperature = np.array([1.0, 0.7, 1.3, 1.0, 2.0, 0.5])
    kept = np.stack([ref_top_p(x[r], temperature[r], top_p[r]) for r in range(x.shape[0])])
    x2 = np.stack([masked(x[r], kept[r]) for r in range(x.shape[0])])
    for seed in (0, 1):
        got = ssm.sample(x, temperature=temperature, top_p=top_p, rng=seed)
        for r in range(x.shape[0]):
            # row r's noise is the batch's row r: gumbel_argmax of the masked batch at row r's temperature
            assert got[r] == ssm.gumbel_argmax(x2, temperature=temperature[r], rng=seed)[r], (n, r, seed)
            assert kept[r, got[r]]


@pytest.mark.parametrize("n", SIZES)
def test_each_row_kind_against_the_reference(isa, dtype, n):
    g = np.random.default_rng(1000 + n)
    for x in rows_of_kinds(n, g):
        for top_p in (0.2, 0.9, 0.99):
            check_row(x.astype(dtype), 0.8, top_p, seeds=(n,))


@pytest.mark.parametrize("n", [8, 64, 1000, 4096])
def test_ties_at_the_threshold(isa, dtype, n):
    # the boundary inside a group of equal values: the whole group kept
    x = np.full(n, -3.0)
    x[: max(1, n // 2)] = 1.0
    x[0] = 2.0
    kept = check_row(x.astype(dtype), 1.0, 0.5)
    assert kept[: max(1, n // 2)].all()
    # the boundary exactly at a group's end (masses 1 + 1 of 4 equal groups)
    x = np.repeat(np.array([3.0, 2.0, 1.0, 0.0]), max(1, n // 4))
    for top_p in (0.25, 0.5, 0.75):
        check_row(x.astype(dtype), 1.0, top_p)


def test_identical_across_isas_threads_and_chunkings(restore_settings):
    g = np.random.default_rng(11)
    for n in (8, 64, 1000, 4096):
        x = np.stack(rows_of_kinds(n, g))
        for dtype in (np.float32, np.float64):
            xs = x.astype(dtype)
            top_p = np.linspace(0.3, 0.99, xs.shape[0])
            results = []
            for isa in ssm.available_isas():
                with ssm.use_isa(isa):
                    for chunking, threads in [((1 << 16, 1 << 24), 1), ((13, 64), 2), ((1000, 2000), 2)]:
                        _core.testing.set_chunking(*chunking)
                        _core.testing.set_parallel_min(0)
                        ssm.set_num_threads(threads)
                        tok, lp = ssm.sample(xs, rng=5, top_p=top_p, logprobs="processed")
                        results.append((isa, chunking, threads, tok.tolist(), lp.tolist()))
            for isa, chunking, threads, tok, lp in results[1:]:
                assert (tok, lp) == tuple(results[0][3:]), (n, dtype, isa, chunking, threads)


def test_processed_logprob_is_the_kept_mass(isa):
    g = np.random.default_rng(3)
    for n in (8, 64, 1000, 4096):
        x = g.normal(0, 2, (4, n))
        top_p = np.array([0.5, 0.8, 0.9, 0.97])
        tok, lp = ssm.sample(x, top_p=top_p, rng=2, logprobs="processed")
        for r in range(4):
            kept = ref_top_p(x[r], 1.0, top_p[r])
            z = x[r][kept]
            want = x[r][tok[r]] - (z.max() + math.log(math.fsum(np.exp(z - z.max()))))
            np.testing.assert_allclose(lp[r], want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("n", [8, 64, 65, 943, 944, 1000, 1601, 1602, 4096])
@pytest.mark.parametrize(
    "params",
    [dict(top_k=50), dict(top_k=5), dict(top_k=50, top_p=0.9), dict(top_k=50, min_p=0.05),
     dict(top_k=50, top_p=0.9, min_p=0.05)],
)
def test_top_k_on_short_rows(isa, dtype, n, params):
    # top-k draws over its candidates' own noise only when 24 x their count
    # <= n + 256 (943 / 944 straddle that for 50 candidates); otherwise the
    # masked pass: the same tokens and scores either way
    from test_sample import ref_kept_rows

    g = np.random.default_rng(n)
    x = np.stack([g.normal(0, 3, n), np.round(g.normal(0, 1, n)), np.zeros(n)]).astype(dtype)
    kept = ref_kept_rows(x, **params)
    for seed in (0, 7):
        got = ssm.sample(x, rng=seed, **params)
        np.testing.assert_array_equal(got, ssm.gumbel_argmax(masked(x, kept), rng=seed))
