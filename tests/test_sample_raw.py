"""sample(logprobs="raw"): log_softmax(logits)[token] from the row's fast
sum and its certified shift (the first pass of log_softmax: for float32 rows
its float32 table-exp sums, else the float64 sum), or the exact
max-relative pass where the shift is not certified (a dominant entry,
lse - max tiny). Checked against a long double reference on every kernel
set, for every path, chunked rows and thread counts."""

import math

import numpy as np
import pytest

import simdsoftmax as ssm


def ref_log_softmax(x):
    """log_softmax of each row in long double."""
    x = np.asarray(x, np.longdouble)
    m = x.max(axis=-1, keepdims=True)
    return x - (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))


def assert_raw_close(x, tokens, raw):
    """Within 2 ulp of the reference in the result's dtype (plus 4 ulp of the
    log-sum-exp for float64, whose x - lse cancels)."""
    ref = ref_log_softmax(x)[np.arange(x.shape[0]), tokens]
    lse = np.abs(np.asarray(x, np.longdouble).max(-1)) + 20
    eps = np.finfo(raw.dtype).eps
    err = np.abs(raw.astype(np.longdouble) - ref)
    bound = 2 * eps * np.abs(ref) + (4 * eps * lse if raw.dtype == np.float64 else np.finfo(np.float32).tiny)
    assert np.all(err <= bound), (err / np.maximum(np.abs(ref), 1e-300)).max()


def rows_of_kind(kind, dtype, g):
    if kind == "normal":
        return g.normal(0, 3, (4, 5000)).astype(dtype)
    if kind == "dominant":  # lse - max ~ 1e-9: the shift is not certified, the exact pass
        x = g.normal(0, 1, (4, 300)).astype(dtype)
        x[:, 7] = 30.0
        return x
    if kind == "masked":  # -inf entries and a single finite one in a row
        x = g.normal(0, 1, (3, 2000)).astype(dtype)
        x[:, ::3] = -np.inf
        x[2, :] = -np.inf
        x[2, 11] = 0.5
        return x
    if kind == "large":  # |x| ~ 1e4: lse - max in float64 loses nothing
        return (g.normal(0, 1, (3, 1000)) + 1e4).astype(dtype)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["normal", "dominant", "masked", "large"])
@pytest.mark.parametrize("params", [dict(), dict(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05),
                                    dict(temperature=0.7, top_p=0.95), dict(min_p=0.1)])
def test_raw_against_long_double(isa, dtype, kind, params):
    x = rows_of_kind(kind, dtype, np.random.default_rng(3))
    tokens, raw = ssm.sample(x, rng=5, logprobs="raw", **params)
    np.testing.assert_array_equal(tokens, ssm.sample(x, rng=5, **params))
    assert raw.dtype == dtype
    assert_raw_close(x, tokens, raw)


@pytest.mark.parametrize("threads", [1, 2])
def test_raw_chunked_rows(isa, dtype, small_chunks, threads):
    small_chunks(threads)
    g = np.random.default_rng(4)
    for n in (101, 37 * 8, 37 * 8 + 1, 5000):
        x = g.normal(0, 2, (3, n)).astype(dtype)
        for params in (dict(), dict(top_k=5, temperature=0.5)):
            tokens, raw = ssm.sample(x, rng=9, logprobs="raw", **params)
            assert_raw_close(x, tokens, raw)


def test_raw_dominant_entry_keeps_relative_accuracy(isa, dtype):
    # log_softmax of the dominant entry is -log1p(sum of the others' masses): tiny,
    # and relatively accurate only through the exact pass's log1p.
    x = np.full((1, 1000), -40.0, dtype)
    x[0, 3] = 0.0
    tokens, raw = ssm.sample(x, temperature=0, rng=0, logprobs="raw")
    assert int(tokens[0]) == 3
    expected = -np.log1p(999 * np.exp(np.longdouble(-40.0)))
    assert abs(float(raw[0]) - float(expected)) <= 4 * np.finfo(dtype).eps * abs(float(expected))


@pytest.mark.parametrize("n", [40, 511, 1000, 5000])
def test_raw_across_the_shift_certificates(isa, dtype, n):
    """One entry L above the rest (N(0, 0.1)), so that lse - max = v sweeps
    1e-11 .. 1: float32 rows take log_softmax's float32 table-exp sum (the
    cheaper one first from 512 values, expsum_lse32 again where only its
    bound certifies, ~5e-7 < v < 7e-6 at n = 1000), the float64 sum where
    neither certifies, and the exact pass below that; float64 rows the
    float64 sum or the exact pass. The dominant token's logprob (-v, greedy)
    is the hardest: relative accuracy however small v is; the drawn tokens'
    too."""
    g = np.random.default_rng(n)
    rows = []
    for v in np.geomspace(1e-11, 1.0, 23):
        x = g.normal(0, 0.1, n)
        x[n // 3] = 0.0
        others = np.delete(x, n // 3)
        # the dominant entry L above: sum over the others of exp(x - L) = v
        lift = math.log(math.fsum(np.exp(others)) / v)
        rows.append(np.where(np.arange(n) == n // 3, lift, x))
    x = np.array(rows).astype(dtype)
    tokens, raw = ssm.sample(x, temperature=0, rng=0, logprobs="raw")
    np.testing.assert_array_equal(tokens, n // 3)
    assert_raw_close(x, tokens, raw)
    for params in (dict(), dict(temperature=0.7, top_p=0.95), dict(temperature=2.0, top_k=5)):
        tokens, raw = ssm.sample(x, rng=3, logprobs="raw", **params)
        assert_raw_close(x, tokens, raw)


@pytest.mark.parametrize("threads", [1, 2])
def test_raw_top_k_from_the_logsumexp_pass(isa, small_chunks, threads):
    """float32 top-k draws take their raw logprob from logsumexp's own pass
    where lse - max, guessed from the candidates and 64 values spread over
    the row, is large, and the token's bound is checked: N(0, 1) rows of
    20,000 (lse - max ~ 7: that pass), and rows whose spread sample
    overstates the rest (the 64 sampled values 0, the others -30, five at 3:
    guessed ~6.9, in truth ~2.1, so the bound fails and log_softmax's pass
    runs)."""
    small_chunks(threads)
    g = np.random.default_rng(12)
    n = 20_000
    normal = g.normal(0, 1, (3, n))
    decoy = np.full((3, n), -30.0)
    decoy[:, (n - 1) * np.arange(64) // 63] = 0.0
    decoy[:, [5, 777, 4321, 9999, 15000]] = 3.0
    for x in (normal.astype(np.float32), decoy.astype(np.float32)):
        for params in (dict(top_k=5, temperature=0.7), dict(top_k=50, top_p=0.9, min_p=0.05, temperature=0.7)):
            for seed in range(3):
                tokens, raw = ssm.sample(x, rng=seed, logprobs="raw", **params)
                np.testing.assert_array_equal(tokens, ssm.sample(x, rng=seed, **params))
                assert_raw_close(x, tokens, raw)
