"""The torch-tensor fast path (_core.tensor_softmax / tensor_log_softmax /
tensor_logsumexp): plain CPU tensors, and NumPy float16 / bfloat16 arrays,
read in place and answered with a new tensor (array) in one C++ call.

Its results must be bit for bit those of the same call on NumPy arrays of the
same values (the same drivers run; those are checked against float64
references in the kernel tests), and within the ulp contract of a float64
reference here too; every case it does not take must return None so that the
general path (and its errors) takes the call.
"""

import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core

torch = pytest.importorskip("torch")
ml_dtypes = pytest.importorskip("ml_dtypes")

DTYPES = {
    "float32": (torch.float32, np.float32),
    "float64": (torch.float64, np.float64),
    "float16": (torch.float16, np.float16),
    "bfloat16": (torch.bfloat16, ml_dtypes.bfloat16),
}
# One ulp of the half formats (results rounded once), a few of float32.
RTOL = {"float64": 1e-13, "float32": 4 * 2.0**-23, "float16": 2.0**-10, "bfloat16": 2.0**-7}
TINY = {"float64": 2.0**-1074, "float32": 2.0**-149, "float16": 2.0**-24, "bfloat16": 2.0**-133}
FAST = {"softmax": _core.tensor_softmax, "log_softmax": _core.tensor_log_softmax, "logsumexp": _core.tensor_logsumexp}
NAMES = tuple(FAST)

# Row lengths around every vector tile (8/16 float32 lanes, 4/8 float64, the
# short-row kernels up to 256, the half drivers' buffered / fused switch).
LENGTHS = (1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 256, 257, 1000, 4099)


@pytest.fixture(autouse=True)
def _set_up():
    ssm.softmax(torch.zeros(2))  # the first tensor seen hands torch's objects to _core


def _numpy_twin(t, dtype_name):
    """The tensor's values as a NumPy array of the matching dtype (exactly)."""
    x64 = t.to(torch.float64).numpy()
    return x64.astype(DTYPES[dtype_name][1]), x64


def _bits(a):
    a = np.array(a)  # a copy: C-contiguous, 0-d kept
    return a.view(np.uint16) if a.dtype.itemsize == 2 else a


def _tensor_bits(t):
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.view(torch.int16).numpy().view(np.uint16)
    return t.numpy()


def _close(got, want, dtype_name):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    finite = np.isfinite(want)
    assert np.array_equal(np.isfinite(got), finite)
    _, e = np.frexp(np.abs(want[finite]))
    scale = np.maximum(np.ldexp(1.0, e - 1), TINY[dtype_name] / RTOL[dtype_name])
    assert (np.abs(got[finite] - want[finite]) <= RTOL[dtype_name] * scale).all()


@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_fast_path_equals_numpy_call(isa, name, dtype_name):
    rng = np.random.default_rng(len(name) + 7 * len(dtype_name))
    torch_dtype = DTYPES[dtype_name][0]
    for n in LENGTHS:
        rows = 3 if n < 1000 else 2
        t = torch.from_numpy(rng.normal(0.0, 4.0, size=(rows, n))).to(torch_dtype)
        a, x64 = _numpy_twin(t, dtype_name)
        got = FAST[name]((t, -1), {})
        assert type(got) is torch.Tensor, n
        assert got.dtype == torch_dtype
        want = getattr(ssm, name)(a, axis=-1)
        assert got.shape == np.shape(want)
        assert np.array_equal(_tensor_bits(got), _bits(want)), (name, dtype_name, n)
        _close(got.to(torch.float64).numpy(), getattr(ssm, name)(x64, axis=-1), dtype_name)
        # The public function takes the same path.
        public = getattr(ssm, name)(t, axis=-1)
        assert np.array_equal(_tensor_bits(public), _tensor_bits(got))


@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_axis_forms_and_shapes(name, dtype_name):
    torch_dtype = DTYPES[dtype_name][0]
    rng = np.random.default_rng(3)
    for shape in ((37,), (4, 37), (2, 3, 37), (2, 1, 37)):
        t = torch.from_numpy(rng.normal(size=shape)).to(torch_dtype)
        a, _ = _numpy_twin(t, dtype_name)
        fn = getattr(ssm, name)
        for args, kwargs in (((t,), {}), ((t, None), {}), ((t,), {"axis": -1}), ((t, len(shape) - 1), {})):
            got = FAST[name](args, kwargs)
            assert type(got) is torch.Tensor
            want = fn(a, *args[1:], **kwargs)
            assert got.shape == np.shape(want)
            assert np.array_equal(_tensor_bits(got), _bits(want))
            assert np.array_equal(_tensor_bits(fn(*args, **kwargs)), _tensor_bits(got))


