"""Array types in, the same array type out: torch, JAX, array-api-strict,
ml_dtypes, Dask, DLPack and __array__ objects, against NumPy float64 results.

Each optional library's tests skip cleanly when it is not installed.
"""

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _arrays

RNG = np.random.default_rng(20260)
BASE = RNG.normal(0.0, 3.0, size=(5, 37))  # 37: not a multiple of any vector width
BASE[1, 4] = -np.inf

# Relative tolerance of each dtype against the float64 reference: one ulp of
# the half formats (their results are rounded once), a few of float32.
RTOL = {"float64": 1e-13, "float32": 4 * 2.0**-23, "float16": 2.0**-10, "bfloat16": 2.0**-7}

ROWWISE = ("softmax", "log_softmax")


def _reference(name, x64, **kw):
    """The float64 NumPy result of a public function."""
    return getattr(ssm, name)(x64, **kw)


# Smallest positive subnormal: the absolute floor of one ulp.
TINY = {"float64": 2.0**-1074, "float32": 2.0**-149, "float16": 2.0**-24, "bfloat16": 2.0**-133}


def _close(got, want, dtype_name):
    """got within RTOL[dtype] (one ulp for the half formats) of the float64 `want`, subnormals included."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    finite = np.isfinite(want)
    assert np.array_equal(np.isfinite(got), finite)
    assert np.array_equal(got[~finite], want[~finite])
    _, e = np.frexp(np.abs(want[finite]))
    scale = np.maximum(np.ldexp(1.0, e - 1), TINY[dtype_name] / RTOL[dtype_name])
    err = np.abs(got[finite] - want[finite])
    assert (err <= RTOL[dtype_name] * scale).all(), f"max error {np.max(err / scale / RTOL[dtype_name]):.3g} tol"


# --------------------------------------------------------------------------
# torch

torch_dtypes = ["float32", "float64", "float16", "bfloat16"]


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _torch_input(torch, dtype_name, strided):
    dtype = getattr(torch, dtype_name)
    if strided:
        big = torch.tensor(np.repeat(BASE, 2, axis=1)).to(dtype)  # (5, 74)
        t = big[:, ::2]
        assert not t.is_contiguous()
    else:
        t = torch.tensor(BASE).to(dtype)
    x64 = t.to(torch.float64).numpy()  # the values actually passed, exactly
    return t, x64


@pytest.mark.parametrize("strided", [False, True], ids=["contiguous", "strided"])
@pytest.mark.parametrize("dtype_name", torch_dtypes)
@pytest.mark.parametrize("name", ROWWISE)
@pytest.mark.parametrize("axis", [-1, 0, None])
def test_torch_rowwise(torch, name, dtype_name, strided, axis):
    t, x64 = _torch_input(torch, dtype_name, strided)
    y = getattr(ssm, name)(t, axis=axis)
    assert isinstance(y, torch.Tensor)
    assert y.dtype == t.dtype and y.shape == t.shape and y.device == t.device
    _close(y.to(torch.float64).numpy(), _reference(name, x64, axis=axis), dtype_name)


@pytest.mark.parametrize("strided", [False, True], ids=["contiguous", "strided"])
@pytest.mark.parametrize("dtype_name", torch_dtypes)
@pytest.mark.parametrize("axis", [-1, 0, None])
def test_torch_logsumexp(torch, dtype_name, strided, axis):
    t, x64 = _torch_input(torch, dtype_name, strided)
    y = ssm.logsumexp(t, axis=axis)
    assert isinstance(y, torch.Tensor) and y.dtype == t.dtype
    want = ssm.logsumexp(x64, axis=axis)
    assert tuple(y.shape) == np.shape(want)
    _close(y.to(torch.float64).numpy(), want, dtype_name)
    res, sgn = ssm.logsumexp(t, axis=axis, keepdims=True, return_sign=True)
    assert isinstance(res, torch.Tensor) and isinstance(sgn, torch.Tensor)
    assert res.dtype == t.dtype and sgn.dtype == t.dtype
    _close(res.to(torch.float64).numpy(), ssm.logsumexp(x64, axis=axis, keepdims=True), dtype_name)
    assert (sgn == 1).all()


@pytest.mark.parametrize("dtype_name", torch_dtypes)
def test_torch_logsumexp_weighted(torch, dtype_name):
    t, x64 = _torch_input(torch, dtype_name, False)
    b = torch.linspace(-1, 2, t.shape[-1]).to(t.dtype)
    b64 = b.to(torch.float64).numpy()
    res, sgn = ssm.logsumexp(t, axis=-1, b=b, return_sign=True)
    assert isinstance(res, torch.Tensor) and res.dtype == t.dtype
    want, want_sign = ssm.logsumexp(x64, axis=-1, b=b64, return_sign=True)
    # Weighted sums cancel: the contract is the dtype's rounding of the
    # float32 (half) or own-precision result, checked against float64 loosely.
    np.testing.assert_allclose(res.to(torch.float64).numpy(), want, rtol=8 * RTOL[dtype_name], atol=1e-6)
    np.testing.assert_array_equal(sgn.to(torch.float64).numpy(), want_sign)


@pytest.mark.parametrize("strided", [False, True], ids=["contiguous", "strided"])
@pytest.mark.parametrize("dtype_name", torch_dtypes)
def test_torch_gumbel(torch, dtype_name, strided):
    t, x64 = _torch_input(torch, dtype_name, strided)
    # The draws are those of the same values in the kernels' dtype (float32
    # for the half formats, which widen exactly).
    same = x64.astype(np.float64 if dtype_name == "float64" else np.float32)
    idx = ssm.gumbel_argmax(t, rng=7)
    assert isinstance(idx, torch.Tensor) and idx.dtype == torch.int64
    np.testing.assert_array_equal(idx.numpy(), ssm.gumbel_argmax(same, rng=7))
    top = ssm.gumbel_topk(t, 4, rng=8)
    assert isinstance(top, torch.Tensor) and top.dtype == torch.int64 and tuple(top.shape) == (5, 4)
    np.testing.assert_array_equal(top.numpy(), ssm.gumbel_topk(same, 4, rng=8))
    soft = ssm.gumbel_softmax(t, rng=9)
    assert isinstance(soft, torch.Tensor) and soft.dtype == t.dtype
    want = ssm.gumbel_softmax(same, rng=9)
    _close(soft.to(torch.float64).numpy(), want.astype(np.float64), "float32" if dtype_name == "float64" else dtype_name)
    hard = ssm.gumbel_softmax(t, rng=9, hard=True)
    assert hard.dtype == t.dtype
    np.testing.assert_array_equal(hard.to(torch.float64).numpy(), ssm.gumbel_softmax(same, rng=9, hard=True))


@pytest.mark.parametrize("shape", [(37,), (5, 37), (2, 3, 37)])
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_torch_one_step_calls(torch, dtype_name, shape):
    """gumbel_argmax, gumbel_topk, sample and topk read a plain float32 /
    float64 tensor and make their torch results in one C++ step (no NumPy
    round trip): the same draws, values, shapes and dtypes as the NumPy call,
    the Generator advanced alike, bad rows named as for NumPy."""
    x = np.resize(BASE, shape).astype(dtype_name)
    t = torch.from_numpy(x.copy())
    ssm.softmax(t)  # the wrapper has seen a tensor: torch's DLPack functions are handed over
    found = ssm._core.gumbel_topk_call(t, -1, 1, True, 1.0, 5)
    assert isinstance(found, torch.Tensor)  # the one-step call took the tensor itself
    assert ssm._core.topk_call(t, -1, 2) is not None
    g_np, g_t = np.random.default_rng(11), np.random.default_rng(11)
    for _ in range(2):  # the second round: both generators advanced by the same draws
        calls = (
            lambda a, g: ssm.gumbel_argmax(a, rng=g),
            lambda a, g: ssm.gumbel_topk(a, 3, rng=g, temperature=0.5),
            lambda a, g: ssm.sample(a, temperature=0.7, top_p=0.9, rng=g),
            lambda a, g: ssm.sample(a, top_k=4, min_p=0.05, rng=g, logprobs="raw"),
            lambda a, g: ssm.sample(a, temperature=0.7, top_p=0.8, rng=g, logprobs="processed"),
            lambda a, g: ssm.topk(a, 4),
        )
        for call in calls:
            want, got = call(x, g_np), call(t, g_t)
            for w, r in zip(want if type(want) is tuple else (want,), got if type(got) is tuple else (got,)):
                w = np.asarray(w)
                assert type(r) is torch.Tensor and tuple(r.shape) == w.shape
                assert r.dtype == (torch.int64 if w.dtype.kind == "i" else getattr(torch, dtype_name))
                np.testing.assert_array_equal(r.numpy(), w)
    rows = x.size // x.shape[-1]
    if x.ndim == 2:  # per-request settings beside the tensor: tensors or lists, in the same one step
        temp = np.linspace(0.5, 1.2, rows)
        top_k = np.arange(rows, dtype=np.int64) % 7
        ssm_settings = dict(temperature=temp, top_k=top_k, top_p=0.9)
        for given in (dict(temperature=torch.from_numpy(temp), top_k=torch.from_numpy(top_k), top_p=0.9),
                      dict(temperature=temp.tolist(), top_k=top_k.tolist(), top_p=0.9)):
            found = ssm._core.sample_call(t, -1, *(given.get(key) for key in ("temperature", "top_k", "top_p")),
                                          None, 5, 1)
            assert found is not None and isinstance(found[2], torch.Tensor)
            want, got = ssm.sample(x, rng=8, logprobs="raw", **ssm_settings), ssm.sample(t, rng=8, logprobs="raw", **given)
            for w, r in zip(want, got):
                np.testing.assert_array_equal(r.numpy(), w)
        with pytest.raises(TypeError):  # a NumPy setting beside a tensor: mixed array types
            ssm.sample(t, rng=8, temperature=temp)
    bad = t.clone()
    bad.view(-1, 37)[-1, 3] = float("nan")
    for call in (
        lambda a: ssm.gumbel_argmax(a, rng=1),
        lambda a: ssm.gumbel_topk(a, 2, rng=1),
        lambda a: ssm.sample(a, top_p=0.5, rng=1),
        lambda a: ssm.topk(a, 2),
    ):
        with pytest.raises(ValueError) as want:
            call(bad.numpy().copy())
        with pytest.raises(ValueError, match=re.escape(str(want.value))):
            call(bad)
    with pytest.raises(TypeError, match="requires grad"):
        ssm.sample(t.clone().requires_grad_(True), rng=1)


@pytest.mark.parametrize("dtype_name", torch_dtypes)
@pytest.mark.parametrize("name", ROWWISE + ("gumbel_softmax",))
def test_torch_out_in_place_on_a_view(torch, name, dtype_name):
    """out= writes through the tensor's own memory: a strided view of a bigger tensor."""
    dtype = getattr(torch, dtype_name)
    base = torch.tensor(np.repeat(BASE, 2, axis=1)).to(dtype)
    before = base.clone()
    view = base[:, 1::2]
    kw = {"rng": 3} if name == "gumbel_softmax" else {"axis": -1}
    want = getattr(ssm, name)(view.clone(), **kw)
    got = getattr(ssm, name)(view, out=view, **kw)
    assert got is view
    assert torch.equal(base[:, 1::2], want)  # landed in the original tensor
    assert torch.equal(base[:, ::2], before[:, ::2])  # and nowhere else


