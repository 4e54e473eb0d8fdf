"""top-p's finish over the collected values: equal-width value buckets with
exact mass sums locate the boundary, and only the boundary bucket's values
go through the exact walk. Rows built so that the boundary falls at bucket
edges, inside big tie groups, between values one ulp apart, across value
ranges that overflow a float64 difference, and with -inf masks, flat and
peaked rows, tiny and huge spreads and top_p close to 1; each checked against
the sorted float64 reference through the exact gumbel_argmax property, on
every kernel set and both dtypes (float64 also through the kept mass)."""

import numpy as np
import pytest

from test_sample_top_p import check_row

# short rows (collected whole), rows through the sampled zone
SIZES = [65, 66, 97, 1000, 4096, 4097, 30000]


@pytest.mark.parametrize("n", SIZES)
def test_boundary_in_tie_groups(isa, dtype, n):
    g = np.random.default_rng(n)
    # few distinct values, each shared by many tokens: buckets and ties align
    x = np.round(g.normal(0, 1, n) * 4) / 4
    for top_p in (0.1, 0.5, 0.9, 0.99):
        check_row(x.astype(dtype), 1.0, top_p, seeds=(1,))
    # two values only: the top group alone or both
    x = np.where(g.random(n) < 0.3, 1.0, 0.0)
    x[0] = 1.0
    for top_p in (0.05, 0.5, 0.999):
        check_row(x.astype(dtype), 0.7, top_p, seeds=(2,))


@pytest.mark.parametrize("n", SIZES)
def test_boundary_at_bucket_edges(isa, dtype, n):
    # evenly spaced values: equal-width buckets cut exactly between them
    x = np.linspace(-3.0, 3.0, n)
    np.random.default_rng(n).shuffle(x)
    for top_p in (0.25, 0.5, 0.75, 0.95):
        for t in (0.5, 1.0, 4.0):
            check_row(x.astype(dtype), t, top_p, seeds=(3,))


@pytest.mark.parametrize("n", [100, 5000])
def test_values_one_ulp_apart(isa, dtype, n):
    values = [np.array(1.0, dtype)]
    for _ in range(6):  # seven consecutive values of the dtype
        values.append(np.nextafter(values[-1], np.array(2.0, dtype)))
    x = np.array(values, dtype)[np.arange(n) % 7]
    for top_p in (0.2, 0.6, 0.99):
        check_row(x, 1.0, top_p, seeds=(4,))


def test_range_beyond_a_float64_difference(isa):
    # vmax - vmin overflows: one bucket, the exact walk alone
    g = np.random.default_rng(7)
    for n in (200, 5000):
        x = g.normal(0, 1, n)
        x[g.random(n) < 0.3] = -1e308
        x[1] = 1e308
        x[2] = 1e308 * (1 - 1e-15)
        with np.errstate(over="ignore"):  # the reference's x - max: -inf, mass 0 as in the kernels
            check_row(x, 1e308, 0.9, seeds=(5,))
            check_row(x, 1.0, 0.5, seeds=(5,))


@pytest.mark.parametrize("kind", ["masked", "flat", "peaked", "tiny", "huge"])
@pytest.mark.parametrize("top_p", [0.5, 0.9, 0.999, 1 - 1e-9])
def test_row_kinds(isa, dtype, kind, top_p):
    for n in (70, 3001, 20000):
        g = np.random.default_rng(n)
        x = g.normal(0, 1, n)
        if kind == "masked":
            x[g.random(n) < 0.6] = -np.inf
            x[5] = 0.0
        elif kind == "flat":
            x = np.zeros(n)
            x[:3] = 1e-3
        elif kind == "peaked":
            x[n // 2] = 9.0
        elif kind == "tiny":
            x *= 1e-6
        elif kind == "huge":
            x *= 40.0
        check_row(x.astype(dtype), 0.7, top_p, seeds=(6,))
