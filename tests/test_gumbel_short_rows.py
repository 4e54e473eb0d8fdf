"""The short-row path of gumbel_argmax / gumbel_topk / sample (rows of at most
`gumbel.short_rows` elements, several rows per batch): bit-identical to the
row-by-row walk (the path switched off with
_core.testing.set_gumbel_short_rows_max(0)) in indices and scores, on every
kernel set, for every thread count, at every row length that crosses a vector,
group, tile or batch boundary; and the order of the perturbed scores
x / T + g computed from the noise itself.
"""
import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core
from tiles import tiles

INV_T = 1 / 1.3
KEY = (7, 8, 9)
ISAS = ssm.available_isas()
# every length up to two 16-lane vectors and one more, then the group, tile and
# gate boundaries up to the path's limit (256) and just past it
SIZES = list(range(1, 34)) + [47, 48, 49, 63, 64, 65, 100, 127, 128, 129, 191, 192, 193, 255, 256, 257]


@pytest.fixture(autouse=True)
def short_rows_on():
    """Every test starts and ends with the path at its own limit."""
    _core.testing.set_gumbel_short_rows_max(1 << 30)
    yield
    _core.testing.set_gumbel_short_rows_max(1 << 30)


def topk(x, k, short, row_base=0, col_base=0, inv_temp=INV_T):
    """(status, indices, scores) of the kernel call, the short-row path on or off."""
    _core.testing.set_gumbel_short_rows_max(1 << 30 if short else 0)
    idx = np.full((x.shape[0], k), -1, np.intp)
    sc = np.full((x.shape[0], k), np.nan)
    status = _core.gumbel_topk(x, k, inv_temp, *KEY, idx, sc, True, row_base, col_base)
    return status, idx, sc


def noise(shape, dtype, row_base=0, col_base=0):
    g = np.empty(shape, dtype)
    _core.testing.gumbel_noise(g, *KEY, row_base, col_base)
    return g