@pytest.mark.parametrize("dtype_name", torch_dtypes)
def test_torch_out_separate(torch, dtype_name):
    t, x64 = _torch_input(torch, dtype_name, False)
    out = torch.empty_like(t)
    got = ssm.softmax(t, axis=-1, out=out)
    assert got is out
    _close(out.to(torch.float64).numpy(), ssm.softmax(x64, axis=-1), dtype_name)
    with pytest.raises(ValueError, match="dtype"):
        ssm.softmax(t, axis=-1, out=torch.empty(t.shape, dtype=torch.complex64))


def test_torch_input_is_read_in_place(torch):
    """The NumPy view of a tensor is its own buffer (no copy), for every dtype."""
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        t = torch.zeros(3, 8, dtype=dtype)[:, 1:5]
        view = _arrays._view(t, "torch", "x")
        bits = view.bits if isinstance(view, _arrays._Half) else view
        assert bits.__array_interface__["data"][0] == t.data_ptr()
        assert bits.strides == tuple(s * t.element_size() for s in t.stride())


def test_torch_lazy_negative_view(torch):
    # A lazy negative view has no NumPy view of its own: its values, not its
    # buffer's, must be what is computed on.
    x = BASE[[0, 2, 3, 4], :8]  # (row 1's -inf would become +inf: NaN rows)
    t = torch.from_numpy(x.astype(np.float32))
    neg = torch._neg_view(t)
    assert neg.is_neg()
    for name in ROWWISE:
        got = getattr(ssm, name)(neg, axis=-1)
        assert type(got) is torch.Tensor
        _close(got.numpy(), _reference(name, -x, axis=-1), "float32")


