"""Gumbel sampling: the generator, bit-identity across kernel sets and
chunkings, exact pruning, and the distributions the samples follow.

Statistical tests use fixed seeds (deterministic) and thresholds at which a
correct sampler fails with probability < 1e-6.
"""
import numpy as np
import pytest
from scipy import stats

import simdsoftmax as ssm
from simdsoftmax import _core
from simdsoftmax._gumbel import _key, _one_call, gumbel_argmax, gumbel_softmax, gumbel_topk
from guard_pages import guarded
from tiles import gumbel_sizes, tiles

P_FAIL = 1e-6
INV_T = 1 / 1.3
ISAS = ssm.available_isas()


def with_isa(isa, fn, *args, **kwargs):
    with ssm.use_isa(isa):
        return fn(*args, **kwargs)


# Random123's known-answer vectors for Philox4x32-10: (counter, key, output).
PHILOX_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize("ctr,key,expected", PHILOX_KAT)
def test_philox_known_answers(isa, ctr, key, expected):
    block = ctr[1] << 32 | ctr[0]
    lane = block % 16
    words = _core.testing.philox16(block - lane, ctr[2], ctr[3], key[0], key[1])
    assert tuple(int(words[16 * w + lane]) for w in range(4)) == expected


def noise(shape, dtype, key=(1, 2, 3), row_base=0, col_base=0):
    g = np.empty(shape, dtype)
    _core.testing.gumbel_noise(g, *key, row_base, col_base)
    return g


def test_noise_bit_identical_across_isas_and_offsets(dtype):
    sizes = list(range(1, 131)) + [1000, 4099]
    sizes = set(sizes[:: 1 if dtype == np.float32 else 3])
    for name in ISAS:  # every tail of the Gumbel kernels' tiles and gate span
        sizes |= set(gumbel_sizes(name, dtype))
    for n in sorted(sizes):
        ref = with_isa("scalar", noise, (3, n), dtype)
        for isa in ISAS:
            assert np.array_equal(with_isa(isa, noise, (3, n), dtype), ref), (isa, n)
    # a block of a larger array (row_base, col_base) draws the same noise
    full = noise((6, 300), dtype)
    for r0, c0 in ((0, 1), (2, 17), (5, 64), (1, 199)):
        part = noise((6 - r0, 300 - c0), dtype, row_base=r0, col_base=c0)
        assert np.array_equal(part, full[r0:, c0:])


def test_noise_is_standard_gumbel(isa, dtype):
    g = noise((1, 2_000_000), dtype).ravel().astype(np.float64)
    assert np.all(np.isfinite(g))
    assert g.min() >= -3.14 and g.max() <= 22.88  # the documented bound of 32-bit uniforms
    ks = stats.kstest(g, stats.gumbel_r.cdf)
    assert ks.pvalue > P_FAIL
    # mean gamma, variance pi^2/6 (z-test at the same failure probability)
    z = stats.norm.isf(P_FAIL / 2)
    assert abs(g.mean() - np.euler_gamma) < z * np.sqrt(np.pi**2 / 6 / g.size)
    assert abs(g.var() - np.pi**2 / 6) < z * np.sqrt(stats.gumbel_r.moment(4) / g.size) * 3


P_TOP = 2.0**-12  # an element is "top" (u >= 1 - 2^-12) with this probability
GATE_CLOSED = 0xFF0077DD
FIRST_TOP = [0x10078154, 0x200E022F, 0x301382A3, 0x401802BF, 0x501B8293, 0x601E022F, 0x701F81A3, 0x802000FF,
             0x901F8053, 0xA01DFFAF, 0xB01B7F23, 0xC017FEBF, 0xD0137E93, 0xE00DFEAF, 0xF0077F23]


def test_gate_constants():
    """The gate and first-top thresholds in philox_constants.h, recomputed
    with exact rational arithmetic."""
    from fractions import Fraction

    p = Fraction(1, 1 << 12)
    closed = (1 - p) ** 16
    assert GATE_CLOSED == int(closed * 2**32)
    for j, t in enumerate(FIRST_TOP):
        assert t == int((1 - (1 - p) ** (j + 1)) / (1 - closed) * 2**32)