def rows_for(isa, dtype, n):
    """A row count that leaves a partial batch: two batches and 3 rows more."""
    per_batch = max(1, tiles(isa, dtype)["gumbel.short_batch"] // n)
    return 2 * per_batch + 3


def ks(n):
    return range(1, n + 1) if n <= 9 else sorted({1, 2, 3, n // 2, n - 1, n})


def test_tiles_name_the_limit_and_batch(isa, dtype):
    t = tiles(isa, dtype)
    assert t["gumbel.short_rows"] == 256
    assert t["gumbel.short_batch"] >= t["gumbel.short_rows"]


@pytest.mark.parametrize("part", range(4))
def test_identical_to_the_row_walk_and_the_noise_order(isa, dtype, part):
    rng = np.random.default_rng(part)
    for n in SIZES[part::4]:
        x = (rng.standard_normal((rows_for(isa, dtype, n), n)) * 3).astype(dtype)
        score = (x * dtype.type(INV_T) + noise(x.shape, dtype)).astype(np.float64)
        order = np.lexsort((np.broadcast_to(np.arange(n), x.shape), -score), axis=1)
        for k in ks(n):
            got = topk(x, k, True)
            want = topk(x, k, False)
            assert got[0] == want[0] == (-1, ""), (n, k)
            assert np.array_equal(got[1], want[1]) and np.array_equal(got[2], want[2]), (n, k)
            assert np.array_equal(got[1], order[:, :k]), (n, k)


def test_identical_across_isas(dtype):
    rng = np.random.default_rng(3)
    for n in (1, 5, 8, 16, 17, 64, 100, 256):
        x = rng.standard_normal((301, n)).astype(dtype)
        for k in sorted({1, min(2, n), n}):
            results = []
            for name in ISAS:
                with ssm.use_isa(name):
                    results.append(topk(x, k, True))
            for r in results[1:]:
                assert np.array_equal(r[1], results[0][1]) and np.array_equal(r[2], results[0][2]), (n, k)



def small_row_counts(isa, dtype, n):
    """Calls of fewer rows than a batch get a batch of just their rows: 1 to 3
    rows, and a batch's worth less one, exactly, and one more."""
    per_batch = max(1, tiles(isa, dtype)["gumbel.short_batch"] // n)
    return sorted({1, 2, 3, per_batch - 1, per_batch, per_batch + 1} - {0})


def test_calls_smaller_than_a_batch(isa, dtype):
    """Few rows (a single row of 16, say): the row walk's bits, from any column
    (col_base 0 reads the words in place for rows up to 16, others gather
    them), and the first bad row reported as the row walk reports it."""
    rng = np.random.default_rng(12)
    for n in (1, 3, 8, 15, 16, 17, 64, 100, 256):
        for rows in small_row_counts(isa, dtype, n):
            x = (rng.standard_normal((rows, n)) * 3).astype(dtype)
            for k in sorted({1, min(2, n), n}):
                for col_base in (0, 5, 60):
                    got = topk(x, k, True, 3, col_base)
                    want = topk(x, k, False, 3, col_base)
                    assert got[0] == want[0] == (-1, ""), (n, rows, k)
                    assert np.array_equal(got[1], want[1]) and np.array_equal(got[2], want[2]), (n, rows, k, col_base)
            x[rows // 2, n - 1] = np.nan
            assert topk(x, 1, True)[0] == topk(x, 1, False)[0] == (rows // 2, "contains NaN")

@pytest.mark.parametrize("n", [3, 16, 40, 200])
def test_offsets_rows_and_columns(isa, dtype, n):
    """A block of a larger array (row_base, col_base) draws the noise the whole
    array would: blocks from any column, across groups and tiles."""
    rng = np.random.default_rng(n)
    x = rng.standard_normal((97, n)).astype(dtype)
    for row_base, col_base in ((0, 0), (5, 1), (2**32 - 3, 15), (1, 60), (0, 1000), (7, 2**40 + 17)):
        for k in (1, 2, n):
            got = topk(x, k, True, row_base, col_base)
            want = topk(x, k, False, row_base, col_base)
            assert got[0] == (-1, "")
            assert np.array_equal(got[1], want[1]) and np.array_equal(got[2], want[2]), (row_base, col_base, k)
        score = (x * dtype.type(INV_T) + noise(x.shape, dtype, row_base, col_base)).astype(np.float64)
        first = np.lexsort((np.broadcast_to(np.arange(n), x.shape), -score), axis=1)[:, 0]
        assert np.array_equal(topk(x, 1, True, row_base, col_base)[1][:, 0], first + col_base)


def test_open_groups(isa, dtype):
    """Enough rows that many groups hold a top element (1 in ~270 groups)."""
    rng = np.random.default_rng(8)
    for n in (8, 16, 33, 250):
        x = np.zeros((30000 // n * 4, n), dtype) + rng.standard_normal(n).astype(dtype)
        for k in (1, 2, 4):
            got, want = topk(x, k, True), topk(x, k, False)
            assert np.array_equal(got[1], want[1]) and np.array_equal(got[2], want[2]), (n, k)


def test_masked_entries(isa, dtype):
    rng = np.random.default_rng(4)
    for n in (2, 7, 16, 31, 64, 130):
        x = rng.standard_normal((150, n)).astype(dtype)
        x[rng.random(x.shape) < 0.5] = -np.inf
        x[:, n // 2] = 0.5  # every row has a finite logit
        finite = np.isfinite(x).sum(axis=1)
        for k in (1, 2):
            rows = finite >= k
            got, want = topk(x[rows], k, True), topk(x[rows], k, False)
            assert got[0] == (-1, "")
            assert np.array_equal(got[1], want[1]) and np.array_equal(got[2], want[2])
            assert np.all(np.isfinite(x[rows][np.arange(rows.sum())[:, None], got[1]]))


@pytest.mark.parametrize("bad, reason", [
    (-np.inf, "has no finite logit"), (np.nan, "contains NaN"), (np.inf, "contains +inf"),
])  # fmt: skip
def test_bad_rows_report_the_first_one(isa, dtype, bad, reason):
    for n in (1, 8, 20, 256):
        x = np.random.default_rng(n).standard_normal((70, n)).astype(dtype)
        x[40, :] = -np.inf
        x[40, -1] = bad
        x[60, :] = np.nan  # a later bad row
        got, want = topk(x, 1, True), topk(x, 1, False)
        assert got[0] == want[0] == (40, reason)
        with pytest.raises(ValueError, match=r"row \(40,\)"):
            ssm.gumbel_argmax(x, rng=1)
        with pytest.raises(ValueError, match=r"row \(40,\)"):
            ssm.sample(x, rng=1)


def test_k_beyond_the_finite_logits(isa, dtype):
    x = np.zeros((20, 12), dtype)
    x[7, 2:] = -np.inf  # two finite logits
    for k in (3, 12):
        got, want = topk(x, k, True), topk(x, k, False)
        assert got[0] == want[0] == (7, "has fewer finite logits than k")
    got = topk(x, 2, True)
    assert got[0] == (-1, "") and sorted(got[1][7]) == [0, 1]


def test_ties_go_to_the_lower_index(isa, dtype):
    """Logits so large that the noise vanishes in the sum: the scores of a row
    tie wherever its logits do, and the draws are its logits' stable order,
    also where a larger logit comes after tied ones (each list it enters moves
    them down, the lower index kept first): rows placed across rows (n = 10)
    and one at a time into a vector (n = 100), k on both sides of the lanes."""
    lanes = tiles(isa, dtype)["gumbel.lanes"]
    for n in (10, 100):
        x = np.full((40, n), 2.0**100, dtype)
        x[::3, :4] = -np.inf
        x[1::3, 7] = 2.0**101
        x[2::3, n - 1] = 2.0**101
        order = np.lexsort((np.broadcast_to(np.arange(n), x.shape), -x.astype(np.float64)), axis=1)
        for k in sorted({1, 2, 3, 5, lanes - 1, lanes, lanes + 1} & set(range(1, n - 3))):
            got, want = topk(x, k, True, inv_temp=1.0), topk(x, k, False, inv_temp=1.0)
            assert np.array_equal(got[1], want[1]) and np.array_equal(got[2], want[2]), (n, k)
            assert np.array_equal(got[1], order[:, :k]), (n, k)


def test_public_functions_and_sample(isa, dtype):
    """gumbel_argmax, gumbel_topk and sample without filters: the same draws
    with the path on and off, at several temperatures; sample's per-row
    temperatures (not the short path) still equal gumbel_argmax row by row."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 1000, 8)).astype(dtype)
    results = []
    for limit in (1 << 30, 0):
        _core.testing.set_gumbel_short_rows_max(limit)
        results.append([
            ssm.gumbel_argmax(x, temperature=t, rng=2) for t in (1.0, 0.3, 1e-30, 50.0)
        ] + [ssm.gumbel_topk(x, 2, rng=2), ssm.sample(x, rng=2), ssm.sample(x, temperature=0.3, top_p=1.0, rng=2)])
    for a, b in zip(*results):
        assert np.array_equal(a, b)
    assert np.array_equal(results[0][5], results[0][0])
    assert np.array_equal(results[0][6], results[0][1])
    _core.testing.set_gumbel_short_rows_max(1 << 30)
    temps = np.where(np.arange(1000) % 2 == 0, 1.0, 0.3)
    got = ssm.sample(x[0], temperature=temps, rng=2)
    assert np.array_equal(got[::2], ssm.gumbel_argmax(x[0], rng=2)[::2])
    assert np.array_equal(got[1::2], ssm.gumbel_argmax(x[0], temperature=0.3, rng=2)[1::2])


@pytest.mark.parametrize("n", [8, 64, 256])
def test_identical_across_thread_counts(isa, dtype, n, restore_settings):
    x = np.random.default_rng(n).standard_normal((20000 // n * 8 + 5, n)).astype(dtype)
    _core.testing.set_parallel_min(0)
    results = []
    for threads in (1, 2):
        ssm.set_num_threads(threads)
        results.append((ssm.gumbel_argmax(x, rng=3), ssm.gumbel_topk(x, 2, rng=3), ssm.sample(x, rng=3)))
    for a, b in zip(*results):
        assert a.tobytes() == b.tobytes()


def test_k_either_side_of_the_lanes(isa, dtype, restore_settings):
    """k > 2 keeps the k best in one vector (k up to a vector's lanes, AVX-512
    and AVX2) or, for rows up to gumbel.interleaved_rows on AVX-512 when a batch holds a
    vector's lanes of rows, in per-row lists placed across rows: k = lanes - 1,
    lanes, lanes + 1, on both sides of every routing limit (interleaved rows,
    the short-row path, the row walk's pruning span), with masked entries,
    rows of too few finite logits and a NaN row, against the order of the
    perturbed scores, the path on and off, pruned and not, and rows split into
    chunks (each chunk starting from the best k-th another one found)."""
    t = tiles(isa, dtype)
    lanes, inter, short = t["gumbel.lanes"], t["gumbel.interleaved_rows"], t["gumbel.short_rows"]
    span = t["gumbel.gate_span"]
    rng = np.random.default_rng(31)
    for n in sorted({3, 4, inter // 2, inter - 1, inter, inter + 1, short - 1, short, short + 1, span - 1, span}):
        rows = min(rows_for(isa, dtype, n), 70)
        x = (rng.standard_normal((rows, n)) * 3).astype(dtype)
        x[1, ::2] = -np.inf
        x[2, :] = 1.5  # the noise alone orders it
        score = (x * dtype.type(INV_T) + noise(x.shape, dtype)).astype(np.float64)
        order = np.lexsort((np.broadcast_to(np.arange(n), x.shape), -score), axis=1)
        for k in sorted({3, lanes - 1, lanes, lanes + 1} & set(range(3, n + 1))):
            finite_ok = (n + 1) // 2 >= k  # row 1 keeps every other logit
            want_status = (-1, "") if finite_ok else (1, "has fewer finite logits than k")
            results = [topk(x, k, short_on) for short_on in (True, False)]
            idx = np.full((rows, k), -1, np.intp)
            sc = np.full((rows, k), np.nan)
            results.append((_core.gumbel_topk(x, k, INV_T, *KEY, idx, sc, False, 0, 0), idx, sc))
            for status, got_idx, got_sc in results:
                assert status == want_status, (n, k)
                if finite_ok:
                    assert np.array_equal(got_idx, order[:, :k]), (n, k)
                    assert np.array_equal(got_sc, np.take_along_axis(score, order[:, :k], axis=1)), (n, k)
            bad = x.copy()
            bad[rows - 1, n // 2] = np.nan
            first = (rows - 1, "contains NaN") if finite_ok else want_status
            assert topk(bad, k, True)[0] == topk(bad, k, False)[0] == first, (n, k)
            if finite_ok:
                for chunk in (37, k + 1):
                    _core.testing.set_chunking(chunk, 2)
                    got = ssm.gumbel_topk(x, k, temperature=1.3, rng=4)
                    _core.testing.set_chunking(1 << 16, 1 << 24)
                    assert np.array_equal(got, ssm.gumbel_topk(x, k, temperature=1.3, rng=4)), (n, k, chunk)