def test_torch_result_shares_the_numpy_buffer(torch):
    y = np.arange(6, dtype=np.float32)
    t = _arrays._result(y, "torch", None)
    assert t.data_ptr() == y.__array_interface__["data"][0]


def test_torch_errors(torch):
    meta = torch.empty(4, 8, device="meta")
    with pytest.raises(TypeError, match=r"meta.*\.cpu\(\)"):
        ssm.softmax(meta)
    with pytest.raises(TypeError, match=r"meta"):
        ssm.gumbel_argmax(meta)
    grad = torch.zeros(4, 8, requires_grad=True)
    with pytest.raises(TypeError, match=r"requires grad.*\.detach\(\)"):
        ssm.log_softmax(grad)
    with pytest.raises(TypeError, match=r"requires grad"):
        ssm.softmax(torch.zeros(4, 8), out=torch.zeros(4, 8, requires_grad=True))
    t = torch.zeros(4, 8)
    with pytest.raises(TypeError, match="same library"):
        ssm.softmax(t, out=np.zeros((4, 8), np.float32))
    with pytest.raises(TypeError, match="same library"):
        ssm.softmax(np.zeros((4, 8), np.float32), out=t)
    with pytest.raises(TypeError, match="same library"):
        ssm.logsumexp(t, b=np.ones(8, np.float32))
    # Nothing written on failure.
    out = torch.full((4, 8), 5.0)
    with pytest.raises(ValueError):
        ssm.softmax(t[:, :4], out=out)
    assert (out == 5).all()


