"""The Gumbel noise and draws pinned to fixed bits on every kernel set and
every architecture.

tests/test_gumbel.py compares the kernel sets one machine can run with each
other; these digests (SHA-256 of the raw result bytes, computed on x86-64)
carry the comparison across machines: the neon kernels, tested under aarch64
emulation (tools/emulated_arm64.sh), must give the very bits the x86 kernel
sets give for the same rng state. The logits are exact small binary fractions
built from integers, so they are the same everywhere too.
"""
import hashlib

import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core


def digest(a):
    a = np.ascontiguousarray(a)
    return f"{a.dtype.str}{a.shape}:" + hashlib.sha256(a.tobytes()).hexdigest()[:20]


def logits(rows, n, dtype):
    """Logits in [-8, 8) with a masked entry per row, identical on every platform."""
    i = np.arange(rows * n, dtype=np.int64).reshape(rows, n)
    x = ((i * 2654435761) % 4096 - 2048).astype(dtype) / 256
    x[:, 5 % n] = -np.inf if n > 1 else x[:, 5 % n]
    return x


# Sizes that leave a tail of every length for 4-, 8- and 16-lane vectors and
# cross the 64-element tiles and 1024-element gate spans.
SIZES = (1, 3, 17, 63, 64, 65, 1000, 1031)


def noise(n, dtype):
    g = np.empty((3, n), dtype)
    hooks = getattr(_core, "testing", _core)  # the test hooks may live in a submodule
    hooks.gumbel_noise(g, 11, 12, 13, 2, 5)  # key, first row, first column
    return g


def results(dtype):
    out = {}
    for n in SIZES:
        x = logits(3, n, dtype)
        out[f"noise-{n}"] = digest(noise(n, dtype))
        out[f"argmax-{n}"] = digest(ssm.gumbel_argmax(x, temperature=0.8, rng=21).astype(np.int64))
        if n >= 4:
            out[f"topk-{n}"] = digest(ssm.gumbel_topk(x, 3, temperature=1.3, rng=22).astype(np.int64))
        for tau in (0.7, 1.0):
            out[f"softmax-{tau}-{n}"] = digest(ssm.gumbel_softmax(x, tau=tau, rng=23))
    return out


