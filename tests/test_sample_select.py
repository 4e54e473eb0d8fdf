"""The running k-th best behind topk() and sample(top_k=...) on rows long
enough for its sampled floor (a chunk of 65,536 values or more: only values
>= the m-th largest of a sample are looked at), including rows whose order
defeats the sample (sorted: the floor is too high and the pass starts over),
ties at the k-th value, infinities and NaN; and the top-k draw over the
candidates' own noise (gate words and top flags per element) against
gumbel_argmax over the kept set. Every kernel set, both dtypes."""

import numpy as np
import pytest

import simdsoftmax as ssm

FLOOR_ROW = 32 * 2048  # the shortest chunk that takes a sampled floor


def ref_topk(x2, k):
    order = np.argsort(-x2.astype(np.float64), axis=-1, kind="stable")[:, :k]
    return np.take_along_axis(x2, order, -1), order


def long_rows(kind, n, dtype, g):
    if kind == "normal":
        x = g.normal(0, 1, (2, n))
    elif kind == "ties":  # a few hundred distinct values: ties at the k-th
        x = np.round(g.normal(0, 1, (2, n)) * 64) / 64
    elif kind == "ascending":  # the sample's best are the row's last: too few reach its floor
        x = np.sort(g.normal(0, 1, (2, n)), axis=-1)
    elif kind == "descending":
        x = -np.sort(g.normal(0, 1, (2, n)), axis=-1)
    elif kind == "inf":
        x = g.normal(0, 1, (2, n))
        x[g.random(x.shape) < 0.5] = -np.inf
        x[0, g.integers(0, n, 3)] = np.inf
    elif kind == "neginf":  # half the row -inf (sample() refuses +inf)
        x = g.normal(0, 1, (2, n))
        x[g.random(x.shape) < 0.5] = -np.inf
    elif kind == "clustered":  # the best values in one stretch the sample may miss
        x = g.normal(0, 1, (2, n))
        x[:, n // 3 : n // 3 + 40] += 6
    else:
        raise AssertionError(kind)
    return x.astype(dtype)


@pytest.mark.parametrize("kind", ["normal", "ties", "ascending", "descending", "inf", "clustered"])
@pytest.mark.parametrize("k", [1, 8, 50, 300, 5000])
def test_topk_long_rows_against_stable_argsort(isa, dtype, kind, k):
    g = np.random.default_rng(k)
    for n in (FLOOR_ROW - 1, FLOOR_ROW, FLOOR_ROW + 37, 151_936):
        x = long_rows(kind, n, dtype, g)
        values, indices = ssm.topk(x, k)
        want_values, want_indices = ref_topk(x, k)
        np.testing.assert_array_equal(indices, want_indices, err_msg=f"{kind} n={n}")
        np.testing.assert_array_equal(values, want_values)


def test_topk_long_row_nan_is_reported(isa, dtype):
    x = np.random.default_rng(1).normal(0, 1, (3, FLOOR_ROW + 5)).astype(dtype)
    x[2, -3] = np.nan  # below any floor: still seen
    with pytest.raises(ValueError, match=r"row \(2,\).*NaN"):
        ssm.topk(x, 50)


def _masked_draw(x, k, temperature, seed):
    """gumbel_argmax over the tokens >= the k-th largest (every tie kept)."""
    kth = np.sort(x.astype(np.float64), axis=-1)[:, -k][:, None]
    m = np.where(x >= kth, x, np.array(-np.inf, x.dtype)).astype(x.dtype)
    return ssm.gumbel_argmax(m, temperature=temperature, rng=seed)


@pytest.mark.parametrize("kind", ["normal", "ties", "ascending", "neginf"])
@pytest.mark.parametrize("k", [1, 50, 3000])
def test_sample_top_k_long_rows_is_gumbel_argmax_over_the_kept_set(isa, dtype, kind, k):
    g = np.random.default_rng(7 + k)
    x = long_rows(kind, FLOOR_ROW + 11, dtype, g)
    for seed in range(4):
        got = ssm.sample(x, top_k=k, temperature=0.8, rng=seed)
        np.testing.assert_array_equal(got, _masked_draw(x, k, 0.8, seed), err_msg=f"seed {seed}")


@pytest.mark.parametrize("n", [16, 63, 64, 65, 1023, 1024, 1025, 5000])
def test_top_k_draw_over_many_candidates(isa, dtype, n):
    # k of n: many candidates, among them elements of open gate groups (their
    # noise from the group's open stream), across tile and span boundaries
    g = np.random.default_rng(n)
    x = g.normal(0, 0.3, (8, n)).astype(dtype)
    for k in sorted({1, n // 3 + 1, n - 1}):
        if not 0 < k < n:
            continue
        for seed in range(3):
            got = ssm.sample(x, top_k=k, rng=seed)
            np.testing.assert_array_equal(got, _masked_draw(x, k, 1.0, seed), err_msg=f"k={k} seed={seed}")