def test_torch_integer_and_zero_d(torch):
    """Integers give torch's default float dtype, mixed dtypes torch's promotion (SciPy under the array API)."""
    t = torch.arange(12).reshape(3, 4)
    y = ssm.softmax(t, axis=1)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.get_default_dtype()
    np.testing.assert_allclose(y.numpy(), ssm.softmax(np.arange(12).reshape(3, 4), axis=1), rtol=1e-6)
    s = ssm.logsumexp(t, axis=1, b=torch.ones(4, dtype=torch.float32))
    assert s.dtype == torch.float32  # NumPy would give float64 for int64 with float32
    s = ssm.logsumexp(t.to(torch.float32), axis=1, b=torch.ones(4, dtype=torch.float64))
    assert s.dtype == torch.float64
    s = ssm.logsumexp(torch.tensor([1.0, 2.0]))
    assert isinstance(s, torch.Tensor) and s.ndim == 0 and s.dtype == torch.float32


# --------------------------------------------------------------------------
# NumPy half formats, ml_dtypes.bfloat16


@pytest.mark.parametrize("name", ROWWISE + ("logsumexp",))
def test_ml_dtypes_bfloat16(name):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = BASE.astype(ml_dtypes.bfloat16)
    y = getattr(ssm, name)(x, axis=-1)
    assert isinstance(y, np.ndarray) and y.dtype == x.dtype
    _close(y.astype(np.float64), _reference(name, x.astype(np.float64), axis=-1), "bfloat16")


def test_ml_dtypes_bfloat16_gumbel_and_out():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = BASE.astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(ssm.gumbel_argmax(x, rng=1), ssm.gumbel_argmax(x.astype(np.float32), rng=1))
    out = np.empty_like(x)
    assert ssm.log_softmax(x, axis=-1, out=out) is out
    _close(out.astype(np.float64), ssm.log_softmax(x.astype(np.float64), axis=-1), "bfloat16")
    with pytest.raises(ValueError, match="dtype"):
        ssm.softmax(x, out=np.empty(x.shape, np.float16))