def test_algorithms_and_plain_keywords():
    t = torch.randn(4, 300)
    for algorithm in ssm._api.ALGORITHMS:
        got = _core.tensor_softmax((t,), {"axis": -1, "algorithm": algorithm, "out": None})
        assert np.array_equal(got.numpy(), ssm.softmax(t.numpy(), axis=-1, algorithm=algorithm))
    assert _core.tensor_log_softmax((t,), {"out": None}) is not None
    got = _core.tensor_logsumexp((t,), {"b": None, "keepdims": False, "return_sign": False, "axis": -1})
    assert np.array_equal(got.numpy(), ssm.logsumexp(t.numpy(), axis=-1))


def test_storage_offset_and_lifetime():
    """The input is read at its data pointer (a contiguous slice with an
    offset); the result owns its memory, independent of the input."""
    base = torch.randn(6, 40)
    t = base[2:5]  # contiguous, storage offset 80
    got = ssm.softmax(t, axis=-1)
    want = ssm.softmax(t.numpy().copy(), axis=-1)
    del base, t
    assert np.array_equal(got.numpy(), want)
    assert got.data_ptr() % 64 == 0
    got += 1.0  # writable, its own memory
    assert np.array_equal(got.numpy(), want + np.float32(1.0))
    for dtype in (torch.float16, torch.bfloat16):
        y = ssm.log_softmax(torch.randn(5, 33).to(dtype), axis=-1)
        y2 = y.clone()
        ssm.log_softmax(torch.randn(5, 33).to(dtype), axis=-1)  # reuses freed memory, if any
        assert torch.equal(y.view(torch.int16), y2.view(torch.int16))


def test_result_memory_is_freed():
    """A result freed by torch gives its block back (no leak per call)."""
    statm = "/proc/self/statm"
    try:
        open(statm).close()
    except OSError:
        pytest.skip("needs /proc")

    def resident_mib():
        with open(statm) as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    t = torch.randn(1024, 1024)  # 4 MiB per result
    for _ in range(20):
        ssm.softmax(t, axis=-1)
    before = resident_mib()
    for _ in range(300):  # 1.2 GiB if leaked
        ssm.softmax(t, axis=-1)
        ssm.logsumexp(t, axis=-1)
    assert resident_mib() - before < 200


def test_cases_left_to_the_general_path():
    """Each returns None from the fast path, and the public call still gives
    the right result or error."""
    t = torch.randn(4, 16)
    cases = [
        ((t[:, ::2],), {}),  # strided
        ((t.t(),), {"axis": -1}),  # transposed
        ((t, 0), {}),  # not the last axis
        ((t,), {"axis": (0, 1)}),
        ((t,), {"out": torch.empty(4, 16)}),
        ((torch.zeros(0, 4),), {}),  # empty
        ((torch.tensor(1.0),), {}),  # 0-d
        ((torch.arange(8),), {}),  # integers
        ((torch.randn(4, 8, dtype=torch.complex64),), {}),
        ((torch.nn.Parameter(torch.randn(4)),), {}),  # a subclass (requires grad, too)
        ((torch._neg_view(t),), {"axis": -1}),  # lazy negation
        ((t, -1, "extra"), {}),
        ((t,), {"unknown": 1}),
    ]
    for args, kwargs in cases:
        for name in ("softmax", "log_softmax"):
            assert FAST[name](args, kwargs) is None, (name, args[0].shape, kwargs)
    assert _core.tensor_softmax((t,), {"algorithm": "nope"}) is None
    with pytest.raises(ValueError, match="algorithm"):
        ssm.softmax(t, algorithm="nope")
    for kwargs in ({"b": torch.ones(16)}, {"keepdims": True}, {"return_sign": True}, {"out": None}):
        assert _core.tensor_logsumexp((t,), kwargs) is None
    neg = torch._neg_view(t)
    np.testing.assert_array_equal(ssm.softmax(neg, axis=-1).numpy(), ssm.softmax(-t.numpy(), axis=-1))


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_special_rows_take_the_general_path(name, dtype_name):
    torch_dtype = DTYPES[dtype_name][0]
    x = np.random.default_rng(5).normal(size=(4, 20))
    x[1, 3] = np.nan
    x[2, 5] = np.inf
    x[3, :] = -np.inf
    t = torch.from_numpy(x).to(torch_dtype)
    assert FAST[name]((t,), {"axis": -1}) is None
    a, _ = _numpy_twin(t, dtype_name)
    got = getattr(ssm, name)(t, axis=-1)
    assert type(got) is torch.Tensor and got.dtype == torch_dtype
    # Values (NaN payloads may differ between the general paths' formulas).
    want = np.asarray(getattr(ssm, name)(a, axis=-1), np.float64)
    np.testing.assert_array_equal(got.to(torch.float64).numpy(), want)


