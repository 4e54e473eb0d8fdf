"""The short half-row kernels (half_rows.h): batches of float16 / bfloat16 rows
of one vector to kHalfRowsMax (4096) elements, eight rows interleaved, the last
partial vector overlapping the one before: softmax, log_softmax and logsumexp
(whose float32 result the caller rounds to the format); and rows of 2 to 16
entries (softmax, log_softmax), whole rows per vector (AVX2 rows of 16 and
32: two or four vectors per row, wide_tiny_rows).

The path is forced on for every row length it can take (or off) with
_core.half_set_rows_max on every kernel set this machine runs; results are
within 1 ulp of the half format of float64 references of the exactly widened
inputs (tests/reference.py), special rows (NaN, +-inf, all -inf) anywhere in
a group of eight go to the exact path and come out as with the path off.
"""

from contextlib import contextmanager

import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core, _half
from test_half import FORMATS, fmt, from_bits, isa, to_bits, within_one_ulp  # noqa: F401 (fmt, isa: the fixtures)
from test_half_fused import reference, run

pytestmark = pytest.mark.skipif(not _half.KERNELS, reason="half kernels not compiled")

KERNELS = ["softmax", "log_softmax", "logsumexp"]
WRITERS = ["softmax", "log_softmax"]  # the kernels with an out=
LONGEST = 4096  # kHalfRowsMax
LISTED = [2, 3, 5, 8, 10, 16, 32, 48, 49, 64, 100, 128, 255, 256, 257, 1000, 1023, 1024, 1025, 4095, 4096, 4097]
PATHS = {"rows": LONGEST, "off": 0, "default": None}


@contextmanager
def rows_max(n):
    """Batches of rows up to n elements take the short-row kernels (0: none, None: the default ranges)."""
    _core.half_set_rows_max(n)
    try:
        yield
    finally:
        _core.half_set_rows_max(None)


@pytest.fixture(params=list(PATHS))
def path(request):
    """The short-row kernels for every row length they take, never, or by the default ranges."""
    with rows_max(PATHS[request.param]):
        yield request.param


def check(name, bits, fmt, n):
    """The kernel's rows within 1 ulp of the reference, no special row."""
    got, special = run(name, bits, fmt)
    assert special.size == 0, (n, special)
    try:
        within_one_ulp(rounded(name, got, fmt), reference(name, from_bits(bits, fmt)), fmt)
    except AssertionError as e:
        raise AssertionError(f"n={n}: {e}") from None


def lanes(isa):
    return _core.half_tiles(isa, 0).get("lanes", 16)


def sizes(isa):
    """1 .. 3 vectors + 1 (every overlap of the last vector), and the listed lengths."""
    return sorted(set(range(1, 3 * lanes(isa) + 2)) | set(LISTED))


def rounded(name, got, fmt):
    """logsumexp's float32 result rounded to the format, as the caller does."""
    return from_bits(to_bits(got, fmt), fmt) if name == "logsumexp" else got


def test_rows_kernels_in_every_set(isa):
    tiles = _core.half_tiles(isa, 1)
    if not tiles:
        pytest.skip("no fused half kernels in this set")
    assert tiles["rows_group"] == 8


@pytest.mark.parametrize("name", KERNELS)
def test_every_overlap_and_group_tail(isa, fmt, path, name):
    rng = np.random.default_rng(5)
    for n in sizes(isa):
        rows = 19  # two groups of eight and a partial one
        check(name, to_bits(rng.normal(0.0, 4.0, size=(rows, n)), fmt), fmt, n)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # -3e38 - 3e38 in the reference