@pytest.mark.parametrize("name", ROWWISE + ("logsumexp",))
def test_numpy_float16(name):
    x = BASE.astype(np.float16)
    y = getattr(ssm, name)(x, axis=-1)
    assert y.dtype == np.float16
    _close(y.astype(np.float64), _reference(name, x.astype(np.float64), axis=-1), "float16")


# --------------------------------------------------------------------------
# JAX


@pytest.mark.parametrize("dtype_name", ["float32", "float16", "bfloat16"])
def test_jax(dtype_name):
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    x = jnp.asarray(BASE, dtype=getattr(jnp, dtype_name))
    x64 = np.asarray(x).astype(np.float64)
    for name in ROWWISE:
        y = getattr(ssm, name)(x, axis=-1)
        assert isinstance(y, jax.Array) and y.dtype == x.dtype
        _close(np.asarray(y).astype(np.float64), _reference(name, x64, axis=-1), dtype_name)
    s = ssm.logsumexp(x, axis=-1)
    assert isinstance(s, jax.Array) and s.dtype == x.dtype
    _close(np.asarray(s).astype(np.float64), ssm.logsumexp(x64, axis=-1), dtype_name)
    idx = ssm.gumbel_argmax(x, rng=2)
    assert isinstance(idx, jax.Array)
    np.testing.assert_array_equal(np.asarray(idx), ssm.gumbel_argmax(x64.astype(np.float32), rng=2))
    with pytest.raises(TypeError, match="immutable"):
        ssm.softmax(x, out=jnp.zeros_like(x))


def test_jax_under_jit():
    """Inside jax.jit the NumPy computation runs as a host callback: same values."""
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    x = jnp.asarray(BASE, dtype=jnp.float32)
    for name in ROWWISE:
        f = jax.jit(lambda v, name=name: getattr(ssm, name)(v, axis=-1))
        np.testing.assert_array_equal(np.asarray(f(x)), np.asarray(getattr(ssm, name)(x, axis=-1)))
    res, sgn = jax.jit(lambda v: ssm.logsumexp(v, axis=0, return_sign=True))(x)
    np.testing.assert_array_equal(np.asarray(res), np.asarray(ssm.logsumexp(x, axis=0)))
    np.testing.assert_array_equal(np.asarray(sgn), 1)
    idx = jax.jit(lambda v: ssm.gumbel_topk(v, 2, rng=3))(x)
    np.testing.assert_array_equal(np.asarray(idx), ssm.gumbel_topk(np.asarray(x), 2, rng=3))
    with pytest.raises(TypeError, match="immutable"):
        jax.jit(lambda v: ssm.softmax(v, out=v))(x)


# --------------------------------------------------------------------------
# array-api-strict


def test_array_api_strict():
    xp = pytest.importorskip("array_api_strict")
    x = xp.asarray(BASE)
    for name in ROWWISE:
        y = getattr(ssm, name)(x, axis=-1)
        assert type(y) is type(x) and y.dtype == x.dtype
        _close(np.asarray(xp.to_device(y, xp.Device("CPU_DEVICE")) if False else np.from_dlpack(y)),
               _reference(name, BASE, axis=-1), "float64")
    s = ssm.logsumexp(x, axis=-1)
    assert type(s) is type(x)
    _close(np.from_dlpack(s), ssm.logsumexp(BASE, axis=-1), "float64")
    idx = ssm.gumbel_topk(x, 3, rng=4)
    assert type(idx) is type(x)
    np.testing.assert_array_equal(np.from_dlpack(idx), ssm.gumbel_topk(BASE, 3, rng=4))
    out = xp.zeros(x.shape, dtype=x.dtype)
    assert ssm.softmax(x, axis=-1, out=out) is out
    _close(np.from_dlpack(out), ssm.softmax(BASE, axis=-1), "float64")
    with pytest.raises(TypeError, match="same library"):
        ssm.softmax(x, out=np.zeros(BASE.shape))
    f32 = xp.asarray(BASE, dtype=xp.float32)
    assert ssm.softmax(f32).dtype == xp.float32