def test_errors_after_the_fast_path_is_set_up():
    meta = torch.empty(4, 8, device="meta")
    for name in NAMES:
        assert FAST[name]((meta,), {}) is None
        with pytest.raises(TypeError, match=r"meta.*\.cpu\(\)"):
            getattr(ssm, name)(meta)
        grad = torch.zeros(4, 8, requires_grad=True)
        assert FAST[name]((grad,), {}) is None
        with pytest.raises(TypeError, match=r"requires grad.*\.detach\(\)"):
            getattr(ssm, name)(grad)
    with pytest.raises(TypeError, match="same library"):
        ssm.logsumexp(torch.zeros(4, 8), b=np.ones(8, np.float32))
    with pytest.raises(TypeError, match="expected"):
        _core.tensor_softmax(torch.zeros(2), {})


@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", NAMES)
def test_numpy_half_arrays_take_the_fast_path(isa, name, dtype_name):
    """NumPy float16 / ml_dtypes.bfloat16 arrays: the same C++ call, an ndarray
    of the input's dtype out, bit for bit the general half path's result (a
    Fortran-ordered copy takes that path) and within one ulp of float64."""
    numpy_dtype = DTYPES[dtype_name][1]
    rng = np.random.default_rng(11)
    fn = getattr(ssm, name)
    fn(np.zeros((2, 2), numpy_dtype))  # the Python layer registers ml_dtypes.bfloat16 on first sight
    for n in LENGTHS:
        a = rng.normal(0.0, 4.0, size=(3, n)).astype(numpy_dtype)
        got = FAST[name]((a,), {"axis": -1})
        assert type(got) is np.ndarray and got.dtype == a.dtype, n
        fortran = np.asfortranarray(a)
        if n > 1:
            assert FAST[name]((fortran,), {"axis": -1}) is None
        want = fn(fortran, axis=-1)
        assert np.array_equal(_bits(got), _bits(want)), (name, dtype_name, n)
        assert np.array_equal(_bits(fn(a, axis=-1)), _bits(got))
        _close(got.astype(np.float64), fn(a.astype(np.float64), axis=-1), dtype_name)
    scalar = fn(a) if name == "logsumexp" else None
    if scalar is not None:
        assert type(scalar) is type(np.zeros(1, numpy_dtype)[0])  # a NumPy scalar, as the general path


def test_numpy_half_cases_left_to_the_general_path():
    a = np.random.default_rng(2).normal(size=(4, 16)).astype(np.float16)
    for x in (a.astype(">f2"), a[:, ::2], a.astype(np.float32), np.zeros((0, 4), np.float16)):
        assert _core.tensor_softmax((x,), {}) is None
    swapped = a.astype(">f2")
    np.testing.assert_array_equal(ssm.softmax(swapped, axis=-1), ssm.softmax(a, axis=-1))
    out = np.empty_like(a)
    assert ssm.softmax(a, axis=-1, out=out) is out
    np.testing.assert_array_equal(out, ssm.softmax(a, axis=-1))