@pytest.mark.parametrize("name", KERNELS)
def test_hard_rows(isa, fmt, path, name):
    """A dominant entry (log_softmax's log1p), ties at the max, -inf entries, huge
    magnitudes, results far into the subnormals, constant rows."""
    big = 60000.0 if fmt == "float16" else 3e38
    for n in (max(lanes(isa), 2), lanes(isa) + 3, 49, 100, 256, 1000, 4096):
        x = np.zeros((12, n))
        x[0, n // 3] = 30.0  # S - 1 ~ n e^-30
        x[1, :] = -big
        x[1, [0, n - 1]] = big  # two maxima, the rest far below
        x[2, ::2] = -np.inf
        x[3, :] = np.linspace(-100.0, 0.0, n)  # subnormal results
        x[4, :] = 7.0  # ties everywhere
        x[5, :] = np.linspace(-1e4, 1e4, n) if fmt == "float16" else np.linspace(-1e30, 1e30, n)
        x[6, -1] = 12.0  # the max in the last, overlapping vector
        x[7, :] = np.random.default_rng(n).normal(0.0, 30.0, n)
        x[8, 1:] = -np.inf  # one finite entry
        x[9, :] = np.linspace(0.0, 1e-3, n)
        x[10, :] = -np.log(2.0 * (n - 1))  # S - 1 = 1/2: where log_softmax's sum switches
        x[10, 0] = 0.0
        x[11, :] = -100.0  # log_softmax of the max -3.7e-44 (n - 1): below float32's normals
        x[11, n // 2] = 0.0
        check(name, to_bits(x, fmt), fmt, n)


@pytest.mark.parametrize("name", KERNELS)
def test_max_near_64(isa, fmt, name):
    """softmax forms x log2 e - max log2 e in one fma while every |max| of a group is <= 64."""
    rng = np.random.default_rng(4)
    for top in (63.5, 64.0, 64.5, -64.0, -65.0):
        x = rng.normal(top - 3.0, 2.0, size=(16, 40))
        x[:, 5] = top
        if top > 64.0:
            x[8:, 5] = 60.0  # the second group stays on the fma
        with rows_max(LONGEST):
            check(name, to_bits(np.minimum(x, top), fmt), fmt, top)


@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("value", [np.nan, np.inf, "all -inf"])
def test_special_rows_at_every_group_position(isa, fmt, name, value):
    """A special row at each position of a group of eight (and in the partial last
    group): reported as the path off reports it, every other row unchanged."""
    rng = np.random.default_rng(11)
    n, rows = 3 * lanes(isa) + 1, 21
    base = rng.normal(0.0, 2.0, size=(rows, n))
    for pos in list(range(8)) + [16, 20]:
        x = base.copy()
        if value == "all -inf":
            x[pos] = -np.inf
        else:
            x[pos, n // 2] = value
        bits = to_bits(x, fmt)
        results = {}
        for forced in (LONGEST, 0):
            with rows_max(forced):
                results[forced] = run(name, bits, fmt)
        (on, sp_on), (off, sp_off) = results[LONGEST], results[0]
        np.testing.assert_array_equal(sp_on, sp_off)
        assert list(sp_on) == [pos]
        keep = np.arange(rows) != pos
        within_one_ulp(rounded(name, on[keep], fmt), reference(name, from_bits(bits, fmt)[keep]), fmt)


@pytest.mark.parametrize("name", KERNELS)
def test_path_on_and_off_agree(isa, fmt, name):
    """Both within the contract of the same reference, hence within 2 ulp of each other."""
    rng = np.random.default_rng(23)
    for n in (lanes(isa), 49, 100, 256, 1024, 4093):
        bits = to_bits(rng.normal(0.0, 3.0, size=(9, n)), fmt)
        want = reference(name, from_bits(bits, fmt))
        for forced in (LONGEST, 0):
            with rows_max(forced):
                got, special = run(name, bits, fmt)
            assert special.size == 0
            within_one_ulp(rounded(name, got, fmt), want, fmt)


@pytest.mark.parametrize("name", WRITERS)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_public_api_out_and_in_place(isa, path, name, dtype):
    """NumPy float16 / ml_dtypes bfloat16 through ssm.softmax / log_softmax:
    out= and out=x give the bits of the plain call, special rows filled as SciPy."""
    if dtype == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        dt = ml_dtypes.bfloat16
    else:
        dt = np.float16
    fn = getattr(ssm, name)
    rng = np.random.default_rng(2)
    for n in (17, 64, 200):
        x = rng.normal(0.0, 3.0, size=(13, n)).astype(dt)
        x[4, 3] = np.nan
        x[9, :] = -np.inf
        plain = fn(x, axis=-1)
        assert plain.dtype == x.dtype
        out = np.empty_like(x)
        fn(x, axis=-1, out=out)
        np.testing.assert_array_equal(out.view(np.uint16), plain.view(np.uint16))
        inplace = x.copy()
        fn(inplace, axis=-1, out=inplace)
        np.testing.assert_array_equal(inplace.view(np.uint16), plain.view(np.uint16))
        assert np.isnan(plain[4].astype(np.float32)).all()
        ok = np.ones(13, bool)
        ok[[4, 9]] = False
        within_one_ulp(plain[ok].astype(np.float64), reference(name, x[ok].astype(np.float64)), dtype)


@pytest.mark.parametrize("name", KERNELS)
def test_torch_bfloat16(isa, path, name):
    torch = pytest.importorskip("torch")
    t = torch.randn(40, 100).to(torch.bfloat16)
    got = getattr(ssm, name)(t, axis=-1)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.bfloat16
    x64 = t.float().numpy().astype(np.float64)
    got64 = got.float().numpy().astype(np.float64)
    within_one_ulp(got64, reference(name, x64), "bfloat16")


@pytest.mark.parametrize("name", KERNELS)
def test_one_and_two_threads_bit_identical(isa, fmt, path, name, restore_settings):
    rng = np.random.default_rng(8)
    n = 100
    bits = to_bits(rng.normal(0.0, 3.0, size=((1 << 18) // n + 5, n)), fmt)  # big enough to use threads
    ssm.set_num_threads(1)
    one, _ = run(name, bits, fmt)
    ssm.set_num_threads(2)
    two, _ = run(name, bits, fmt)
    np.testing.assert_array_equal(one, two)


def test_logsumexp_near_zero(isa, fmt, path):
    """Rows whose log-sum-exp is near 0, where the kernels' bound cannot vouch
    for a quarter ulp of the format: redone exactly, still within 1 ulp."""
    rng = np.random.default_rng(31)
    for n in (lanes(isa), 2 * lanes(isa) + 1, 100, 1024):
        x = rng.normal(0.0, 0.01, size=(10, n)) - np.log(n)
        x[5:] = -30.0  # one dominant entry of magnitude 1e-3 .. 1e-7: lse = that entry
        x[5:, n // 2] = [1e-3, -1e-4, 3e-5, -1e-6, 1e-7]
        check("logsumexp", to_bits(x, fmt), fmt, n)


def cancelling_row(fmt, first, rest):
    """Values of the format whose exps sum to 1 - r, 0 < r < rest: each the
    largest whose exp fits in what is left of 1, the first near `first`. Its
    log-sum-exp, log(1 - r) ~ -r, is near 0 while the max is not, so max +
    log S cancels. -> (bits, exact lse) (mpmath, 200 bits)."""
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workprec(200):
        bits, left, target = [], mpmath.mpf(1), first
        while left >= rest:
            b = int(to_bits(np.array([target]), fmt)[0])
            while mpmath.exp(from_bits(np.array([b], np.uint16), fmt)[0]) > left:
                b += 1  # the next value down (negative values: the bits grow)
            bits.append(b)
            left -= mpmath.exp(from_bits(np.array([b], np.uint16), fmt)[0])
            target = float(mpmath.log(left))
        return bits, float(mpmath.log(1 - left))


def test_logsumexp_near_zero_cancelling(isa, fmt, path):
    """Rows of log-probabilities whose log-sum-exp is 1e-6 .. 1e-21 from 0
    while their max is -0.3 .. -2: the float64 max + log S is off by ~1e-16
    there, hundreds of bfloat16 ulps at 1e-21 (its exponent range is
    float32's); such rows are summed again in double-double
    (driver_half.cpp, lse_accurate). Every path: the short-row kernels,
    fused, buffered whole rows and blocks of long rows. Entries elsewhere
    in a row are -1000 (no term)."""
    rng = np.random.default_rng(41)
    chains = [cancelling_row(fmt, first, rest) for first in (-0.3, -0.69, -2.0) for rest in (1e-6, 1e-12, 1e-21)]
    pad = to_bits(np.array([-1000.0]), fmt)[0]
    for n in (max(3 * lanes(isa) + 1, 25), 100, 1024, 5000, 70000):  # chains: up to ~18 entries
        bits = np.full((len(chains), n), pad, np.uint16)
        for r, (chain, _) in enumerate(chains):
            bits[r, rng.permutation(n)[: len(chain)]] = chain
        got, special = run("logsumexp", bits, fmt)
        assert special.size == 0
        try:
            within_one_ulp(rounded("logsumexp", got, fmt), np.array([lse for _, lse in chains]), fmt)
        except AssertionError as e:
            raise AssertionError(f"n={n}: {e}") from None


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_public_logsumexp(isa, path, dtype):
    """ssm.logsumexp of NumPy float16 / ml_dtypes bfloat16 rows: the format kept,
    special rows as SciPy, return_sign and keepdims, within 1 ulp elsewhere."""
    if dtype == "bfloat16":
        dt = pytest.importorskip("ml_dtypes").bfloat16
    else:
        dt = np.float16
    rng = np.random.default_rng(12)
    for n in (17, 64, 200):
        x = rng.normal(0.0, 3.0, size=(13, n)).astype(dt)
        x[4, 3] = np.nan
        x[7, 1] = np.inf
        x[9, :] = -np.inf
        got = ssm.logsumexp(x, axis=-1)
        assert got.dtype == x.dtype and got.shape == (13,)
        got64 = got.astype(np.float64)
        assert np.isnan(got64[4]) and got64[7] == np.inf and got64[9] == -np.inf
        ok = np.ones(13, bool)
        ok[[4, 7, 9]] = False
        within_one_ulp(got64[ok], reference("logsumexp", x[ok].astype(np.float64)), dtype)
        kept, sign = ssm.logsumexp(x, axis=-1, keepdims=True, return_sign=True)
        assert kept.shape == (13, 1)
        np.testing.assert_array_equal(kept[:, 0].view(np.uint16), got.view(np.uint16))
        assert (sign[ok].astype(np.float64) == 1.0).all()


@pytest.mark.parametrize("name", WRITERS)
def test_group_strides_and_batch_ends(isa, fmt, name):
    """Rows whose float32 length is a multiple of 4 KiB (the buffer pads each
    group row's stride to 576 bytes past one) and batches ending anywhere in a
    group (pass 2 fetches the next group's rows and this group's output ahead):
    within 1 ulp, and nothing written past the batch's rows."""
    rng = np.random.default_rng(17)
    guard = 0x7E01 if fmt == "float16" else 0x7FC1  # a NaN no result has
    for n in (1008, 1024, 1024 + lanes(isa), 2048, 3072, 4096):
        for rows in (2, 7, 9, 16, 17):
            bits = to_bits(rng.normal(0.0, 3.0, size=(rows, n)), fmt)
            space = np.full((rows + 1) * n, guard, np.uint16)
            out = space[: rows * n].reshape(rows, n)
            with rows_max(LONGEST):
                if name == "softmax":
                    special = _core.half_softmax(bits, out, FORMATS[fmt], "auto")
                else:
                    special = _core.half_log_softmax(bits, out, FORMATS[fmt])
            assert special.size == 0
            assert (space[rows * n :] == guard).all(), (n, rows)
            try:
                within_one_ulp(from_bits(out, fmt), reference(name, from_bits(bits, fmt)), fmt)
            except AssertionError as e:
                raise AssertionError(f"n={n} rows={rows}: {e}") from None


@pytest.mark.parametrize("name", ["log_softmax", "logsumexp"])
def test_log_sum_over_the_table_log(isa, fmt, name):
    """log S of a group's rows (AVX-512: a 16-entry table log, half_avx512.h
    log1p_table): S from 3/2 to n in every sixteenth of each power of two (the
    table's index and the exponent), then groups of eight with one row whose
    S - 1 is below 1/2 (the per-row sum of the terms below the max) at each
    position, the others ordinary: within 1 ulp of the reference."""
    w = lanes(isa)
    for n in (w, 2 * w + 1, 8 * w, 100, 1000):
        targets = [2.0**e * (1 + (i + 0.5) / 16) for e in range(12) for i in range(16)]
        targets = [s for s in targets if 1.5 <= s <= n] or [1.5]
        x = np.full((len(targets), n), 0.0)
        x[:, 1:] = np.log((np.array(targets)[:, None] - 1.0) / (n - 1)) if n > 1 else 0.0
        with rows_max(LONGEST):
            check(name, to_bits(x, fmt), fmt, n)
        rng = np.random.default_rng(n)
        for p in range(8):
            y = rng.normal(0.0, 1.0, size=(17, n))
            y[p, :] = -20.0
            y[p, n // 2] = 0.0  # S - 1 = (n - 1) e^-20
            y[8 + p, :] = rng.normal(-30.0, 1.0, n)
            y[8 + p, 0] = 0.0
            with rows_max(LONGEST):
                check(name, to_bits(y, fmt), fmt, (n, p))


def test_logsumexp_at_powers_of_two(isa, fmt, path):
    """Rows whose log-sum-exp lies just below, at or just above a power of two,
    where the format's ulp (the kernels' certificate: a quarter of it) doubles."""
    rng = np.random.default_rng(23)
    for n in (lanes(isa), 100, 1000):
        targets = [s * 2.0**k * f for k in range(-6, 8) for s in (1.0, -1.0) for f in (1 - 2.0**-10, 1.0, 1 + 2.0**-10)]
        x = rng.normal(0.0, 0.05, size=(len(targets), n))
        x -= np.log(np.exp(x).sum(axis=1, keepdims=True))  # lse 0 before the shift
        x += np.array(targets)[:, None]
        check("logsumexp", to_bits(x, fmt), fmt, n)


def check_in_and_out_of_place(name, x, fmt):
    """softmax or log_softmax of the rows x (a NaN in the last row where there
    are more than 8) through the short-row kernels: in place (y = x) the same
    bits as out of place, nothing written past the batch, within 1 ulp."""
    rows, n = x.shape
    guard = 0x7E01 if fmt == "float16" else 0x7FC1  # a NaN no result has
    code = FORMATS[fmt]
    bits = to_bits(x, fmt)
    space = np.full((rows + 1) * n, guard, np.uint16)
    out = space[: rows * n].reshape(rows, n)
    inplace = bits.copy()
    if name == "softmax":
        kernel = lambda a, b: _core.half_softmax(a, b, code, "auto")  # noqa: E731
    else:
        kernel = lambda a, b: _core.half_log_softmax(a, b, code)  # noqa: E731
    with rows_max(LONGEST):
        special = kernel(bits, out)
        special_inplace = kernel(inplace, inplace)
    assert list(special) == ([rows - 1] if rows > 8 else []), (n, rows)
    np.testing.assert_array_equal(special_inplace, special)
    assert (space[rows * n :] == guard).all(), (n, rows)
    keep = np.arange(rows) != rows - 1 if rows > 8 else slice(None)
    np.testing.assert_array_equal(inplace[keep], out[keep])
    try:
        within_one_ulp(from_bits(out[keep], fmt), reference(name, from_bits(bits[keep], fmt)), fmt)
    except AssertionError as e:
        raise AssertionError(f"n={n} rows={rows}: {e}") from None


def test_softmax_pipeline_around_its_limit(isa, fmt):
    """softmax_rows runs pass 1 of the next group before pass 3 of this one, in a
    second buffer, while a group's buffer holds at most 8 KiB (kOverlapBytes:
    n <= 256 on avx512 and avx2, 128 on scalar's float64 lanes), else after it
    in the one buffer: both sides of the limit, batches ending anywhere in a
    group, a NaN row in the last group; in place (y = x) the same bits as out
    of place, nothing written past the batch, within 1 ulp."""
    rng = np.random.default_rng(29)
    for n in sorted({lanes(isa), 127, 128, 129, 255, 256, 257, 256 + lanes(isa)}):
        for rows in (1, 8, 9, 17, 24):
            x = rng.normal(0.0, 3.0, size=(rows, n))
            if rows > 8:
                x[rows - 1, n // 2] = np.nan
            check_in_and_out_of_place("softmax", x, fmt)


def test_log_softmax_without_buffer(isa, fmt):
    """log_softmax_rows keeps no buffer where a group's would pass 8 KiB
    (kOverlapBytes: n > 256 on avx512 and avx2, 128 on scalar's float64 lanes):
    passes 2 and 3 read x again, pipelined (pass 1 of the next group before
    pass 3) while a group's x and y and the next group's x fit 32 KiB (n <= 682).
    Both sides of both limits and a last vector overlapping the one before,
    batches ending anywhere in a group, a NaN row
    and a dominant entry (the exact S - 1 from x): in place (y = x) the same bits
    as out of place, nothing written past the batch, within 1 ulp."""
    rng = np.random.default_rng(31)
    w = lanes(isa)
    for n in sorted({128, 129, 256, 257, 256 + w // 2, 682, 683, 1000, LONGEST - 1}):
        for rows in (1, 9, 17):
            x = rng.normal(0.0, 3.0, size=(rows, n))
            x[0, n - 1] = 40.0  # dominant, in the last vector
            if rows > 8:
                x[rows - 1, n // 2] = np.nan
            check_in_and_out_of_place("log_softmax", x, fmt)


# softmax_tiny, log_softmax_tiny (rows of 16, and rows of 3, 5-7, 9 and 15
# in slots of 4, 8 and 16 lanes: AVX-512; rows of 3 and 5-7 in slots of 4
# and 8, rows of 16 and 32 in 2 and 4 registers (wide_tiny_rows): AVX2;
# elsewhere the short-row kernels or the buffered path, the same checks)
TINY = [(name, n) for n in (2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 32) for name in WRITERS]


def tiny_step(isa, n):
    """Rows per main-loop step of the kernels of rows of n (two vectors of
    rows in slots of the next power of two)."""
    slot = 1 << (n - 1).bit_length()
    return 2 * max(lanes(isa), slot) // slot


def tiny_hard(n, big):
    """Hard rows of n >= 3: huge differences, subnormal and underflowing
    results, ties (several at the max), -inf entries, a dominant entry; each
    four-entry row (its first three for n = 3) also repeated across the row
    and padded with -inf or with entries 200 below."""
    inf = np.inf
    quads = [[30.0, -70.0, -70.0, -75.0], [-80.0, 10.0, -95.0, 0.0], [5.0, 5.0, 5.0, 5.0], [-inf, 3.0, -inf, -inf],
             [big, -big, -big, big], [-big, -big, -big, -big], [1e-3, 0.0, 2e-3, -1e-3], [-17.0, 0.0, -17.0, -20.0],
             [0.0, -9.0, -12.0, -100.0], [-inf, -inf, 1.0, 0.0]]
    if n <= 4:
        return [q[:n] for q in quads] + [[-3.0] * (n - 1) + [12.0]]
    rows = []
    for q in quads:
        rows.append(np.resize(q, n))
        rows.append(np.concatenate([q, np.full(n - 4, -inf)]))
        rows.append(np.concatenate([np.full(n - 4, max(q) - 200.0), q]))
    rows.append(np.where(np.arange(n) == n - 1, 12.0, -3.0))  # one dominant entry last
    return rows


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # 3e38 + 3e38 in the reference
@pytest.mark.parametrize("name, n", TINY)
def test_rows_of_two_to_sixteen(isa, fmt, name, n):
    """softmax_tiny, log_softmax_tiny (a row's lanes meet by butterflies, two
    vectors per step): batches ending at every row of a step,
    hard rows at random places (huge differences, subnormal and underflowing
    results, ties, -inf entries, a dominant entry), in place the same bits as out
    of place, nothing written past the batch, within 1 ulp; a NaN in the last row
    where there are more than 8."""
    rng = np.random.default_rng(37)
    big = 60000.0 if fmt == "float16" else 3e38
    inf = np.inf
    if n == 2:
        hard = [[30.0, -70.0], [-80.0, 10.0], [0.0, -95.0], [-120.0, 0.0], [5.0, 5.0], [-inf, 3.0],
                [2.0, -inf], [big, -big], [-big, -big], [1e-3, 0.0], [-17.0, 0.0], [0.0, -9.0]]
    else:
        hard = tiny_hard(n, big)
    for rows in sorted(set(range(1, tiny_step(isa, n) + 2)) | {9, 17, 40, len(hard) + 1}):
        x = rng.normal(0.0, 4.0, size=(rows, n))
        free = rows - 1 if rows > 8 else rows
        picked = rng.permutation(free)[: len(hard)]
        x[picked] = np.array(hard)[: picked.size]
        if rows > 8:
            x[rows - 1, 1] = np.nan
        check_in_and_out_of_place(name, x, fmt)


def off_on_inplace(name, bits, fmt, kernel):
    """The rows with the short-row kernels off, on (values and specials) and on in place."""
    with rows_max(0):
        _, sp_off = run(name, bits, fmt)
    with rows_max(LONGEST):
        on, sp_on = run(name, bits, fmt)
        inplace = bits.copy()
        sp_inplace = kernel(inplace, inplace)
    return on, inplace, sp_off, sp_on, sp_inplace


@pytest.mark.parametrize("name, n", TINY)
@pytest.mark.parametrize("value", [np.nan, np.inf, "all -inf"])
def test_rows_of_two_to_sixteen_special(isa, fmt, name, n, value):
    """A special row at each end of a vector of rows and of a step, and in the
    batch's tail: reported as with the path off, the other rows within 1 ulp,
    the special row left unwritten in place."""
    step = tiny_step(isa, n)
    rows = step + 3  # one step, then a tail
    base = np.random.default_rng(41).normal(0.0, 2.0, size=(rows, n))
    code = FORMATS[fmt]
    if name == "softmax":
        kernel = lambda a, b: _core.half_softmax(a, b, code, "auto")  # noqa: E731
    else:
        kernel = lambda a, b: _core.half_log_softmax(a, b, code)  # noqa: E731
    for pos in sorted({0, step // 2 - 1, step // 2, step - 1, step, rows - 1}):
        x = base.copy()
        if value == "all -inf":
            x[pos] = -np.inf
        else:
            x[pos, pos % n] = value
        bits = to_bits(x, fmt)
        on, inplace, sp_off, sp_on, sp_inplace = off_on_inplace(name, bits, fmt, kernel)
        assert list(sp_on) == list(sp_off) == list(sp_inplace) == [pos]
        np.testing.assert_array_equal(inplace[pos], bits[pos])
        keep = np.arange(rows) != pos
        np.testing.assert_array_equal(from_bits(inplace[keep], fmt), on[keep])
        within_one_ulp(on[keep], reference(name, from_bits(bits, fmt)[keep]), fmt)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
@pytest.mark.parametrize("name", WRITERS)
@pytest.mark.parametrize("n", [16, 32])
def test_wide_rows_entries_at_every_position(isa, fmt, name, n):
    """Rows of 16 and 32 (AVX2: wide_tiny_rows, rows of 2 and 4 vectors, two
    rows per step): at every column, in rows at both places of a step and in
    the odd last row, a dominant entry, a -inf entry, the only finite entry
    (the rest -inf), an entry 200 below the others and a subnormal-result
    entry: within 1 ulp; a NaN or +inf there: flagged as with the path off,
    the row left unwritten in place."""
    rng = np.random.default_rng(53)
    big = 60000.0 if fmt == "float16" else 3e38
    code = FORMATS[fmt]
    if name == "softmax":
        kernel = lambda a, b: _core.half_softmax(a, b, code, "auto")  # noqa: E731
    else:
        kernel = lambda a, b: _core.half_log_softmax(a, b, code)  # noqa: E731
    for c in range(n):
        x = rng.normal(0.0, 3.0, size=(13, n))
        x[0, c] = 40.0
        x[1, c] = -np.inf
        x[2] = -np.inf
        x[2, c] = 1.5
        x[3, c] = x[3].max() - 200.0
        x[4, c] = x[4].max() - 95.0  # bfloat16 softmax: a subnormal result
        x[5, c] = big
        x[5, (c + 1) % n] = -big
        x[6] = np.where(np.arange(n) % 2 == c % 2, -np.inf, x[6])
        x[7, c] = np.nan
        x[10, c] = np.inf
        x[12, c] = np.nan  # the odd last row
        bits = to_bits(x, fmt)
        on, inplace, sp_off, sp_on, sp_inplace = off_on_inplace(name, bits, fmt, kernel)
        assert list(sp_on) == list(sp_off) == list(sp_inplace) == [7, 10, 12], c
        keep = np.ones(13, bool)
        keep[[7, 10, 12]] = False
        np.testing.assert_array_equal(inplace[~keep], bits[~keep])
        np.testing.assert_array_equal(from_bits(inplace[keep], fmt), on[keep])
        try:
            within_one_ulp(on[keep], reference(name, from_bits(bits, fmt)[keep]), fmt)
        except AssertionError as e:
            raise AssertionError(f"n={n} column {c}: {e}") from None
