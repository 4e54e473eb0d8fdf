"""float16 / bfloat16 kernels: 2-byte rows computed in float32, rounded once.

Contract: softmax and log_softmax within 1 ulp of the half type of the exact
result (float64 from the same, exactly widened, inputs), logsumexp within 1
ulp in its dtype; every kernel set, every vector and block tail, special
values as the float32 path gives them; conversions bit-exact (nearest even).
bfloat16 is handled as its uint16 bits, so these tests need no ml_dtypes.
"""

import os

import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core, _half
from simdsoftmax._arrays import _Half

pytestmark = pytest.mark.skipif(not _half.KERNELS, reason="half kernels not compiled")

FORMATS = {"float16": 0, "bfloat16": 1}
MANT = {"float16": 10, "bfloat16": 7}
MIN_ULP = {"float16": 2.0**-24, "bfloat16": 2.0**-133}

# 1..33 hits every tail of 8- and 16-lane vectors; 65535..65537 the switch
# from whole rows to blocks (kHalfWholeRow); 69631..69633 a long row whose
# last 4096-element block is one short, full, one over; 70000 a partial one.
LONG = 70000
SIZES = list(range(1, 34)) + [64, 255, 4095, 4096, 4097, 65535, 65536, 65537, 69631, 69632, 69633, LONG]


@pytest.fixture(params=list(FORMATS))
def fmt(request):
    return request.param


# The kernel sets of conftest's `isa` fixture, plus "avx512-integer" where the
# CPU has AVX512_BF16: the avx512 set then rounds bfloat16 with vcvtneps2bf16,
# and this variant turns that off to run the set's integer rounding too.
_ISAS = [name for name in ssm.available_isas()
         if name in os.environ.get("SIMDSOFTMAX_TEST_ISAS", name).split(",")]
_HALF_ISAS = _ISAS + (["avx512-integer"] if "avx512" in _ISAS and _core.half_bf16_instructions() else [])


@pytest.fixture(params=_HALF_ISAS, ids=lambda name: f"isa={name}")
def isa(request):
    """conftest's `isa` for the half tests: yields the set's name, with the
    avx512 set's bfloat16 rounding variant (above) as a further parameter."""
    name, _, variant = request.param.partition("-")
    before = ssm.isa()
    ssm.use_isa(name)
    _core.half_bf16_instructions(variant != "integer")
    try:
        assert ssm.isa() == name and _core.get_isa() == name
        yield name
    finally:
        _core.half_bf16_instructions(True)
        _core.set_isa(before)


def to_bits(x64, fmt):
    """float64 values -> half bits, rounded by NumPy (float16) or by integer RNE (bfloat16)."""
    if fmt == "float16":
        return np.asarray(x64, np.float16).view(np.uint16)
    return _half.narrow_bits(np.asarray(x64, np.float32), fmt)


def from_bits(bits, fmt):
    if fmt == "float16":
        return bits.view(np.float16).astype(np.float64)
    return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def ulp(v, fmt):
    """One ulp of the half format at |v| (float64 array)."""
    _, e = np.frexp(np.abs(v))
    return np.maximum(np.ldexp(1.0, e - 1 - MANT[fmt]), MIN_ULP[fmt])


def within_one_ulp(got, want, fmt):
    """got within 1 ulp of the exact `want`; where `want` overflows the format, exactly its rounding (inf)."""
    want = np.where(np.isfinite(from_bits(to_bits(want, fmt), fmt)), want, from_bits(to_bits(want, fmt), fmt))
    finite = np.isfinite(want)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)])
    err = np.abs(got[finite] - want[finite])
    bound = ulp(want[finite], fmt)
    assert (err <= bound).all(), f"max error {np.max(err / bound):.3f} ulp"


def half(x64, fmt):
    bits = to_bits(x64, fmt)
    return _Half(bits, fmt, None), from_bits(bits, fmt)


def call(name, h, **kw):
    fn = {"softmax": _half.softmax, "log_softmax": _half.log_softmax}[name]
    from simdsoftmax._arrays import _params

    api = getattr(ssm._api, name)
    params = _params(api, ("x", "out"))
    args, kwargs = [h], dict(kw)
    return fn(api, args, kwargs, params[0], params[1])


def reference(name, x64, axis=-1):
    return getattr(ssm, name)(x64, axis=axis)


@pytest.mark.parametrize("n", SIZES)
def test_rowwise_every_tail(isa, fmt, n):
    rng = np.random.default_rng(n)
    rows = 3 if n < 20000 else 1
    x64 = rng.normal(0.0, 4.0, size=(rows, n))
    h, exact_in = half(x64, fmt)
    for name in ("softmax", "log_softmax"):
        y = call(name, h, axis=-1)
        assert y.bits.dtype == np.uint16 and y.fmt == fmt and y.bits.shape == x64.shape
        within_one_ulp(from_bits(y.bits, fmt), reference(name, exact_in), fmt)
    res = _half.logsumexp(ssm._api.logsumexp, [h], {"axis": -1}, _primary(), None)
    within_one_ulp(from_bits(res.bits, fmt), ssm.logsumexp(exact_in, axis=-1), fmt)


