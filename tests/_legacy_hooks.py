"""Temporary: _core.testing for builds that predate it (removed once merged)."""
import types

from simdsoftmax import _core

# (lanes, wide lanes, fast-sum unroll, fast-sum block) per kernel set and dtype
_GEOMETRY = {
    ("avx512", "float32"): (16, 8, 8, 2),
    ("avx512", "float64"): (8, 8, 4, 2),
    ("avx2", "float32"): (8, 4, 4, 2),
    ("avx2", "float64"): (4, 4, 8, 1),
    ("scalar", "float32"): (1, 1, 4, 2),
    ("scalar", "float64"): (1, 1, 8, 2),
}
_VARIANTS = {"u2b2": 4, "u4b1": 4, "u4b2": 8, "u8b1": 8, "u2b4": 8, "u8b2": 16}


def _tiles(isa, dtype):
    w, ww, u, b = _GEOMETRY[isa, dtype]
    t = {"lanes": w, "lanes_wide": ww, "expsum_fast": u * b * w, "expsum_pow2": u * b * w,
         "expsum_store_pow2": 8 * w}
    for name in ("expsum", "expsum_online", "max_scan", "expsum_store", "scale", "write_exp", "write_shift",
                 "vexp", "probe_read", "probe_copy", "probe_fill"):
        t[name] = 4 * w
    t.update(expsum_wide=4 * ww, expsum_online_wide=4 * ww, strided_panel=4096, strided_rows=4,
             expsum_strided_fast=w, expsum_strided_online=ww, write_exp_strided=4 * w, write_shift_strided=4 * w)
    for name, vectors in _VARIANTS.items():
        t["expsum_fast." + name] = vectors * w
    t.update({"gumbel.lanes": w, "gumbel.group": 16, "gumbel.tile": 64, "gumbel.gate_span": 1024})
    return t


def install():
    if hasattr(_core, "testing"):
        return
    _core.testing = types.SimpleNamespace(
        tiles=_tiles, exp=_core.exp, set_store_policy=_core.set_store_policy, set_chunking=_core._set_chunking,
        set_parallel_min=_core._set_parallel_min, set_prefetch=_core._set_prefetch,
        tune_expsum=_core._tune_expsum, gumbel_noise=_core.gumbel_noise, philox16=_core.philox16)