# Computed with the x86-64 kernel sets (scalar, avx2 and avx512 agree):
#   python -c "import tests.test_noise_golden as t, numpy as np, pprint;
#              pprint.pprint({d: t.results(np.dtype(d)) for d in ('float32', 'float64')})"
EXPECTED = {
    "float32": {
        "argmax-1": "<i8(3,):9d908ecfb6b256def8b4",
        "argmax-1000": "<i8(3,):c8fec4d59252fc355b51",
        "argmax-1031": "<i8(3,):61f7e3acca57c0b3e7ca",
        "argmax-17": "<i8(3,):6ebdce41869d5394957f",
        "argmax-3": "<i8(3,):32edb6022c0921d99aa3",
        "argmax-63": "<i8(3,):62932cf0143f5d9beada",
        "argmax-64": "<i8(3,):83b86d2da846677a851a",
        "argmax-65": "<i8(3,):58de8821cff72537e194",
        "noise-1": "<f4(3, 1):96e6497f801a5cff23e0",
        "noise-1000": "<f4(3, 1000):773467837d6bf5b05b49",
        "noise-1031": "<f4(3, 1031):3a4c71268e1a4f226158",
        "noise-17": "<f4(3, 17):3dfc5ad2427c35d7c6f4",
        "noise-3": "<f4(3, 3):b12bf901d454adeaee38",
        "noise-63": "<f4(3, 63):4cf4606f46c3c0195b40",
        "noise-64": "<f4(3, 64):830389b69a5d017508fa",
        "noise-65": "<f4(3, 65):48dfb788ad76526db805",
        "softmax-0.7-1": "<f4(3, 1):a31c92fd4715d75f660d",
        "softmax-0.7-1000": "<f4(3, 1000):ab0a72f0c9b9dab20850",
        "softmax-0.7-1031": "<f4(3, 1031):53efd47d15ad96077eae",
        "softmax-0.7-17": "<f4(3, 17):0be4087e630bcd4fd2e3",
        "softmax-0.7-3": "<f4(3, 3):2a61765e6acf78f1e540",
        "softmax-0.7-63": "<f4(3, 63):4fff8b716818a847d6bc",
        "softmax-0.7-64": "<f4(3, 64):2cafcb35be7aa65d99eb",
        "softmax-0.7-65": "<f4(3, 65):37736e2c027bbb84ead2",
        "softmax-1.0-1": "<f4(3, 1):8a31a40ecac0ceb4d87b",
        "softmax-1.0-1000": "<f4(3, 1000):ba3397e3cec7e911fd1d",
        "softmax-1.0-1031": "<f4(3, 1031):5a94ee5db31982b331ec",
        "softmax-1.0-17": "<f4(3, 17):a64e748217ff93a75c91",
        "softmax-1.0-3": "<f4(3, 3):7b6d9d27db866745e38f",
        "softmax-1.0-63": "<f4(3, 63):9e9f96c4add0ce09f779",
        "softmax-1.0-64": "<f4(3, 64):47195789d4eb3b155bab",
        "softmax-1.0-65": "<f4(3, 65):d32f08a1aab34e714d34",
        "topk-1000": "<i8(3, 3):fcbcef4848493b9f4b02",
        "topk-1031": "<i8(3, 3):9ac8b7ed4ff5a9a99e55",
        "topk-17": "<i8(3, 3):8e10679b33e6461a5b7e",
        "topk-63": "<i8(3, 3):f64675df5247e374f0ba",
        "topk-64": "<i8(3, 3):5adcb080fb6a090f9cd1",
        "topk-65": "<i8(3, 3):e0edd724b65227a0177b",
    },
    "float64": {
        "argmax-1": "<i8(3,):9d908ecfb6b256def8b4",
        "argmax-1000": "<i8(3,):c8fec4d59252fc355b51",
        "argmax-1031": "<i8(3,):61f7e3acca57c0b3e7ca",
        "argmax-17": "<i8(3,):6ebdce41869d5394957f",
        "argmax-3": "<i8(3,):32edb6022c0921d99aa3",
        "argmax-63": "<i8(3,):62932cf0143f5d9beada",
        "argmax-64": "<i8(3,):83b86d2da846677a851a",
        "argmax-65": "<i8(3,):58de8821cff72537e194",
        "noise-1": "<f8(3, 1):749be1e775ebb9a1b4c6",
        "noise-1000": "<f8(3, 1000):3475776b8b8b3ffc5f72",
        "noise-1031": "<f8(3, 1031):ee1820876d364d9448c8",
        "noise-17": "<f8(3, 17):940490d70a7fab9ccf2a",
        "noise-3": "<f8(3, 3):94bad4bcc29d154b3316",
        "noise-63": "<f8(3, 63):bd9967da287a3d4c5f23",
        "noise-64": "<f8(3, 64):8b9a63bd23a2c85360c8",
        "noise-65": "<f8(3, 65):8a7ff7b59544601ca82f",
        "softmax-0.7-1": "<f8(3, 1):cc143326a2646c605ea6",
        "softmax-0.7-1000": "<f8(3, 1000):7ac1dfcbb5d73124362d",
        "softmax-0.7-1031": "<f8(3, 1031):6544642c6cc44d88a3fa",
        "softmax-0.7-17": "<f8(3, 17):26512760e083dfa2b901",
        "softmax-0.7-3": "<f8(3, 3):9fe5873b138ea9ac9970",
        "softmax-0.7-63": "<f8(3, 63):2689938fa214abce3db3",
        "softmax-0.7-64": "<f8(3, 64):1b8dfc1a707fc7697b4a",
        "softmax-0.7-65": "<f8(3, 65):85c9981f0bcbca4deb7b",
        "softmax-1.0-1": "<f8(3, 1):b76eeaa8ec87bd070e85",
        "softmax-1.0-1000": "<f8(3, 1000):678b8801652989a09043",
        "softmax-1.0-1031": "<f8(3, 1031):8a2c20bdf64626944d09",
        "softmax-1.0-17": "<f8(3, 17):ee24e4d742c845f09b2b",
        "softmax-1.0-3": "<f8(3, 3):9ffcaa6f9b8b48031032",
        "softmax-1.0-63": "<f8(3, 63):9e645690302f73c6e187",
        "softmax-1.0-64": "<f8(3, 64):0db486087bec587d9838",
        "softmax-1.0-65": "<f8(3, 65):9d66398fa494b6de3d38",
        "topk-1000": "<i8(3, 3):fcbcef4848493b9f4b02",
        "topk-1031": "<i8(3, 3):9ac8b7ed4ff5a9a99e55",
        "topk-17": "<i8(3, 3):8e10679b33e6461a5b7e",
        "topk-63": "<i8(3, 3):f64675df5247e374f0ba",
        "topk-64": "<i8(3, 3):5adcb080fb6a090f9cd1",
        "topk-65": "<i8(3, 3):e0edd724b65227a0177b",
    },
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_noise_and_draws_match_the_pinned_bits(isa, dtype):
    got = results(np.dtype(dtype))
    expected = EXPECTED[dtype]
    assert got.keys() == expected.keys()
    wrong = {k: (got[k], expected[k]) for k in got if got[k] != expected[k]}
    assert not wrong, f"{isa}: differs from the x86-64 bits: {wrong}"