def _half_pair(kind, dtype_name, shape):
    x = np.random.default_rng(8).normal(0.0, 3.0, size=shape)
    if kind == "torch":
        t = torch.from_numpy(x).to(DTYPES[dtype_name][0])
        return t, torch.empty_like(t)
    a = x.astype(DTYPES[dtype_name][1])
    return a, np.empty_like(a)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_half_out_takes_the_fast_path(isa, kind, dtype_name, name):
    """out= of the input's kind, dtype and shape, apart from the input: written
    in the same C++ call, out itself returned, the bits of the call without out=."""
    fn = getattr(ssm, name)
    for shape in ((3, 1), (5, 17), (2, 3, 1000), (1, 4099)):
        x, out = _half_pair(kind, dtype_name, shape)
        fn(x[:1], axis=-1)  # registers ml_dtypes.bfloat16 with the fast path
        want = fn(x, axis=-1)
        assert FAST[name]((x,), {"axis": -1, "out": out}) is out
        assert np.array_equal(_tensor_bits(out) if kind == "torch" else _bits(out),
                              _tensor_bits(want) if kind == "torch" else _bits(want)), shape
        out2 = out.clone() if kind == "torch" else out.copy()
        assert fn(x, axis=-1, out=out2) is out2


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_half_in_place_takes_the_fast_path(isa, kind, dtype_name, name):
    """out= the input itself: one C++ call, rows with NaN, +-inf or all -inf
    (which the kernels leave unwritten) finished by the general path's formula
    on those rows alone; the bits of the call with a separate out=."""
    fn = getattr(ssm, name)
    for shape, axis in (((3, 1), -1), ((19, 8), -1), ((5, 17), -1), ((19, 100), -1), ((2, 3, 1000), -1),
                        ((1, 4099), -1), ((6, 40), None)):
        for special in (False, True):
            x, _ = _half_pair(kind, dtype_name, shape)
            fn(x[:1], axis=-1)  # registers ml_dtypes.bfloat16 with the fast path
            if special:
                rows = x.reshape(-1, shape[-1])
                rows[0, -1] = float("nan")
                rows[-1, 0] = float("inf")
                if rows.shape[0] > 2:
                    rows[rows.shape[0] // 2] = float("-inf")
            want = fn(x, axis=axis)
            y = x.clone() if kind == "torch" else x.copy()
            assert FAST[name]((y,), {"axis": axis, "out": y}) is y
            got = _tensor_bits(y) if kind == "torch" else _bits(y)
            assert np.array_equal(got, _tensor_bits(want) if kind == "torch" else _bits(want)), (shape, special)
            z = x.clone() if kind == "torch" else x.copy()
            assert fn(z, axis=axis, out=z) is z


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
def test_half_out_cases_left_to_the_general_path(kind, dtype_name):
    """out= overlapping the input in part, of another dtype, shape or kind,
    not writeable, and special rows: None from the fast path, and the public
    call still right; out= the input itself: the fast path, in place."""
    x, out = _half_pair(kind, dtype_name, (4, 40))
    ssm.softmax(x[:1], axis=-1)
    want = ssm.softmax(x, axis=-1)
    if kind == "torch":
        flat = torch.empty(4 * 40 + 8, dtype=x.dtype)
        overlapping = flat[8:].view(4, 40)
        flat[8:] = x.reshape(-1)
        other_kind = np.empty(x.shape, DTYPES[dtype_name][1])
        other_dtype = torch.empty(4, 40)
        read_only = None
    else:
        flat = np.empty(4 * 40 + 8, x.dtype)
        overlapping = flat[8:].reshape(4, 40)
        flat[8:] = x.reshape(-1)
        other_kind = torch.empty(4, 40, dtype=DTYPES[dtype_name][0])
        other_dtype = np.empty(x.shape, np.float32)
        read_only = np.empty_like(x)
        read_only.flags.writeable = False
    shifted = flat[4:4 + 160].reshape(4, 40)  # overlaps `overlapping`
    for o in (other_kind, other_dtype, out[:, :20], read_only):
        if o is not None:
            assert _core.tensor_softmax((x,), {"axis": -1, "out": o}) is None
    assert _core.tensor_softmax((overlapping,), {"axis": -1, "out": shifted}) is None
    assert _core.tensor_softmax((overlapping,), {"axis": -1, "out": overlapping}) is overlapping
    got = _tensor_bits(overlapping) if kind == "torch" else _bits(overlapping)
    assert np.array_equal(got, _tensor_bits(want) if kind == "torch" else _bits(want))
    bad = x.clone() if kind == "torch" else x.copy()
    bad[1, 3] = float("nan")
    assert _core.tensor_softmax((bad,), {"axis": -1, "out": out}) is None
    assert ssm.softmax(bad, axis=-1, out=out) is out
    assert np.isnan(np.asarray(out[1].float() if kind == "torch" else out[1].astype(np.float32))).all()
