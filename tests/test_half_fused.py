"""The fused half kernels: float16 / bfloat16 read and written by the passes themselves.

Each kernel set with fused kernels (half_api.h) runs softmax, log_softmax and
logsumexp on the half bits directly; rows below a threshold, algorithms other
than two-pass/auto and sets without them take the buffered path (blocks
widened into a float32 buffer). Both paths are forced here on every kernel set
this machine runs, at every tail of the fused kernels' loops (their tiles),
against float64 references of the exactly widened inputs (tests/reference.py):
within 1 ulp of the half format, special rows as the float32 path gives them.
"""

import numpy as np
import pytest

import simdsoftmax as ssm
from reference import ref_log_softmax, ref_logsumexp, ref_softmax
from simdsoftmax import _core, _half
from test_half import FORMATS, from_bits, isa, to_bits, within_one_ulp  # noqa: F401 (isa: the fixture)

pytestmark = pytest.mark.skipif(not _half.KERNELS, reason="half kernels not compiled")

PATHS = {"fused": 0, "buffered": 1 << 62, "default": None}


@pytest.fixture(params=list(FORMATS))
def fmt(request):
    return request.param


@pytest.fixture(params=list(PATHS))
def path(request):
    """Force the fused kernels for every row length, never, or leave the default threshold."""
    _core.half_set_fused_min(PATHS[request.param])
    try:
        yield request.param
    finally:
        _core.half_set_fused_min(None)


def tail_sizes(isa, fmt):
    """1 .. 2 * the largest tile + 1, multiples of each tile and their neighbours,
    and the fused drivers' chunk boundary (rows above 2^16 are summed in chunks)."""
    tiles = _core.half_tiles(isa, FORMATS[fmt])
    top = max(tiles.values(), default=16)
    sizes = set(range(1, 2 * top + 2))
    for t in tiles.values():
        sizes.update({3 * t - 1, 3 * t, 3 * t + 1, 7 * t + 3})
    sizes.update({65535, 65536, 65537, 2 * 65536 + 5})
    return sorted(sizes)


def run(name, bits, fmt, algorithm="auto"):
    code = FORMATS[fmt]
    if name == "logsumexp":
        out = np.empty(bits.shape[0], np.float32)
        special = _core.half_logsumexp(bits, out, code)
        return out.astype(np.float64), special
    out = np.empty_like(bits)
    kernel = _core.half_softmax if name == "softmax" else _core.half_log_softmax
    special = kernel(bits, out, code, algorithm) if name == "softmax" else kernel(bits, out, code)
    return from_bits(out, fmt), special


def reference(name, x64):
    if name == "softmax":
        return ref_softmax(x64, axis=-1)
    if name == "log_softmax":
        return ref_log_softmax(x64, axis=-1)
    return ref_logsumexp(x64, axis=-1)[0]


def test_fused_kernels_follow_the_kernel_set(isa):
    tiles = _core.half_tiles(isa, 0)
    lanes = {"avx512": 16, "avx2": 8, "scalar": 1}
    if isa == "neon":
        return  # no fused kernels there yet: the buffered path
    assert tiles["lanes"] == lanes[isa]
    assert _core.half_fused_isa() == isa


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_every_tail(isa, fmt, path, name):
    rng = np.random.default_rng(17)
    for n in tail_sizes(isa, fmt):
        rows = 2 if n < 4096 else 1
        bits = to_bits(rng.normal(0.0, 4.0, size=(rows, n)), fmt)
        x64 = from_bits(bits, fmt)
        got, special = run(name, bits, fmt)
        assert special.size == 0, (n, special)
        want = reference(name, x64)
        if name == "logsumexp":
            # logsumexp's float32 result is rounded to the format by the caller.
            got = from_bits(to_bits(got, fmt), fmt)
        try:
            within_one_ulp(got, want, fmt)
        except AssertionError as e:
            raise AssertionError(f"n={n}: {e}") from None


