"""The bandwidth probes (read, copy, write: the roofline the benchmark
measures against) and the two store policies (streaming and regular stores)
that every writing kernel can take, on every kernel set."""

import numpy as np
import pytest

from reference import ALGORITHMS, assert_softmax_close, ref_softmax
from simdsoftmax import _core
from tiles import sizes_for, tiles


def test_probes(isa, dtype):
    rng = np.random.default_rng(13)
    t = tiles(isa, dtype)
    sizes = {0, 1, 17, 1000, 4097} | set(sizes_for(max(t["probe_read"], t["probe_copy"], t["probe_fill"])))
    for n in sorted(sizes):
        x = rng.standard_normal(n).astype(dtype)
        assert _core.probe_read(x) == pytest.approx(float(x.astype(np.float64).sum()), rel=1e-4, abs=1e-4)
        ybuf = np.full(n + 16, -3.0, dtype)
        y = ybuf[:n]
        _core.probe_copy(x, y)
        assert np.array_equal(x, y)
        _core.probe_write(y, 2.5)
        assert np.all(y == 2.5)
        assert np.all(ybuf[n:] == -3.0), n


@pytest.mark.parametrize("offset", [0, 1, 3, 5, 16])
def test_streaming_and_regular_stores_agree(isa, dtype, restore_settings, offset):
    """Both store paths, forced, give identical results (alignment heads at every offset)."""
    rng = np.random.default_rng(7)
    base = (rng.standard_normal(3 * 301 + offset) * 6).astype(dtype)
    x = base[offset:].reshape(3, 301)
    results = {}
    for policy in ("stream", "regular"):
        _core.testing.set_store_policy(policy)
        assert _core.runtime_settings()["store_policy"] == policy
        ybuf = np.full(3 * 301 + offset + 8, 5.0, dtype)
        y = ybuf[offset : offset + 3 * 301].reshape(3, 301)
        r = []
        for a in ALGORITHMS:
            _core.softmax(x, y, a)
            r.append(y.copy())
        _core.log_softmax(x, y)
        r.append(y.copy())
        x3, y3 = x.reshape(3, 7, 43), y.reshape(3, 7, 43)
        _core.softmax_strided(x3, y3, "auto")
        r.append(y.copy())
        _core.log_softmax_strided(x3, y3)
        r.append(y.copy())
        _core.probe_copy(x, y)
        r.append(y.copy())
        _core.probe_write(y, 1.5)
        r.append(y.copy())
        assert np.all(ybuf[:offset] == 5.0) and np.all(ybuf[offset + 3 * 301 :] == 5.0)
        results[policy] = r
    for a, b in zip(results["stream"], results["regular"]):
        assert a.tobytes() == b.tobytes()
    assert_softmax_close(results["stream"][0], ref_softmax(x))
    with pytest.raises(ValueError, match="store policy"):
        _core.testing.set_store_policy("sometimes")


def test_auto_policies_follow_the_cache():
    s = _core.runtime_settings()
    assert s["l2_bytes"] > 0 and s["l1d_bytes"] > 0 and s["cache_source"]
    llc = s["l3_bytes"] or s["l2_bytes"]
    assert s["stream_min_bytes"] >= llc
    assert s["l2_bytes"] // 2 <= s["reload_max_bytes"] <= max(s["l2_bytes"], llc)
    # auto: three-pass-reload for rows that stay in the core's cache, two-pass beyond
    assert _core.resolve_auto(256, "float32") == "three-pass-reload"
    assert _core.resolve_auto(64 << 20, "float32") == "two-pass"
    assert _core.resolve_auto(64 << 20, "float64") == "two-pass"