def _primary():
    from simdsoftmax._arrays import _Param

    return _Param("x", 0)


@pytest.mark.parametrize("algorithm", ssm._api.ALGORITHMS)
def test_softmax_algorithms(isa, fmt, algorithm):
    rng = np.random.default_rng(5)
    for n in (7, 1000, LONG):
        x64 = rng.normal(0.0, 2.0, size=(2, n))
        h, exact_in = half(x64, fmt)
        y = call("softmax", h, axis=-1, algorithm=algorithm)
        within_one_ulp(from_bits(y.bits, fmt), reference("softmax", exact_in), fmt)


def test_huge_bfloat16_values(isa):
    """bfloat16 reaches 3e38: rows far outside the fast two-pass range."""
    fmt = "bfloat16"
    for n in (10, LONG):
        x64 = np.linspace(-3e38, 3e38, n)[None, :] * np.array([[1.0], [1e-30]])
        x64[0, n // 3] = 3.3e38
        h, exact_in = half(x64, fmt)
        for name in ("softmax", "log_softmax"):
            y = call(name, h, axis=-1)
            within_one_ulp(from_bits(y.bits, fmt), reference(name, exact_in), fmt)
        res = _half.logsumexp(ssm._api.logsumexp, [h], {"axis": -1}, _primary(), None)
        within_one_ulp(from_bits(res.bits, fmt), ssm.logsumexp(exact_in, axis=-1), fmt)


@pytest.mark.parametrize("n", [5, LONG])
def test_special_values(isa, fmt, n):
    """Rows with -inf, NaN, +inf, all -inf: as the float32 path (SciPy's semantics)."""
    rng = np.random.default_rng(1)
    x64 = rng.normal(size=(6, n))
    x64[0, 1] = -np.inf
    x64[1, 2] = np.nan
    x64[2, 0] = np.inf
    x64[3, :] = -np.inf
    x64[4, ::2] = -np.inf
    x64[5, -1] = np.inf
    x64[5, 0] = -np.inf
    h, exact_in = half(x64, fmt)
    f32 = exact_in.astype(np.float32)
    for name in ("softmax", "log_softmax"):
        y = from_bits(call(name, h, axis=-1).bits, fmt)
        with np.errstate(all="ignore"):
            want = from_bits(to_bits(getattr(ssm, name)(f32, axis=-1).astype(np.float64), fmt), fmt)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
        ok = ~np.isnan(want)
        within_one_ulp(y[ok], reference(name, exact_in)[ok], fmt)
    res, sgn = _half.logsumexp(ssm._api.logsumexp, [h], {"axis": -1, "return_sign": True}, _primary(), None)
    want, want_sign = ssm.logsumexp(f32, axis=-1, return_sign=True)
    np.testing.assert_array_equal(from_bits(res.bits, fmt), from_bits(to_bits(want.astype(np.float64), fmt), fmt))
    np.testing.assert_array_equal(from_bits(sgn.bits, fmt), want_sign)


def test_threads_give_the_same_bits(fmt):
    rng = np.random.default_rng(3)
    before = ssm.get_num_threads()
    for shape in ((64, 5000), (4, LONG)):
        h, _ = half(rng.normal(size=shape), fmt)
        try:
            ssm.set_num_threads(1)
            one = call("softmax", h, axis=-1).bits.copy()
            ssm.set_num_threads(2)
            two = call("softmax", h, axis=-1).bits
        finally:
            ssm.set_num_threads(before)
        np.testing.assert_array_equal(one, two)


def test_in_place_and_out(fmt):
    rng = np.random.default_rng(4)
    x64 = rng.normal(size=(3, 100))
    h, exact_in = half(x64, fmt)
    want = call("softmax", h, axis=-1).bits.copy()
    out = _Half(np.zeros_like(h.bits), fmt, None)
    assert call("softmax", h, axis=-1, out=out) is out
    np.testing.assert_array_equal(out.bits, want)
    assert call("softmax", h, axis=-1, out=h) is h  # in place
    np.testing.assert_array_equal(h.bits, want)


# --------------------------------------------------------------------------
# Conversions, bit-exact on every kernel set


def test_widening_every_value(isa, fmt):
    bits = np.arange(65536, dtype=np.uint16)
    got = np.empty(65536, np.float32)
    _core.half_convert(bits, got, FORMATS[fmt], False)
    want = from_bits(bits, fmt).astype(np.float32)
    np.testing.assert_array_equal(got.view(np.uint32)[~np.isnan(want)], want.view(np.uint32)[~np.isnan(want)])
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


def _narrowing_cases():
    rng = np.random.default_rng(6)
    random = rng.integers(0, 2**32, size=200_000, dtype=np.uint64).astype(np.uint32)
    # Ties and near-ties of both formats (low 16 / 13 bits at and around half),
    # overflow thresholds, subnormals of float16, zeros, infinities, NaNs.
    base = rng.integers(0, 2**32, size=2000, dtype=np.uint64).astype(np.uint32)
    ties = np.concatenate(
        [(base & ~np.uint32(0xFFFF)) | np.uint32(v) for v in (0x7FFF, 0x8000, 0x8001)]
        + [(base & ~np.uint32(0x1FFF)) | np.uint32(v) for v in (0x0FFF, 0x1000, 0x1001)]
    )
    special = np.array(
        [0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00001, 0x7F800001, 0x7F7FFFFF, 0x7F7F8000,
         0x7F7F7FFF, 0x477FEFFF, 0x477FF000, 0x477FF001, 0x33000000, 0x33000001, 0x32FFFFFF, 0x38800000,
         0x387FFFFF, 0x00000001, 0x00800000, 0x337FFFFF, 0x33C00000],
        dtype=np.uint32,
    )
    return np.concatenate([random, ties, special, special | np.uint32(0x80000000)]).view(np.float32)


def test_narrowing_rounds_to_nearest_even(isa, fmt):
    x = _narrowing_cases()
    n = x.size - x.size % 64  # a multiple of every vector width, then the tail sizes below
    got = np.empty(x.size, np.uint16)
    _core.half_convert(x, got, FORMATS[fmt], True)
    if fmt == "float16":
        with np.errstate(over="ignore"):
            want = x.astype(np.float16).view(np.uint16)
    else:
        ml_dtypes = pytest.importorskip("ml_dtypes") if False else None
        want = _half.narrow_bits(x, fmt)
    nan = np.isnan(x)
    np.testing.assert_array_equal(got[~nan], want[~nan])
    back = from_bits(got[nan], fmt)
    assert np.isnan(back).all()
    quiet_bit = 0x0200 if fmt == "float16" else 0x0040  # the top mantissa bit: a quiet NaN
    assert np.all(got[nan] & quiet_bit), [hex(v) for v in got[nan]]
    np.testing.assert_array_equal(np.signbit(back), np.signbit(x[nan]))
    for tail in range(1, 40):
        part = np.empty(tail, np.uint16)
        _core.half_convert(x[n - tail : n].copy(), part, FORMATS[fmt], True)
        np.testing.assert_array_equal(part[~nan[n - tail : n]], want[n - tail : n][~nan[n - tail : n]])


def test_bfloat16_rounding_matches_ml_dtypes():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = _narrowing_cases()
    ok = ~np.isnan(x)
    np.testing.assert_array_equal(
        _half.narrow_bits(x, "bfloat16")[ok], x.astype(ml_dtypes.bfloat16).view(np.uint16)[ok]
    )


def test_conversions_follow_the_kernel_set(isa):
    assert _core.half_convert_isa() == ("scalar" if isa == "scalar" else isa)


# --------------------------------------------------------------------------
# Through the public functions (NumPy float16)


@pytest.mark.parametrize("n", [1, 15, 16, 17, 4097, LONG])
def test_public_float16(isa, n):
    rng = np.random.default_rng(n + 100)
    x = rng.normal(0.0, 3.0, size=(2, n)).astype(np.float16)
    x64 = x.astype(np.float64)
    for name in ("softmax", "log_softmax"):
        y = getattr(ssm, name)(x, axis=-1)
        assert y.dtype == np.float16
        within_one_ulp(y.astype(np.float64), reference(name, x64), "float16")
        # Other axes and layouts: the rows are gathered at 2 bytes per element.
        yt = getattr(ssm, name)(np.asfortranarray(x), axis=-1)
        np.testing.assert_array_equal(yt, y)
    s = ssm.logsumexp(x, axis=-1)
    assert s.dtype == np.float16
    within_one_ulp(s.astype(np.float64), ssm.logsumexp(x64, axis=-1), "float16")
    np.testing.assert_array_equal(ssm.gumbel_argmax(x, rng=1), ssm.gumbel_argmax(x.astype(np.float32), rng=1))


def test_byte_swapped_float16():
    """Non-native float16 is read through a native copy and an out of that order written in place."""
    x = np.linspace(-3, 3, 37).astype(">f2")
    want = ssm.softmax(x.astype(np.float16))
    got = ssm.softmax(x)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, want)
    assert ssm.softmax(x, out=x) is x and x.dtype == np.dtype(">f2")
    np.testing.assert_array_equal(x.astype(np.float16), want)