@pytest.mark.parametrize("algorithm", ["auto", "two-pass"])
def test_softmax_both_fused_algorithms(isa, fmt, path, algorithm):
    """auto runs in-cache rows as three-pass-reload (float32 terms in a buffer), two-pass never."""
    rng = np.random.default_rng(3)
    for n in (257, 1000, 4096, 65536, 70001):
        bits = to_bits(rng.normal(0.0, 3.0, size=(2, n)), fmt)
        got, special = run("softmax", bits, fmt, algorithm)
        assert special.size == 0
        within_one_ulp(got, ref_softmax(from_bits(bits, fmt), axis=-1), fmt)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_last_pass_every_tail(isa, fmt, path, name):
    """The write passes of rows past the short-row kernels (softmax's scale_from_f32 on the
    reload paths, log_softmax's write_shift; AVX2: four vectors a step, bfloat16 two per
    store): single rows of every tail of that step, short and past 4096, with -inf entries
    near the end and a wide scale (softmax results down to the format's subnormals and zeros)."""
    rng = np.random.default_rng(23)
    for n in list(range(1, 70)) + [8192 + k for k in range(34)]:
        x64 = rng.normal(0.0, 30.0, size=(1, n))
        if n > 2:
            x64[0, n - 1 - n % 3] = -np.inf
        bits = to_bits(x64, fmt)
        got, special = run(name, bits, fmt)
        assert special.size == 0, (n, special)
        try:
            within_one_ulp(got, reference(name, from_bits(bits, fmt)), fmt)
        except AssertionError as e:
            raise AssertionError(f"n={n}: {e}") from None