# --------------------------------------------------------------------------
# Dask


@pytest.mark.parametrize("name", ROWWISE + ("logsumexp",))
def test_dask_routed(name):
    da = pytest.importorskip("dask.array")
    x = da.from_array(BASE, chunks=(2, 16))
    y = getattr(ssm, name)(x, axis=-1)
    assert isinstance(y, da.Array)
    _close(y.compute(), _reference(name, BASE, axis=-1), "float64")


def test_dask_gumbel_and_errors():
    da = pytest.importorskip("dask.array")
    import simdsoftmax.dask as ssm_dask

    x = da.from_array(BASE, chunks=(2, 16))
    idx = ssm.gumbel_argmax(x, rng=5)
    assert isinstance(idx, da.Array)
    np.testing.assert_array_equal(idx.compute(), ssm_dask.gumbel_argmax(x, rng=5).compute())
    with pytest.raises(TypeError, match="immutable"):
        ssm.softmax(x, out=x)
    with pytest.raises(TypeError, match="same library"):
        ssm.softmax(x, out=np.empty(BASE.shape))
    with pytest.raises(TypeError, match="Dask"):
        ssm.gumbel_softmax(x)


# --------------------------------------------------------------------------
# Generic protocols


class _DLPackOnly:
    """An array known only by the DLPack protocol (no namespace)."""

    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


class _OnGpu(_DLPackOnly):
    def __dlpack_device__(self):
        return (2, 0)  # kDLCUDA


class _ArrayOnly:
    def __init__(self, a):
        self._a = a

    def __array__(self, dtype=None, copy=None):
        return self._a if dtype is None else self._a.astype(dtype)


def test_dlpack_and_array_protocols():
    y = ssm.softmax(_DLPackOnly(BASE), axis=-1)
    assert type(y) is np.ndarray
    np.testing.assert_array_equal(y, ssm.softmax(BASE, axis=-1))
    y = ssm.softmax(_ArrayOnly(BASE), axis=-1)
    assert type(y) is np.ndarray
    np.testing.assert_array_equal(y, ssm.softmax(BASE, axis=-1))
    with pytest.raises(TypeError, match=r"device.*cpu\(\)"):
        ssm.softmax(_OnGpu(BASE))


def test_numpy_calls_unchanged():
    """The wrapper passes NumPy calls (and their errors) straight through."""
    x = BASE.astype(np.float32)
    assert ssm.softmax(x).dtype == np.float32
    assert ssm.softmax.__wrapped__ is ssm._api.softmax
    with pytest.raises(TypeError, match="out must be a numpy.ndarray"):
        ssm.softmax(x, out=[0.0])
    with pytest.raises(ValueError, match="algorithm"):
        ssm.softmax(x, algorithm="nope")


def test_wrapping_is_one_line():
    """A new NumPy function takes every array type with one array_api call."""

    def double(x, axis=-1, *, out=None):
        r = np.multiply(np.asarray(x), 2, out=out)
        return r

    wrapped = _arrays.array_api(double, arrays=("x",), out="out")
    y = wrapped(np.ones(3, np.float32))
    np.testing.assert_array_equal(y, 2)
    torch = pytest.importorskip("torch")
    t = wrapped(torch.ones(3))
    assert isinstance(t, torch.Tensor) and t.tolist() == [2, 2, 2]
    h = wrapped(torch.ones(3, dtype=torch.bfloat16))
    assert h.dtype == torch.bfloat16 and h.tolist() == [2, 2, 2]


# --------------------------------------------------------------------------
# Import isolation


def test_import_touches_no_optional_library():
    code = textwrap.dedent(
        """
        import sys, time
        t0 = time.perf_counter()
        import simdsoftmax
        t1 = time.perf_counter()
        loaded = sorted(m for m in ("torch", "jax", "jaxlib", "dask", "ml_dtypes", "array_api_strict",
                                    "scipy", "cupy") if m in sys.modules)
        print(repr(loaded), round((t1 - t0) * 1e3, 1))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "[]", f"importing simdsoftmax imported {out[0]}"