def reference_uniforms(n, row, key0, key1):
    """(u, q = 1 - u, top) in float64 for elements 0..n-1 of a row (row_offset
    0), from the Philox words, as gumbel_generic.h defines the noise."""
    c2, c3 = row & 0xFFFFFFFF, row >> 32
    idx = np.arange(n)
    # fine word (i % 64) // 16 of block 16 (i // 64) + i % 16
    fine = np.concatenate([_core.testing.philox16(b, c2, c3, key0, key1) for b in range(0, n // 4, 16)])
    fine = fine.reshape(-1, 4, 16)[idx // 64, (idx % 64) // 16, idx % 16].astype(np.float64)
    # gate word (G % 64) // 16 of block 2^63 + 16 (G // 64) + G % 16, G = i // 16
    groups = np.arange(n // 16)
    gates = np.concatenate([_core.testing.philox16(2**63 + b, c2, c3, key0, key1) for b in range(0, n // 64, 16)])
    gates = gates.reshape(-1, 4, 16)[groups // 64, (groups % 64) // 16, groups % 16]
    top = np.zeros(n, bool)
    for g in np.flatnonzero(gates >= GATE_CLOSED):
        base = (4 * int(g)) // 16 * 16  # blocks 2^62 + 4g + b, b = 0, 1, 2
        out = _core.testing.philox16(2**62 + base, c2, c3, key0, key1)
        words = [int(out[16 * w + 4 * int(g) - base + b]) for b in range(3) for w in range(4)]
        first = sum(words[0] >= t for t in FIRST_TOP)
        top[16 * g + first] = True
        for m in range(first + 1, 16):
            h = m + 1
            top[16 * g + m] = (words[h // 2] >> (16 * (h % 2))) & 0xFFF == 0xFFF
    not_f = 2.0**32 - 1 - fine
    q = np.where(top, (not_f + 0.5) * 2.0**-44, P_TOP + (1 - P_TOP) * (not_f + 0.5) * 2.0**-32)
    u = np.where(top, 1 - q, (1 - P_TOP) * (fine + 0.5) * 2.0**-32)
    return u, q, top


def test_noise_tails_are_accurate():
    """Both tails: g depends on u near 0 (lower) and q = 1 - u near 0 (upper,
    down to 2^-45 for top elements); compare the kernel's g with a float64
    transform of the same Philox words."""
    n = 1 << 18
    u, q, top = reference_uniforms(n, 3, 1, 2)
    assert 30 < top.sum() < 110  # 2^18 * 2^-12 = 64 expected
    exact = -np.log(np.where(u > 0.5, -np.log1p(-q), -np.log(u)))
    assert exact[top].min() > 8.3176 > exact[~top].max()
    assert exact.max() < 31.19 and exact.min() > -3.13  # the documented bounds
    for dtype, tol in ((np.float32, 4e-6), (np.float64, 1e-13)):
        g = noise((1, n), dtype, key=(1, 2, 0), row_base=3).ravel()
        assert np.max(np.abs(g - exact) / np.maximum(1, np.abs(exact))) < tol


def test_top_elements_have_the_right_frequency():
    """The gate decides which elements are top (u >= 1 - 2^-12): over 2^25
    draws, as many g above the corresponding tail points as a Gumbel gives
    (binomial counts within 5.5 standard deviations: p_fail < 1e-7 each)."""
    n = 1 << 25
    g = noise((1, n), np.float32, key=(5, 6, 7)).ravel()
    for t in (-np.log(-np.log1p(-P_TOP)) - 1e-3, 12.5, 15.0, 8.0):
        p = -np.expm1(-np.exp(-t))
        count = int((g > t).sum())
        assert abs(count - n * p) < 5.5 * np.sqrt(n * p * (1 - p)) + 1, (t, count, n * p)


def test_topk_identical_across_isas_pruning_and_chunkings(dtype):
    rng = np.random.default_rng(5)
    cases = [rng.standard_normal((4, n)) * s for n, s in ((1, 1), (17, 3), (100, 0.1), (1000, 30), (20000, 2))]
    peaked = rng.standard_normal((3, 5000))
    peaked[:, 123] = 40  # most elements are pruned
    masked = rng.standard_normal((3, 777))
    masked[rng.random((3, 777)) < 0.6] = -np.inf
    masked[:, :3] = 0.0
    for x in cases + [peaked, masked]:
        x = x.astype(dtype)
        for k in sorted({1, 3, min(10, x.shape[1])}):
            if k > x.shape[1]:
                continue
            results = []
            for isa in ISAS:
                for prune in (True, False):
                    idx = np.empty((x.shape[0], k), np.intp)
                    sc = np.empty((x.shape[0], k))
                    assert with_isa(isa, _core.gumbel_topk, x, k, INV_T, 7, 8, 9, idx, sc, prune) == (-1, "")
                    results.append((idx, sc))
            for idx, sc in results[1:]:
                assert np.array_equal(idx, results[0][0]) and np.array_equal(sc, results[0][1])
            # the same as sorting the full perturbed scores
            # the kernel's score, x * inv_temp + g, in the data's precision
            score = ((x * dtype.type(INV_T)) + noise(x.shape, dtype, key=(7, 8, 9))).astype(np.float64)
            order = np.lexsort((np.broadcast_to(np.arange(x.shape[1]), x.shape), -score), axis=1)[:, :k]
            assert np.array_equal(results[0][0], order)
            # any split of the row into chunks, merged by (score, index), gives the same draw
            n = x.shape[1]
            for cut in {n // 3, 64, 65, n - 1} - {0}:
                if cut <= 0 or cut >= n:
                    continue
                for r in range(x.shape[0]):  # row by row: a chunk of only -inf fails its row alone
                    idx, sc = [], []
                    for lo, hi in ((0, cut), (cut, n)):
                        kk = min(k, hi - lo)
                        i1 = np.empty((1, kk), np.intp)
                        s1 = np.empty((1, kk))
                        chunk = np.ascontiguousarray(x[r : r + 1, lo:hi])
                        status = _core.gumbel_topk(chunk, kk, INV_T, 7, 8, 9, i1, s1, True, r, lo)
                        if status[0] < 0:
                            idx.append(i1[0])
                            sc.append(s1[0])
                        else:  # fewer than kk finite logits: take the chunk's best k' of them
                            assert status == (0, "has fewer finite logits than k" if kk > 1 else "has no finite logit")
                            finite = int(np.isfinite(chunk).sum())
                            if finite:
                                i1, s1 = np.empty((1, finite), np.intp), np.empty((1, finite))
                                assert _core.gumbel_topk(chunk, finite, INV_T, 7, 8, 9, i1, s1, True, r, lo) == (-1, "")
                                idx.append(i1[0])
                                sc.append(s1[0])
                    idx, sc = np.concatenate(idx), np.concatenate(sc)
                    merged = idx[np.lexsort((idx, -sc))[:k]]
                    assert np.array_equal(merged, results[0][0][r]), (cut, r)


def llm_rows(n, rng):
    """Rows the pruned top-k meets: LLM-like logits (few lanes reach the
    running best: one Philox block each), flat rows (the top elements decide),
    a peaked row, a mostly masked one and a wide one (many lanes reach it:
    whole tiles)."""
    rows = np.stack([rng.standard_normal(n), 3 * rng.standard_normal(n), np.zeros(n), rng.standard_normal(n),
                     rng.standard_normal(n), 30 * rng.standard_normal(n)])  # fmt: skip
    rows[3, n // 2] = 40.0
    rows[4, rng.random(n) < 0.9] = -np.inf
    rows[4, :60] = 0.5
    return rows


def test_pruned_topk_on_long_rows(isa, dtype):
    """The pruned top-k (gates first, then the logits a tile at a time) gives
    exactly the unpruned walk's candidates and scores, and the order of the
    perturbed scores x / T + g from the same noise, across the gate window
    (the elements whose gates it reads before their logits)."""
    t = tiles(isa, dtype)
    window = t["gumbel.window"]
    rng = np.random.default_rng(21)
    for n in sorted({t["gumbel.gate_span"] * 8 + 1, window - 1, window + 1, 2 * window - 1}):
        x = llm_rows(n, rng).astype(dtype)
        g = noise(x.shape, dtype, key=(7, 8, 9))
        score = ((x * dtype.type(INV_T)) + g).astype(np.float64)
        index = np.broadcast_to(np.arange(n), x.shape)
        for k in (1, 8, 50):
            results = []
            for inv_t in (INV_T, 1 / 0.3):
                for prune in (True, False):
                    idx = np.empty((x.shape[0], k), np.intp)
                    sc = np.empty((x.shape[0], k))
                    assert _core.gumbel_topk(x, k, inv_t, 7, 8, 9, idx, sc, prune) == (-1, ""), (n, k)
                    results.append((idx, sc))
                assert np.array_equal(results[-2][0], results[-1][0]), (n, k, inv_t)
                assert np.array_equal(results[-2][1], results[-1][1]), (n, k, inv_t)
            order = np.lexsort((index, -score), axis=1)[:, :k]
            assert np.array_equal(results[0][0], order), (n, k)
            assert np.array_equal(results[0][1], np.take_along_axis(score, order, axis=1)), (n, k)


def test_pruned_topk_chunks_at_tile_span_and_window_edges(isa, dtype):
    """A chunk of a row that starts and ends inside tiles, spans and across
    a gate window's edge (the pruned walk reads a window's gates first, then
    its whole tiles in index order and the partial tiles on their own) gives
    exactly the unpruned walk's candidates and scores on that chunk, NaN and
    +inf flagged as such."""
    t = tiles(isa, dtype)
    span, window, tile = t["gumbel.gate_span"], t["gumbel.window"], t["gumbel.tile"]
    rng = np.random.default_rng(44)
    chunks = [(tile - 1, span + 2), (3 * span - 5, 2 * span + 7), (window - 100, 2 * span + 3),
              (window - span - tile - 1, span + 2 * tile + 2)]  # fmt: skip
    for col, n in chunks:
        x = np.stack([3 * rng.standard_normal(n), rng.standard_normal(n), rng.standard_normal(n)]).astype(dtype)
        x[1, n // 2] = 30.0  # one logit beats every other element's bound
        x[2, : n // 3] = -np.inf
        for k in (1, 8):
            got = []
            for prune in (True, False):
                idx, sc = np.empty((3, k), np.intp), np.empty((3, k))
                assert _core.gumbel_topk(x, k, INV_T, 3, 4, 5, idx, sc, prune, 2, col) == (-1, ""), (col, n, k)
                got.append((idx, sc))
            assert np.array_equal(got[0][0], got[1][0]) and np.array_equal(got[0][1], got[1][1]), (col, n, k)
        for at in (0, n // 2, n - 1):  # the head's tile, a whole one, the tail's
            for bad, status in ((np.nan, "NaN"), (np.inf, "inf")):
                y = x[:1].copy()
                y[0, at] = bad
                idx, sc = np.empty((1, 1), np.intp), np.empty((1, 1))
                code, message = _core.gumbel_topk(y, 1, INV_T, 3, 4, 5, idx, sc, True, 0, col)
                assert code == 0 and status in message, (col, n, at, code, message)


def test_pruned_walk_flags_nan_and_inf_at_every_lane_of_a_tile(isa, dtype):
    """The pruned walk's read of whole tiles flags one NaN or +inf at any of a
    tile's positions (every vector and lane, each compared with the largest
    finite value, whether or not the tile's largest reaches the cut), in a
    span the chunk covers whole and in one it starts inside; and sample()
    with min_p (the walk masked at a floor) reports them. -inf alone is no
    fault."""
    t = tiles(isa, dtype)
    span, tile = t["gumbel.gate_span"], t["gumbel.tile"]
    col, n = span - 3 * tile, 3 * span  # tiles 1, 2 of the chunk: the first span's; tile 3 on: whole spans
    x = np.random.default_rng(46).standard_normal((1, n)).astype(dtype)
    x[0, 5 * tile : 5 * tile + 9] = -np.inf
    idx, sc = np.empty((1, 1), np.intp), np.empty((1, 1))
    assert _core.gumbel_topk(x, 1, INV_T, 3, 4, 5, idx, sc, True, 0, col) == (-1, "")
    for t0 in (tile, 4 * tile):  # (chunk offsets: first span's whole tile, a whole span's)
        for e in range(tile):
            for bad, status in ((np.nan, "NaN"), (np.inf, "inf")):
                y = x.copy()
                y[0, t0 + e] = bad
                code, message = _core.gumbel_topk(y, 1, INV_T, 3, 4, 5, idx, sc, True, 0, col)
                assert code == 0 and status in message, (t0, e, code, message)
    for e in (0, tile // 2 + 1, tile - 1):
        for bad, message in ((np.nan, "NaN"), (np.inf, r"\+inf")):
            y = x.copy()
            y[0, 4 * tile + e] = bad
            with pytest.raises(ValueError, match=message):
                ssm.sample(y, temperature=0.7, min_p=0.05, rng=1)


def test_pruned_walk_flags_nan_next_to_inf_and_big_logits(isa, dtype):
    """The pruned walk's tile read finds NaN by one compare per two vectors
    and +inf from the tile's largest, which a NaN lane may turn NaN: a NaN
    with +inf or a logit over the cut in the same tile (same lane of another
    vector, or next to it), or +inf in a tile and NaN in a later one, is still
    reported, NaN first, as the unpruned walk reports it."""
    t = tiles(isa, dtype)
    span, tile = t["gumbel.gate_span"], t["gumbel.tile"]
    n = 3 * span
    x = np.random.default_rng(47).standard_normal((1, n)).astype(dtype)
    idx, sc = np.empty((1, 1), np.intp), np.empty((1, 1))
    t0 = 4 * tile
    for e in range(tile):
        for other in ((e + 8) % tile, (e + 16) % tile, (e + 1) % tile, e + 5 * tile):
            for partner in (np.inf, 40.0):
                y = x.copy()
                y[0, t0 + e] = np.nan
                y[0, t0 + other] = partner
                for prune in (True, False):
                    code, message = _core.gumbel_topk(y, 1, INV_T, 3, 4, 5, idx, sc, prune, 0, 0)
                    assert code == 0 and "NaN" in message, (e, other, partner, prune, code, message)
    y = x.copy()
    y[0, t0 + 3] = np.inf
    y[0, t0 + 2 * tile + 7] = np.nan
    assert _core.gumbel_topk(y, 1, INV_T, 3, 4, 5, idx, sc, True, 0, 0)[1] == _core.gumbel_topk(
        y, 1, INV_T, 3, 4, 5, idx, sc, False, 0, 0)[1]


@pytest.mark.parametrize("at_end", [True, False], ids=["ends_at_guard", "starts_at_guard"])
def test_chunks_and_rows_next_to_an_unmapped_page(isa, dtype, at_end):
    """Chunks and rows whose data end (or start) right at an inaccessible page
    give the same results as ordinary copies: no element outside them is read,
    not even by the masked-off lanes of a masked load (real CPUs never fault
    on those; qemu's emulation does, and the partial tiles' copy was compiled
    to such loads: the emulated Haswell run crashed when the allocator put a
    row at the end of a mapping)."""
    t = tiles(isa, dtype)
    span, window, tile = t["gumbel.gate_span"], t["gumbel.window"], t["gumbel.tile"]
    rng = np.random.default_rng(45)
    chunks = [(tile - 1, span + 2), (3 * span - 5, 2 * span + 7), (window - 100, 2 * span + 3),
              (window - span - tile - 1, span + 2 * tile + 2), (1, span + tile - 2)]  # fmt: skip
    for col, n in chunks:
        x = guarded((1, n), dtype, at_end)
        x[...] = 3 * rng.standard_normal((1, n))
        for k in (1, 8):
            for prune in (True, False):
                got = []
                for y in (x, x.copy()):
                    idx, sc = np.empty((1, k), np.intp), np.empty((1, k))
                    assert _core.gumbel_topk(y, k, INV_T, 3, 4, 5, idx, sc, prune, 0, col) == (-1, ""), (col, n, k)
                    got.append((idx, sc))
                assert np.array_equal(got[0][0], got[1][0]) and np.array_equal(got[0][1], got[1][1]), (col, n, k)
    for n in sorted({1, 3, 7, 9, 15, 17, tile - 1, tile + 1, 2 * tile + 5, span + 3}):
        x = guarded((2, n), dtype, at_end)
        x[...] = rng.standard_normal((2, n))
        y = x.copy()
        for call in (lambda z: gumbel_argmax(z, rng=7), lambda z: gumbel_topk(z, min(n, 3), rng=7),
                     lambda z: gumbel_softmax(z, rng=7)):  # fmt: skip
            a, b = call(x), call(y)
            for u, v in zip(a, b) if isinstance(a, tuple) else [(a, b)]:
                assert np.array_equal(u, v), n


def level_rows(n, rng):
    """Rows whose tile maxima lie a noise unit apart and more (the pruned
    walk once visited tiles by levels of them): a staircase over 40 units,
    rounded logits (tied scores between far tiles), one repeated value in a
    few far tiles, -inf stretches, and a row whose largest logits sit in its
    last tiles (the running best rises late in index order)."""
    ramp = np.linspace(-20.0, 20.0, n)
    rows = np.stack([rng.permutation(ramp), np.round(3 * rng.standard_normal(n)), np.full(n, -5.0),
                     3 * rng.standard_normal(n), np.sort(3 * rng.standard_normal(n))])  # fmt: skip
    rows[2, rng.integers(0, n, 5)] = 4.0
    rows[3, rng.random(n) < 0.5] = -np.inf
    rows[3, n // 3 : n // 3 + 200] = -np.inf
    return rows


def test_pruned_topk_levels_any_key(isa, dtype):
    """How soon the pruned walk's running best rises depends on the key and
    on where the largest logits sit: for many keys, temperatures (a low
    one) and lengths around its tile, gate span and window, it gives exactly
    the unpruned walk's candidates, scores and order."""
    t = tiles(isa, dtype)
    span, window, tile = t["gumbel.gate_span"], t["gumbel.window"], t["gumbel.tile"]
    rng = np.random.default_rng(33)
    sizes = sorted({span, span + 1, 2 * span - 1, 3 * span + tile + 1, window + tile - 1})
    for n in sizes:
        x = level_rows(n, rng).astype(dtype)
        # Two keys at the window's length (97% of the elements here; the
        # unpruned reference dominates, and this file also runs under qemu).
        for key0 in range(6 if n < window else 2):
            for k in (1, 3, 8):
                for inv_t in (1.0, 1 / 0.7, 1 / 0.02):
                    got = []
                    for prune in (True, False):
                        idx = np.empty((x.shape[0], k), np.intp)
                        sc = np.empty((x.shape[0], k))
                        assert _core.gumbel_topk(x, k, inv_t, key0, 5, 11, idx, sc, prune) == (-1, "")
                        got.append((idx, sc))
                    assert np.array_equal(got[0][0], got[1][0]), (n, key0, k, inv_t)
                    assert np.array_equal(got[0][1], got[1][1]), (n, key0, k, inv_t)


def test_pruned_walk_lanes_at_every_position_of_a_tile(isa, dtype):
    """The pruned walk's read skips a tile whose largest logit cannot reach
    the running best and otherwise checks its lanes: one lane a tile that can
    (at every position of a tile in turn, the other lanes far below or -inf),
    tied logits (equal scores broken by the lower index), and k around the
    vector width give exactly the unpruned walk's candidates and scores."""
    t = tiles(isa, dtype)
    span, tile, width = t["gumbel.gate_span"], t["gumbel.tile"], t["gumbel.lanes"]
    n = 3 * span + tile // 2 + 1  # a partial tile at the end
    pos = np.arange(n // tile) * tile + np.arange(n // tile) % tile  # lane (tile index) % 64 of each tile
    rows = np.full((5, n), -25.0)
    rows[0, pos] = 2.0  # ties across every tile
    rows[1, pos] = np.random.default_rng(47).standard_normal(pos.size)
    rows[2] = -np.inf
    rows[2, pos] = 1.5
    rows[3] = np.round(np.random.default_rng(48).standard_normal(n))  # many lanes a tile, tied
    rows[4, pos] = 4.0
    rows[4, pos[::7] + 1] = 4.0  # two lanes over the cut in some tiles
    rows[4, -1] = 6.0
    x = rows.astype(dtype)
    for k in sorted({1, max(1, width - 1), width, width + 1, 2 * width}):
        for inv_t in (INV_T, 1 / 0.3):
            got = []
            for prune in (True, False):
                idx, sc = np.empty((x.shape[0], k), np.intp), np.empty((x.shape[0], k))
                assert _core.gumbel_topk(x, k, inv_t, 13, 14, 15, idx, sc, prune) == (-1, ""), (k, inv_t)
                got.append((idx, sc))
            assert np.array_equal(got[0][0], got[1][0]), (k, inv_t)
            assert np.array_equal(got[0][1], got[1][1]), (k, inv_t)


@pytest.mark.parametrize("tau", [0.7, 1.0])  # 1.0: the unit form, exp(x) / E
def test_gumbel_softmax_identical_across_isas(dtype, tau):
    rng = np.random.default_rng(6)
    for n in (1, 5, 63, 64, 65, 129, 1000, 100003):
        x = (rng.standard_normal((3, n)) * 4).astype(dtype)
        x[2] += 3e6  # beyond the fast range: redone relative to the row's max
        if n > 3:
            x[0, 2] = -np.inf
        outs = [with_isa(isa, gumbel_softmax, x, tau=tau, rng=11) for isa in ISAS]
        for y in outs[1:]:
            assert np.array_equal(y, outs[0])
        np.testing.assert_allclose(outs[0].astype(np.float64).sum(-1), 1, rtol=1e-5 if dtype == np.float32 else 1e-12)
        if n > 3:
            assert np.all(outs[0][0, 2] == 0)


@pytest.mark.parametrize("tau", [0.5, 1.0])  # 1.0: the unit form, exp(x) / E
def test_gumbel_softmax_matches_reference(isa, tau):
    """Against softmax((x + g)/tau) computed in float64 from the same noise."""
    rng = np.random.default_rng(7)
    for dtype, rtol in ((np.float32, 4 * 2.0**-23 + 2e-6), (np.float64, 1e-12)):
        x = (rng.standard_normal((3, 2001)) * 3).astype(dtype)
        key = _key(np.random.default_rng(99))
        y = gumbel_softmax(x, tau=tau, rng=np.random.default_rng(99))
        g = noise(x.shape, dtype, key=key)
        z = (x.astype(np.float64) + g.astype(np.float64)) / tau
        e = np.exp(z - z.max(-1, keepdims=True))
        ref = e / e.sum(-1, keepdims=True)
        big = ref > 1e-30
        assert np.max(np.abs(y[big] - ref[big]) / ref[big]) < rtol


@pytest.mark.parametrize("tau", [0.5, 1.0])  # 1.0: the unit form, exp(x) / E
def test_gumbel_every_tail(isa, dtype, tau):
    """Every tail of the Gumbel kernels' tiles (1 .. 2*tile-1) and of their
    gate span (sparse): top-k, with and without pruning, is the order of the
    perturbed scores x / T + g, and gumbel_softmax is softmax((x + g) / tau)
    in float64, from the same noise."""
    rng = np.random.default_rng(13)
    rtol = 4 * 2.0**-23 + 2e-6 if dtype == np.float32 else 1e-12
    for n in gumbel_sizes(isa, dtype):
        x = (rng.standard_normal((2, n)) * 3).astype(dtype)
        if n > 3:
            x[1, rng.integers(n)] = -np.inf  # a masked logit, still k finite ones
        k = min(3, n)
        score = ((x * dtype.type(INV_T)) + noise(x.shape, dtype, key=(7, 8, 9))).astype(np.float64)
        order = np.lexsort((np.broadcast_to(np.arange(n), x.shape), -score), axis=1)[:, :k]
        for prune in (True, False):
            idx = np.empty((2, k), np.intp)
            sc = np.empty((2, k))
            assert _core.gumbel_topk(x, k, INV_T, 7, 8, 9, idx, sc, prune) == (-1, ""), n
            assert np.array_equal(idx, order), (n, prune)
        key = _key(np.random.default_rng(n))
        y = gumbel_softmax(x, tau=tau, rng=np.random.default_rng(n))
        z = (x.astype(np.float64) + noise(x.shape, dtype, key=key).astype(np.float64)) / tau
        e = np.exp(z - z.max(-1, keepdims=True))
        ref = e / e.sum(-1, keepdims=True)
        assert np.all(y[~np.isfinite(x)] == 0)
        big = ref > 1e-30
        assert np.max(np.abs(y[big] - ref[big]) / ref[big]) < rtol, n


def test_gumbel_sizes_cross_the_tiles(isa, dtype):
    t = tiles(isa, dtype)
    for name in ("gumbel.tile", "gumbel.gate_span"):
        assert {t[name] - 1, t[name], t[name] + 1, 2 * t[name] - 1} <= set(gumbel_sizes(isa, dtype)), name


def chi2_ok(counts, probs):
    counts = np.asarray(counts, np.float64)
    expected = probs * counts.sum()
    keep = expected > 0
    assert np.all(counts[~keep] == 0), "an impossible category was drawn"
    stat = np.sum((counts[keep] - expected[keep]) ** 2 / expected[keep])
    return stat < stats.chi2.isf(P_FAIL, keep.sum() - 1)


DISTRIBUTIONS = {
    "uniform": np.zeros(5),
    "graded": np.log(np.array([0.5, 0.25, 0.15, 0.07, 0.03])),
    "peaked": np.array([8.0, 0.0, -1.0, 2.0]),
    "masked": np.array([0.3, -np.inf, 1.0, -np.inf, -0.5, 0.0]),
}


@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.5])
def test_argmax_is_categorical(isa, name, temperature):
    logits = DISTRIBUTIONS[name]
    draws = 200_000
    x = np.tile(logits, (draws, 1))  # each row draws independently
    idx = gumbel_argmax(x, temperature=temperature, rng=1234)
    p = np.exp(logits / temperature - np.max(logits / temperature))
    p /= p.sum()
    assert chi2_ok(np.bincount(idx, minlength=logits.size), p)


def test_argmax_large_row_is_categorical():
    """Many categories in one row, most pruned: the draw frequencies of a few
    heavy categories follow softmax."""
    rng = np.random.default_rng(3)
    logits = rng.standard_normal(5000) - 6
    logits[[10, 2000, 4999]] = [3.0, 2.0, 2.5]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    x = np.tile(logits.astype(np.float32), (2000, 1))
    counts = np.zeros(5000)
    for seed in range(10):
        np.add.at(counts, gumbel_argmax(x, rng=seed), 1)
    bins = np.array([p[10], p[2000], p[4999], 1 - p[[10, 2000, 4999]].sum()])
    observed = [counts[10], counts[2000], counts[4999], counts.sum() - counts[[10, 2000, 4999]].sum()]
    assert chi2_ok(observed, bins)


def test_topk_follows_plackett_luce(isa):
    logits = np.log(np.array([0.4, 0.3, 0.2, 0.1]))
    p = np.exp(logits)
    draws = 200_000
    idx = gumbel_topk(np.tile(logits, (draws, 1)), 2, rng=77)
    assert np.all(idx[:, 0] != idx[:, 1])
    pairs = idx[:, 0] * 4 + idx[:, 1]
    probs = np.array([p[i] * p[j] / (1 - p[i]) if i != j else 0.0 for i in range(4) for j in range(4)])
    assert chi2_ok(np.bincount(pairs, minlength=16), probs)


def test_gumbel_softmax_argmax_is_categorical_and_hard_is_the_same_draw(isa):
    logits = DISTRIBUTIONS["graded"]
    draws = 100_000
    x = np.tile(logits, (draws, 1))
    soft = gumbel_softmax(x, tau=0.3, rng=5)
    np.testing.assert_allclose(soft.sum(-1), 1, rtol=1e-12)
    assert chi2_ok(np.bincount(soft.argmax(-1), minlength=5), np.exp(logits) / np.exp(logits).sum())
    hard = gumbel_softmax(x, tau=0.3, hard=True, rng=5)
    assert np.array_equal(hard.argmax(-1), gumbel_argmax(x, rng=5))
    assert np.all(hard.sum(-1) == 1) and set(np.unique(hard)) <= {0.0, 1.0}
    # the soft sample concentrates on the same draw (no rounding ties in this data)
    assert np.mean(soft.argmax(-1) == hard.argmax(-1)) > 0.999


def test_rng_semantics():
    x = np.zeros((50, 10))
    a, b = gumbel_argmax(x, rng=3), gumbel_argmax(x, rng=3)
    assert np.array_equal(a, b)
    gen = np.random.default_rng(3)
    first, second = gumbel_argmax(x, rng=gen), gumbel_argmax(x, rng=gen)
    assert np.array_equal(first, a) and not np.array_equal(first, second)
    ss = np.random.SeedSequence(3)
    assert np.array_equal(gumbel_argmax(x, rng=ss), gumbel_argmax(x, rng=np.random.SeedSequence(3)))
    assert gumbel_argmax(x, rng=None).shape == (50,)


@pytest.mark.parametrize("bit_generator", ["PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937"])
def test_key_uses_all_128_bits_of_every_bit_generator(bit_generator):
    """_key takes two raw words from 64-bit bit generators and 32-bit
    integers from the others (MT19937's raw words have 32 bits): over 200
    calls every key bit is set at least once (a fair source fails this with
    probability < 2^-190), and a Generator is advanced by each call."""
    gen = np.random.Generator(getattr(np.random, bit_generator)(11))
    keys = [_key(gen) for _ in range(200)]
    assert len(set(keys)) == 200
    k0 = k1 = offset = 0
    for a, b, c in keys:
        assert 0 <= a < 2**32 and 0 <= b < 2**32 and 0 <= c < 2**64
        k0, k1, offset = k0 | a, k1 | b, offset | c
    assert (k0, k1, offset) == (2**32 - 1, 2**32 - 1, 2**64 - 1)
    # the same seed gives the same key, whatever form it is passed in
    assert _key(np.random.Generator(getattr(np.random, bit_generator)(11))) == keys[0]
    assert _key(getattr(np.random, bit_generator)(11)) == keys[0]


@pytest.mark.parametrize("bit_generator", ["PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937"])
def test_one_step_calls_draw_the_key_of_key(bit_generator):
    """The one-step calls (gumbel_argmax, gumbel_topk, sample) draw their key
    in C++, from a 64-bit bit generator's raw words (else through _key): the
    same draws as the general path's _key, the Generator left in the same
    state; and nothing is drawn when the call is not one they take."""
    x = np.random.default_rng(3).standard_normal((3, 70)).astype(np.float32)
    strided = np.empty((3, 140), np.float32)[:, ::2]
    strided[...] = x  # the same logits on the general path

    def make():
        return np.random.Generator(getattr(np.random, bit_generator)(12))

    calls = [lambda z, g: gumbel_argmax(z, rng=g), lambda z, g: gumbel_argmax(z[0], rng=g, temperature=2),
             lambda z, g: gumbel_topk(z, 5, rng=g, temperature=np.float64(0.7)),
             lambda z, g: ssm.sample(z, rng=g), lambda z, g: ssm.sample(z, rng=g, top_k=4, temperature=0.7)]  # fmt: skip
    for call in calls:
        a, b = make(), make()
        for _ in range(3):
            assert np.array_equal(call(x, a), call(strided, b))
        assert np.array_equal(a.bit_generator.random_raw(4), b.bit_generator.random_raw(4))  # the same state
    gen = make()
    refused = [(x, 0, 1, True, 1.0), (x, True, 1, True, 1.0), (x, -1, 1, True, -1.0), (x, -1, 1, True, np.inf),
               (x, -1, 1, True, "1"), (x, -1, 0, False, 1.0), (x, -1, 71, False, 1.0), (x, -1, 2, True, 1.0),
               (x, -1, True, False, 1.0), (strided, -1, 1, True, 1.0), (x.astype(np.float16), -1, 1, True, 1.0),
               (x.astype(">f4"), -1, 1, True, 1.0), (x.tolist(), -1, 1, True, 1.0), (x[:, :0], -1, 1, False, 1.0)]  # fmt: skip
    for args in refused:
        assert _core.gumbel_topk_call(*args, gen) is None, args[1:]
    assert np.array_equal(gen.bit_generator.random_raw(4), make().bit_generator.random_raw(4))  # not advanced


ONE_CALL_FUNCTIONS = {
    "argmax": lambda x, **kw: gumbel_argmax(x, **kw),
    "topk": lambda x, **kw: gumbel_topk(x, min(3, np.shape(x)[kw.get("axis", -1)]), **kw),
    "softmax": lambda x, **kw: gumbel_softmax(x, tau=kw.pop("temperature"), **kw),
}


@pytest.mark.parametrize("name", list(ONE_CALL_FUNCTIONS))
def test_one_call_matches_the_general_path(isa, dtype, name):
    """C-contiguous float32/float64 arrays reduced over their last axis take
    one C++ call (_core.gumbel_topk_call, gumbel_softmax_call); the same
    logits in any other form (a strided view, the other byte order, another axis) go
    through _rows and the row kernels. Both must give the same results and
    the same errors."""
    fn = ONE_CALL_FUNCTIONS[name]
    rng = np.random.default_rng(5)
    for shape in [(1,), (15,), (16,), (17,), (64,), (1000,), (3, 17), (2, 3, 65), (4, 1)]:
        x = (rng.standard_normal(shape) * 2).astype(dtype)
        if shape[-1] > 3:
            x[..., 0] = -np.inf  # never drawn, on either path
        strided = np.empty(shape[:-1] + (2 * shape[-1],), dtype)[..., ::2]
        strided[...] = x
        assert _one_call(x, -1) and (not _one_call(strided, -1) or shape == (1,))
        for temperature in (1.0, 0.3):
            fast = fn(x, rng=9, temperature=temperature)
            if name == "argmax" and x.ndim == 1:
                assert type(fast) is np.intp
            swapped = x.astype(x.dtype.newbyteorder())  # same values, the other byte order
            for other, axis in ((strided, -1), (swapped, -1), (np.moveaxis(x, -1, 0), 0)):
                general = fn(other, axis=axis, rng=9, temperature=temperature)
                if name == "softmax" and axis == 0:
                    general = np.moveaxis(general, 0, -1)
                assert np.array_equal(general, fast), (shape, temperature)
            if name == "softmax":  # into out, and in place
                out = np.empty_like(x)
                assert fn(x, rng=9, temperature=temperature, out=out) is out
                assert np.array_equal(out, fast)
                inplace = x.copy()
                assert fn(inplace, rng=9, temperature=temperature, out=inplace) is inplace
                assert np.array_equal(inplace, fast)
    # the errors name the same row, and out is left untouched
    bad = np.zeros((2, 3, 8), dtype)
    bad[1, 2, 5] = np.nan
    messages = []
    for form in (bad, bad[..., ::-1].copy()[..., ::-1], bad.astype(bad.dtype.newbyteorder())):
        with pytest.raises(ValueError) as info:
            fn(form, rng=1, temperature=1.0)
        messages.append(str(info.value))
    assert messages == ["logits: row (1, 2) contains NaN"] * 3
    if name == "softmax":
        out = np.full_like(bad, 7)
        with pytest.raises(ValueError, match=r"row \(1, 2\) contains NaN"):
            fn(bad, rng=1, temperature=1.0, out=out)
        assert np.all(out == 7)


def test_greedy_temperature_zero():
    x = np.array([[1.0, 3.0, 3.0, -np.inf], [0.0, 0.0, 0.0, 0.0]])
    assert gumbel_argmax(x, temperature=0).tolist() == [1, 0]
    assert gumbel_topk(x, 2, temperature=0).tolist() == [[1, 2], [0, 1]]


def test_shapes_axes_and_dtypes():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 4, 5))
    assert gumbel_argmax(x, rng=1).shape == (3, 4)
    assert gumbel_argmax(x, axis=1, rng=1).shape == (3, 5)
    assert np.array_equal(gumbel_argmax(x, axis=0, rng=1), gumbel_argmax(np.moveaxis(x, 0, -1), rng=1))
    assert gumbel_topk(x, 2, axis=0, rng=1).shape == (4, 5, 2)
    assert np.array_equal(gumbel_topk(x, 2, axis=0, rng=1), gumbel_topk(np.moveaxis(x, 0, -1), 2, rng=1))
    assert isinstance(gumbel_argmax([1.0, 2.0, 3.0], rng=1), np.intp)
    assert gumbel_argmax(np.array([1, 2, 3], np.int32), rng=1) in (0, 1, 2)
    assert gumbel_softmax(np.zeros(4, np.float16), rng=1).dtype == np.float16
    assert gumbel_softmax(np.zeros(4, np.int64), rng=1).dtype == np.float64
    y = gumbel_softmax(x, axis=1, rng=2)
    assert y.shape == x.shape
    np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-12)
    assert gumbel_argmax(np.zeros((0, 5)), rng=1).shape == (0,)
    assert gumbel_topk(np.zeros((2, 5)), 0, rng=1).shape == (2, 0)
    # a non-contiguous, big-endian view gives the same draw as its contiguous copy
    z = rng.standard_normal((6, 40))[::2, ::-1].astype(">f8")
    assert np.array_equal(gumbel_argmax(z, rng=4), gumbel_argmax(np.ascontiguousarray(z, "<f8"), rng=4))


def test_errors_name_the_first_bad_row_and_write_nothing():
    x = np.zeros((3, 4, 5))
    x[1, 2, 3] = np.nan
    x[2, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"row \(1, 2\).*NaN"):
        gumbel_argmax(x, rng=0)
    y = np.zeros((2, 3))
    y[1] = -np.inf
    with pytest.raises(ValueError, match=r"row \(1,\).*no finite"):
        gumbel_argmax(y, rng=0)
    with pytest.raises(ValueError, match=r"\+inf"):
        gumbel_argmax([[0.0, np.inf]], rng=0)
    with pytest.raises(ValueError, match="fewer finite logits than k"):
        gumbel_topk([[0.0, 1.0, -np.inf]], 3, rng=0)
    for bad in (-1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="temperature"):
            gumbel_argmax([0.0, 1.0], temperature=bad)
        with pytest.raises(ValueError, match="tau"):
            gumbel_softmax([0.0, 1.0], tau=bad)
    with pytest.raises(TypeError, match="k must be an integer"):
        gumbel_topk([0.0, 1.0], 1.5)
    with pytest.raises(ValueError, match="k must be >= 0"):
        gumbel_topk([0.0, 1.0], -1)
    out = np.full((2, 3), 7.0)
    with pytest.raises(ValueError):
        gumbel_softmax(y, rng=0, out=out)
    assert np.all(out == 7.0)
    with pytest.raises(ValueError, match="out"):
        gumbel_softmax(np.zeros((2, 3)), out=np.zeros((3, 2)))
    with pytest.raises(TypeError):
        gumbel_argmax(np.zeros(3, complex))


def test_unaligned_logits_are_copied_not_passed_on():
    """A contiguous but unaligned buffer must not reach the kernels (misaligned
    float loads are undefined behaviour, which tools/sanitize.sh's UBSan reports)."""
    raw = np.zeros(4 * 6 + 1, np.uint8)
    x = raw[1:].view(np.float32).reshape(2, 3)
    assert not x.flags.aligned and x.flags.c_contiguous
    x[...] = [[0.0, 1.0, 2.0], [2.0, 1.0, -np.inf]]
    aligned = np.array(x)
    np.testing.assert_array_equal(gumbel_argmax(x, rng=5), gumbel_argmax(aligned, rng=5))
    np.testing.assert_array_equal(gumbel_topk(x, 2, rng=5), gumbel_topk(aligned, 2, rng=5))
    np.testing.assert_array_equal(gumbel_softmax(x, rng=5), gumbel_softmax(aligned, rng=5))


@pytest.mark.parametrize("shape", [(1, 5000), (9, 333), (300, 40)])
def test_identical_across_thread_counts_and_splits(isa, dtype, shape, small_chunks):
    """Threads take chunks of long rows (candidates merged by score, index;
    gumbel_softmax partials combined in chunk order) and runs of short rows:
    every thread count gives the same draws and the same gumbel_softmax bits."""
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    x[0, :7] = -np.inf
    x[-1, 3] = 9.0  # a clear favourite: most of that row is pruned

    def draws():
        return (
            gumbel_argmax(x, rng=5),
            gumbel_topk(x, 6, rng=5),
            gumbel_topk(x, 6, temperature=0.3, rng=5),
            gumbel_softmax(x, tau=0.7, rng=5),
        )

    results = {}
    for t in (1, 2, 3, 7):
        small_chunks(t)
        results[t] = draws()
    _core.testing.set_chunking(1 << 16, 1 << 24)  # no chunks (rows are shorter), serial
    _core.testing.set_parallel_min(1 << 62)
    results[0] = draws()
    for t in (2, 3, 7):
        for a, b in zip(results[1], results[t]):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), t
    # top-k merges are exact: no split at all gives the same draws; the sums
    # of a split gumbel_softmax row are combined per chunk, so only close
    for a, b in zip(results[1][:3], results[0][:3]):
        assert a.tobytes() == b.tobytes()
    tol = 4 * np.finfo(dtype).eps
    np.testing.assert_allclose(results[1][3], results[0][3], rtol=tol, atol=float(np.finfo(dtype).tiny))
    # and a bad row is still the first one reported, with threads
    small_chunks(3)
    _core.testing.set_chunking(37, 100)
    _core.testing.set_parallel_min(0)
    bad = x.copy()
    row = min(2, shape[0] - 1)
    bad[row, 30] = np.nan
    if shape[0] > 1:
        bad[-1, :] = -np.inf  # a later bad row
        where = rf"row \({row},\) contains NaN"
    else:
        where = "contains NaN"
    with pytest.raises(ValueError, match=where):
        gumbel_topk(bad, 2, rng=5)
    with pytest.raises(ValueError, match=where):
        gumbel_softmax(bad, rng=5)


@pytest.mark.parametrize("axis", [-1, 0])
def test_gumbel_softmax_writes_out_directly(axis):
    """out= (and out=logits, in place) is written by the kernel itself: same
    values as a fresh result, no temporary of the result's size, and nothing
    written when a row is bad."""
    import tracemalloc

    rng = np.random.default_rng(12)
    x = rng.standard_normal((64, 4096)).astype(np.float32)
    if axis == 0:
        x = np.asfortranarray(x.T)  # rows along axis 0, contiguous
    ref = gumbel_softmax(x, axis=axis, rng=5)
    out = np.empty_like(x)
    tracemalloc.start()
    try:
        got = gumbel_softmax(x, axis=axis, rng=5, out=out)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got is out and np.array_equal(out, ref)
    assert peak < x.nbytes // 4  # no result-sized temporary
    inplace = x.copy(order="A")
    assert gumbel_softmax(inplace, axis=axis, rng=5, out=inplace) is inplace
    assert np.array_equal(inplace, ref)
    bad = x.copy(order="A")
    bad[(3, 7) if axis == -1 else (7, 3)] = np.nan
    out = np.full_like(x, -7)
    with pytest.raises(ValueError, match="NaN"):
        gumbel_softmax(bad, axis=axis, rng=5, out=out)
    assert np.all(out == -7)
    before = bad.copy(order="A")
    with pytest.raises(ValueError, match="NaN"):
        gumbel_softmax(bad, axis=axis, rng=5, out=bad)
    assert np.array_equal(bad, before, equal_nan=True)


# --------------------------------------------------------------------------
# Logits whose scaled value x/T leaves the dtype's range: the kernels rescale
# scores by a power of two and subtract the row's largest x + g before
# dividing by tau.


def test_scaled_logits_overflow_masked_row():
    # finfo.min is a common way to mask logits; a fully masked row is still a row of finite logits
    x = np.full(3, np.finfo(np.float32).min)
    assert ssm.gumbel_argmax(x, temperature=0.5, rng=0) in (0, 1, 2)
    assert sorted(ssm.gumbel_topk(x, 3, temperature=0.5, rng=0)) == [0, 1, 2]


def test_scaled_logits_overflow_picks_the_larger(dtype):
    # 3.1e38 exceeds 3e38 by 1e37: at T=0.5 every draw must be index 1
    big = np.finfo(dtype).max
    x = np.array([big * 0.9, big * 0.95, 1.0], dtype)
    for isa in ssm.available_isas():
        with ssm.use_isa(isa):
            assert all(ssm.gumbel_argmax(x, temperature=0.5, rng=s) == 1 for s in range(20))
            assert all(list(ssm.gumbel_topk(x, 2, temperature=1e-3, rng=s)) == [1, 0] for s in range(5))


def test_tiny_temperature_is_greedy_without_overflow(dtype):
    # 1/T beyond the dtype's range: the draw is the largest logit, as at T -> 0
    # (and 1/tau beyond it: gumbel_softmax is the one-hot of its draw)
    x = np.array([1.0, 3.0, -2.0, 2.5], dtype)
    tiny = float(np.finfo(dtype).tiny) / 4  # 1/T overflows the dtype
    for isa in ssm.available_isas():
        with ssm.use_isa(isa):
            assert ssm.gumbel_argmax(x, temperature=tiny, rng=1) == 1
            assert list(ssm.gumbel_topk(x, 3, temperature=tiny, rng=1)) == [1, 3, 0]
            # softmax((x + g)/tau) -> the one-hot of argmax(x + g): hard=True's draw
            hard = ssm.gumbel_softmax(x, tau=1.0, hard=True, rng=1)
            np.testing.assert_array_equal(ssm.gumbel_softmax(x, tau=tiny, rng=1), hard)


def test_scaled_logits_overflow_gumbel_softmax():
    for isa in ssm.available_isas():
        with ssm.use_isa(isa):
            y = ssm.gumbel_softmax(np.array([3e38, 3.1e38, 1.0], np.float32), tau=0.5, rng=0)
            np.testing.assert_array_equal(y, [0, 1, 0])