def test_max_far_above_the_sampled_entries(isa, fmt, path):
    """The reload path guesses the max from 32 samples; a spike between them must still give the right row."""
    for n in (300, 5000, 60000):
        x64 = np.zeros((1, n))
        x64[0, 7] = 90.0 if fmt == "float16" else 300.0  # not a sampled index; exp(spike) > 2^100
        x64[0, n // 2 + 3] = -5.0
        bits = to_bits(x64, fmt)
        got, special = run("softmax", bits, fmt)
        assert special.size == 0
        within_one_ulp(got, ref_softmax(from_bits(bits, fmt), axis=-1), fmt)


def test_wide_ranges(isa, fmt, path):
    """Rows beyond the fast range (bfloat16 reaches 3e38) and rows of tiny values."""
    rng = np.random.default_rng(9)
    big = 6e4 if fmt == "float16" else 3e38
    for n in (300, 4097, 70000):
        for scale in (big, 1e3, 1e-3):
            x64 = np.clip(rng.normal(0.0, scale, size=(1, n)), -big, big)
            with np.errstate(over="ignore"):
                bits = to_bits(x64, fmt)
            xw = from_bits(bits, fmt)
            for name in ("softmax", "log_softmax", "logsumexp"):
                got, special = run(name, bits, fmt)
                assert special.size == 0
                if name == "logsumexp":
                    with np.errstate(over="ignore"):  # a sum past the format's largest value: inf
                        got = from_bits(to_bits(got, fmt), fmt)
                within_one_ulp(got, reference(name, xw), fmt)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_results_below_the_smallest_normal_float32(isa, fmt, path, name):
    """Results under 2^-126 (float32 subnormals before the rounding, which
    AVX512_BF16's vcvtneps2bf16 would flush to zero) at every position of a
    vector: a ramp into the subnormals, and a dominant entry whose
    log-probability is -3.7e-44 (n - 1)."""
    for n in (33, 300, 4097, 70000):
        x = np.zeros((3, n))
        x[0] = np.linspace(-110.0, 0.0, n)
        x[1] = -100.0
        x[1, n // 2] = 0.0
        x[2] = -95.0 - np.arange(n) % 17
        x[2, 0] = 0.0
        bits = to_bits(x, fmt)
        got, special = run(name, bits, fmt)
        assert special.size == 0
        within_one_ulp(got, reference(name, from_bits(bits, fmt)), fmt)


@pytest.mark.parametrize("n", [300, 4099, 70000])
def test_special_rows_through_the_public_functions(isa, path, n):
    """NaN, +inf, -inf and all -inf rows: the float32 results of the same values, rounded."""
    x = np.random.default_rng(n).normal(size=(6, n)).astype(np.float16)
    x[0, n // 3] = np.nan
    x[1, n // 2] = np.inf
    x[2, : n // 2] = -np.inf
    x[3, :] = -np.inf
    x[4, 5] = np.inf
    x[4, 9] = np.inf
    for name in ("softmax", "log_softmax", "logsumexp"):
        with np.errstate(all="ignore"):
            got = getattr(ssm, name)(x, axis=-1)
            want = getattr(ssm, name)(x.astype(np.float32), axis=-1).astype(np.float16)
        assert got.dtype == np.float16
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=name)
        ok = ~np.isnan(want)
        np.testing.assert_allclose(got[ok].astype(np.float64), want[ok].astype(np.float64), rtol=2**-10, atol=2**-24,
                                   err_msg=name)


def test_in_place(isa, fmt, path):
    rng = np.random.default_rng(4)
    for n in (300, 5000, 70001):
        bits = to_bits(rng.normal(0.0, 2.0, size=(2, n)), fmt)
        x64 = from_bits(bits, fmt)
        for name in ("softmax", "log_softmax"):
            y = bits.copy()
            kernel = _core.half_softmax if name == "softmax" else _core.half_log_softmax
            special = kernel(y, y, FORMATS[fmt], "auto") if name == "softmax" else kernel(y, y, FORMATS[fmt])
            assert special.size == 0
            within_one_ulp(from_bits(y, fmt), reference(name, x64), fmt)


def test_threads_give_the_same_bits(fmt):
    bits = to_bits(np.random.default_rng(8).normal(0.0, 3.0, size=(64, 20000)), fmt)
    before = ssm.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            ssm.set_num_threads(threads)
            results.append([run(name, bits, fmt)[0] for name in ("softmax", "log_softmax", "logsumexp")])
    finally:
        ssm.set_num_threads(before)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_gumbel_draws_equal_float32_of_the_same_values(isa, fmt):
    rng = np.random.default_rng(2)
    bits = to_bits(rng.normal(0.0, 2.0, size=(4, 3000)), fmt)
    x32 = from_bits(bits, fmt).astype(np.float32)
    if fmt == "float16":
        xh = bits.view(np.float16)
    else:
        ml_dtypes = pytest.importorskip("ml_dtypes")
        xh = bits.view(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(ssm.gumbel_argmax(xh, rng=5), ssm.gumbel_argmax(x32, rng=5))
    np.testing.assert_array_equal(ssm.gumbel_topk(xh, 3, rng=5), ssm.gumbel_topk(x32, 3, rng=5))
    np.testing.assert_array_equal(ssm.sample(xh, top_k=50, rng=5), ssm.sample(x32, top_k=50, rng=5))


@pytest.mark.parametrize("n", [300, 4097, 8192 + 7, 70000])
def test_log_softmax_across_the_certified_shift(isa, fmt, path, n):
    """log_softmax's pass 1 (per 4096-element block the max, then the fast float32
    sum) certifies the format's 1 ulp only while lse - max is not tiny; rows whose
    lse - max sweeps 1e-7 .. 3 (a dominant entry in any block) stay within 1 ulp."""
    rng = np.random.default_rng(n)
    gaps = np.geomspace(1e-7, 3.0, 12)
    x64 = rng.normal(-30.0, 0.5, size=(gaps.size, n))
    for r, v in enumerate(gaps):
        # sum of the others' exp = expm1(v) relative to the top entry at 0
        x64[r] += np.log(np.expm1(v) / np.exp(x64[r]).sum())
        x64[r, (r * 4099) % n] = 0.0
    bits = to_bits(x64, fmt)
    got, special = run("log_softmax", bits, fmt)
    assert special.size == 0
    within_one_ulp(got, reference("log_softmax", from_bits(bits, fmt)), fmt)


@pytest.mark.parametrize("n", [4096 * 3 + 5, 70000])
def test_log_softmax_blocks_with_special_values(isa, fmt, path, n):
    """log_softmax's pass 1 by blocks of 4096 (each block's max and its sum,
    combined over the row): NaN or +inf in a late block makes a special row;
    blocks entirely -inf weigh 0, as do scattered -inf entries."""
    rng = np.random.default_rng(n)
    x64 = rng.normal(0.0, 2.0, size=(6, n))
    x64[0, 2 * 4096 + 3] = np.nan
    x64[1, n - 1] = np.inf
    x64[2, :4096] = -np.inf
    x64[3, : n - 7] = -np.inf
    x64[4, ::5] = -np.inf
    x64[5, 4096:] = -np.inf  # the max in the first block, the rest -inf
    with np.errstate(invalid="ignore"):
        bits = to_bits(x64, fmt)
    got, special = run("log_softmax", bits, fmt)
    assert sorted(special) == [0, 1]
    within_one_ulp(got[2:], reference("log_softmax", from_bits(bits[2:], fmt)), fmt)


@pytest.mark.parametrize("spike", [20.0, 25.0, 30.0])
def test_softmax_max_a_little_above_the_sampled_entries(isa, fmt, path, spike):
    """The cached softmax's terms are taken relative to the sampled guess
    while the row's max is at most 25 above it (terms up to e^25, a factor
    2^-64 / S still a normal float32), else by the other paths: a spike
    between the samples on either side of that limit, with -inf entries."""
    for n in (300, 5000, 70001):
        x64 = np.random.default_rng(n).normal(0.0, 0.1, size=(1, n))
        x64[0, 7] = spike  # not a sampled index
        x64[0, 11::13] = -np.inf
        bits = to_bits(x64, fmt)
        got, special = run("softmax", bits, fmt)
        assert special.size == 0
        within_one_ulp(got, ref_softmax(from_bits(bits, fmt), axis=-1), fmt)


@pytest.mark.parametrize("name", ["log_softmax", "logsumexp"])
def test_block_reference_raised_within_a_block(isa, fmt, path, name):
    """Long rows' pass 1 (half_rows.h max_sum_block) takes its terms relative
    to a reference it raises, rescaling the partial sums, where a step's
    values pass the reference + 24: rows rising along their length, jumps of
    23-25 and of 100 inside a block and across blocks, a max in the last
    (masked) vector; and rows whose max lies beyond +-32768 (bfloat16), which
    leave the kernel for the other passes. Sizes around the block (4096) and
    the kernel's step (its tile)."""
    step = _core.half_tiles(isa, FORMATS[fmt]).get("max_sum_block", 16)
    rng = np.random.default_rng(step)
    for n in (4096 + 2 * step - 1, 3 * 4096 + step + 3, 20000):
        x64 = rng.normal(0.0, 1.0, size=(8, n))
        x64[0] += np.linspace(-60.0, 60.0, n)  # a raise every few steps
        x64[1, n // 3 :] += 23.0
        x64[2, n // 3 :] += 25.0
        x64[3, 4096 + step // 2 :] += 100.0
        x64[4, n - 1] = 40.0  # the max in the tail
        x64[5, ::7] = -np.inf
        x64[5, n // 2 :] += 30.0
        x64[6] -= 1000.0  # |lse| large, every term relative to a raised reference
        x64[7] = np.log(np.random.default_rng(n).dirichlet(np.ones(n)))  # lse near 0
        if fmt == "bfloat16":
            x64[6, n // 2] = 40000.0  # beyond the kernel's range: the other passes
        bits = to_bits(x64, fmt)
        got, special = run(name, bits, fmt)
        assert special.size == 0
        within_one_ulp(got, reference(name, from_bits(bits, fmt)), fmt)


@pytest.mark.parametrize("center", [-5000.0, -4090.0, 0.0, 4090.0, 5000.0])
def test_softmax_cached_terms_either_side_of_their_range(isa, fmt, path, center):
    """The cached softmax's terms (terms_from_ref: one fma from a reference
    rounded down) take rows whose sampled max is within 4096; beyond it the
    other paths."""
    for n in (300, 5000, 70001):
        x64 = center + np.random.default_rng(n).normal(0.0, 20.0, size=(2, n))
        x64[1, ::9] = -np.inf
        bits = to_bits(x64, fmt)
        got, special = run("softmax", bits, fmt)
        assert special.size == 0
        within_one_ulp(got, ref_softmax(from_bits(bits, fmt), axis=-1), fmt)
