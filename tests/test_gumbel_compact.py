"""The pruned Gumbel top-k's pass 2 (gumbel_generic.h, topk_pruned): the
lanes of a sparse tile compacted onto the noise batch at once (batches
that overflow by up to a tile's sparse lanes, tiles with an open group,
empty tiles, partial tiles), and its check of a tile's logits against a
threshold in logit space (x > xcut) instead of the transformed bound.
Every case against the unpruned walk (every element's score), bit for bit.
"""
import numpy as np
import pytest

from simdsoftmax import _core
from tiles import tiles


def pruned_and_unpruned(x, k, inv_t, key=(7, 8, 9), col=0):
    got = []
    for prune in (True, False):
        idx, sc = np.empty((x.shape[0], k), np.intp), np.empty((x.shape[0], k))
        assert _core.gumbel_topk(x, k, inv_t, *key, idx, sc, prune, 0, col) == (-1, "")
        got.append((idx, sc))
    return got


def assert_same(got, what):
    (a, sa), (b, sb) = got
    assert np.array_equal(a, b), what
    assert np.array_equal(sa, sb), what


def sparse_rows(n, tile, lanes, rng):
    """Rows of -inf logits but for 1..lanes+1 equal high ones per tile (the
    count cycling over the tiles, some tiles empty), so each tile gives
    the batch a different number of lanes and the batch overflows by every
    amount; the second row's lanes are at random heights (lanes fall out as
    the cut rises), the third's on a few tiles only."""
    rows = np.full((3, n), -np.inf)
    for t0 in range(0, n, tile):
        m = (t0 // tile) % (lanes + 2)  # 0 (empty) .. lanes + 1 (more than sparse: the tile's own blocks)
        at = t0 + rng.choice(min(tile, n - t0), size=min(m, n - t0), replace=False)
        rows[0, at] = 2.0
        rows[1, at] = rng.standard_normal(at.size)
        if (t0 // tile) % 7 == 3:
            rows[2, at] = rng.standard_normal(at.size) * 3
    return rows


def test_compacted_lanes_any_batch_overflow(isa, dtype):
    t = tiles(isa, dtype)
    tile, span, lanes = t["gumbel.tile"], t["gumbel.gate_span"], t["gumbel.sparse_lanes"]
    batch = t["gumbel.noise_batch"]
    assert lanes < batch  # the batch's room past kBatch holds one tile's lanes
    rng = np.random.default_rng(71)
    for n in (span, 3 * span + tile + 5):  # whole tiles; a partial last tile
        x = sparse_rows(n, tile, lanes, rng).astype(dtype)
        finite = int(np.isfinite(x).sum(axis=1).min())
        # k above a tile's lanes, above a batch, and up to every finite logit
        for k in sorted({min(k, finite) for k in (1, lanes + 1, batch + 3, 200)} | {finite}):
            for inv_t in (1.0, 1 / 0.3):
                assert_same(pruned_and_unpruned(x, k, inv_t), (n, k, inv_t))


def test_compacted_lanes_chunks(isa, dtype):
    """Chunks that start and end inside tiles: their partial tiles' lanes
    come compacted from a padded copy."""
    t = tiles(isa, dtype)
    tile, span, lanes = t["gumbel.tile"], t["gumbel.gate_span"], t["gumbel.sparse_lanes"]
    rng = np.random.default_rng(72)
    for col, n in ((tile - 1, span + 2), (3 * tile + 5, 2 * span - 9)):
        x = sparse_rows(n, tile, lanes, rng).astype(dtype)
        finite = int(np.isfinite(x).sum(axis=1).min())
        for k in sorted({min(k, finite) for k in (1, 8, 40)}):
            assert_same(pruned_and_unpruned(x, k, 1.0, col=col), (col, n, k))


def test_logit_space_check_any_temperature(isa, dtype):
    """The check x > xcut equals the bound's check for every temperature:
    the scaled logits' rounding (rounded logits: ties at the cut), inverse
    temperatures near 0 (float32's scaled logits underflow to subnormals or
    0: the threshold search gives up and every lane is looked at) and
    large ones."""
    t = tiles(isa, dtype)
    span, tile = t["gumbel.gate_span"], t["gumbel.tile"]
    rng = np.random.default_rng(73)
    n = 2 * span + tile - 3
    x = np.stack([rng.standard_normal(n), np.round(4 * rng.standard_normal(n)) / 4,
                  1e30 * rng.standard_normal(n), 3 * rng.standard_normal(n)])  # fmt: skip
    x[3, rng.random(n) < 0.5] = -np.inf
    x = x.astype(dtype)
    for inv_t in (1e-3, 1e-38, 1e-42, 1e-50, 1.0, 1 / 0.05, 1e3):
        for k in (1, 8):
            for key0 in (1, 2):
                assert_same(pruned_and_unpruned(x, k, inv_t, key=(key0, 5, 6)), (inv_t, k, key0))
