"""Array types in, the same array type out.

The public functions are written for NumPy. `array_api` wraps one of them so
that it also takes torch CPU tensors, JAX CPU arrays, array-api-strict arrays,
anything else with ``__dlpack__`` on the CPU, and Dask arrays, and returns
results of the input's library:

* the input is viewed as a NumPy array without a copy (``Tensor.numpy()``,
  ``np.asarray`` of a JAX CPU array, ``np.from_dlpack``), the NumPy function
  runs on the view, and its result is handed back the same way
  (``torch.from_numpy`` shares the result's buffer);
* an `out` of the same library is viewed the same way and written in place
  (torch); immutable or opaque arrays (JAX, array-api-strict) get the result
  by assignment, or a TypeError where the library cannot be written;
* Dask arrays go to the function of the same name in `simdsoftmax.dask`;
* float16 and bfloat16 go to `simdsoftmax._half` (2-byte kernels).

No library is imported here: a value's type is recognised by its module name,
and torch / jax / dask / ml_dtypes are only touched once an input of theirs
has been seen (they are then already imported by the caller).
"""

from __future__ import annotations

import functools
import inspect
import sys

import numpy as np

from . import _core, _half
from ._half import _Half

__all__ = ["array_api"]

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
_PLAIN = (_F32, _F64)

# type -> library name ("numpy", "torch", "jax", "dask", "strict", "dlpack"), or
# None for what NumPy converts by itself (lists, scalars, __array__ objects).
_KIND_CACHE: dict[type, str | None] = {np.ndarray: "numpy", type(None): None}


# torch.Tensor, torch.from_numpy and torch's float32/float64 dtypes once a
# tensor has been seen (the wrapper's torch fast path compares against them).
_TORCH_TENSOR: list = [()]
_TORCH_FROM_NUMPY: list = [None]
_TORCH_PLAIN: tuple = ()
_TORCH_HALF: tuple = ()
_NUMPY_BF16: list = [None]


def _kind_of_type(t: type) -> str | None:
    global _TORCH_PLAIN, _TORCH_HALF
    module = (t.__module__ or "").split(".")[0]
    if module == "torch":
        torch = sys.modules.get("torch")
        if torch is None or not issubclass(t, torch.Tensor):
            return None
        _TORCH_TENSOR[0], _TORCH_FROM_NUMPY[0] = torch.Tensor, torch.from_numpy
        _TORCH_PLAIN = (torch.float32, torch.float64)
        _TORCH_HALF = (torch.float16, torch.bfloat16)
        to_dlpack = getattr(getattr(torch, "_C", None), "_to_dlpack", None)
        from_dlpack = getattr(getattr(torch, "_C", None), "_from_dlpack", None)
        if to_dlpack is not None and from_dlpack is not None:
            # The C++ fast path (_core.tensor_softmax...) reads tensors and
            # hands results to torch as DLPack capsules.
            _core.tensor_setup(to_dlpack, from_dlpack)
        return "torch"
    if module in ("jax", "jaxlib"):
        jax = sys.modules.get("jax")
        tracer = jax is not None and issubclass(t, getattr(getattr(jax, "core", None), "Tracer", ()))
        return "jax" if tracer or hasattr(t, "__dlpack__") else None
    if module == "dask":
        return "dask" if hasattr(t, "__dask_graph__") and hasattr(t, "chunks") else None
    if module == "array_api_strict":
        return "strict" if hasattr(t, "__array_namespace__") else None
    if issubclass(t, np.ndarray):
        return "numpy"
    if issubclass(t, np.generic):
        return None
    if hasattr(t, "__dlpack__") and hasattr(t, "__dlpack_device__"):
        return "dlpack"
    return None


def _kind(value) -> str | None:
    t = type(value)
    try:
        return _KIND_CACHE[t]
    except KeyError:
        kind = _KIND_CACHE[t] = _kind_of_type(t)
        return kind


# --------------------------------------------------------------------------
# Library -> NumPy views




def _device_error(name: str, library: str, device) -> TypeError:
    return TypeError(
        f"{name} is a {library} array on device {str(device)!r}; simdsoftmax computes on the CPU: "
        f"pass {name}.cpu() (torch) or a CPU copy, and move the result back afterwards"
    )


def _torch_view(t, name: str, writable: bool):
    torch = sys.modules["torch"]
    if t.device.type != "cpu":
        raise _device_error(name, "torch", t.device)
    if t.requires_grad:
        raise TypeError(
            f"{name} is a torch tensor that requires grad; simdsoftmax does not record gradients: "
            f"pass {name}.detach() (or use torch's own functions under autograd)"
        )
    if t.dtype is torch.bfloat16:
        return _Half(t.view(torch.int16).numpy().view(np.uint16), "bfloat16", None)
    if t.is_conj() or t.is_neg():
        if writable:
            raise TypeError(f"{name} has a lazy conjugate/negative view and cannot be written in place")
        t = t.resolve_conj().resolve_neg()
    return t.numpy()


def _jax_view(x, name: str):
    devices = x.devices() if hasattr(x, "devices") else ()
    for device in devices:
        if getattr(device, "platform", "cpu") != "cpu":
            raise _device_error(name, "JAX", device)
    try:
        return np.asarray(x)
    except Exception as error:  # tracers under jit raise their own error types
        raise TypeError(f"{name} cannot be read as a CPU array ({type(error).__name__}: {error})") from None


def _dlpack_view(x, name: str, library: str):
    try:
        device_type = x.__dlpack_device__()[0]
    except Exception:
        device_type = 1
    # kDLCPU = 1, kDLCUDAHost = 3 (pinned host memory), kDLCUDAManaged = 13.
    if int(device_type) not in (1, 3, 13):
        raise _device_error(name, library, getattr(x, "device", f"DLPack device type {int(device_type)}"))
    return np.from_dlpack(x)


def _strict_view(x, name: str):
    # array-api-strict's extra devices are emulated on the CPU: read them through its own CPU device.
    xp = x.__array_namespace__()
    cpu = getattr(xp, "Device", None)
    if cpu is not None and x.device != cpu():
        x = x.to_device(cpu())
    return np.from_dlpack(x)


def _numpy_half(a: np.ndarray):
    """A NumPy float16 / ml_dtypes.bfloat16 array as a _Half, else None."""
    dtype = a.dtype
    if dtype.itemsize != 2 or dtype.kind not in "fV":
        return None
    if not dtype.isnative and dtype.char == "e":
        # The kernels read native bits: a byte-swapped float16 is swapped in a 2-byte copy.
        a = a.astype(dtype.newbyteorder("="))
        dtype = a.dtype
    if dtype.char == "e":
        return _Half(a.view(np.uint16), "float16", dtype)
    if dtype.name == "bfloat16":
        if _NUMPY_BF16[0] is None and dtype.isnative:
            _NUMPY_BF16[0] = dtype
            _core.set_numpy_bfloat16(dtype)  # the C++ fast path reads it from now on
        return _Half(a.view(np.uint16), "bfloat16", dtype)
    return None


def _view(value, kind: str, name: str, writable: bool = False):
    """value as a NumPy array (or _Half), sharing its memory where the library allows."""
    if kind == "torch":
        a = _torch_view(value, name, writable)
    elif kind == "jax":
        a = _jax_view(value, name)
    elif kind == "strict":
        a = _strict_view(value, name)
    elif kind == "dlpack":
        a = _dlpack_view(value, name, type(value).__module__.split(".")[0])
    else:
        a = value
    if isinstance(a, np.ndarray):
        half = _numpy_half(a)
        if half is not None:
            return half
    elif isinstance(a, _Half):
        return a
    return a


# --------------------------------------------------------------------------
# NumPy results -> the input's library


def _torch_result(y, like):
    torch = sys.modules["torch"]
    if isinstance(y, _Half):
        bits = np.ascontiguousarray(y.bits) if not y.bits.flags.writeable else y.bits
        t = torch.from_numpy(bits.view(np.int16))
        return t.view(torch.bfloat16) if y.fmt == "bfloat16" else t.view(torch.float16)
    y = np.asarray(y)
    if not y.flags.writeable:
        y = y.copy()
    return torch.from_numpy(y)


def _bf16_numpy(bits: np.ndarray, like_dtype):
    if like_dtype is not None:
        return bits.view(like_dtype)
    ml_dtypes = sys.modules.get("ml_dtypes")
    if ml_dtypes is None:
        import ml_dtypes  # JAX and array-api libraries with bfloat16 depend on it
    return bits.view(ml_dtypes.bfloat16)


def _result(y, kind: str, like):
    """A NumPy result (array, scalar or _Half) as an array of `like`'s library."""
    if y is None:
        return None
    if kind == "torch":
        return _torch_result(y, like)
    if isinstance(y, _Half):
        y = y.bits.view(np.float16) if y.fmt == "float16" else _bf16_numpy(y.bits, y.dtype)
    if kind == "numpy" or kind is None:
        return y[()] if isinstance(y, np.ndarray) and y.ndim == 0 else y
    y = np.asarray(y)
    if kind == "jax":
        return sys.modules["jax.numpy"].asarray(y)
    if kind == "strict":
        xp = like.__array_namespace__()
        return xp.asarray(y, device=like.device)
    xp = getattr(like, "__array_namespace__", None)
    if xp is not None:
        return xp().asarray(y)
    return y


# --------------------------------------------------------------------------
# The wrapper


class _Param:
    __slots__ = ("name", "position")

    def __init__(self, name: str, position: int | None):
        self.name, self.position = name, position

    def get(self, args, kwargs):
        if self.position is not None and self.position < len(args):
            return args[self.position]
        return kwargs.get(self.name)

    def set(self, args: list, kwargs: dict, value) -> None:
        if self.position is not None and self.position < len(args):
            args[self.position] = value
        else:
            kwargs[self.name] = value


def _params(fn, names) -> list[_Param]:
    code = getattr(fn, "__code__", None)
    if code is not None and not hasattr(fn, "__wrapped__"):
        # A plain function: its code object names the parameters (inspect.signature
        # costs about a millisecond per function at import).
        positional = list(code.co_varnames[: code.co_argcount])
        every = set(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])
    else:
        parameters = inspect.signature(fn).parameters
        positional = [p.name for p in parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        every = set(parameters)
    out = []
    for name in names:
        if name not in every:
            raise TypeError(f"{fn.__name__} has no parameter {name!r}")
        out.append(_Param(name, positional.index(name) if name in positional else None))
    return out


def _route_to_dask(name: str, args: list, kwargs: dict, out_param: _Param | None):
    from . import dask as ssm_dask

    fn = getattr(ssm_dask, name, None)
    if fn is None:
        raise TypeError(
            f"{name} has no Dask implementation in simdsoftmax.dask; compute the Dask array first "
            f"(x.compute()) or map {name} over blocks that hold whole rows"
        )
    if out_param is not None:
        if out_param.get(args, kwargs) is not None:
            raise TypeError("out= is not supported for Dask arrays (they are immutable); use the result")
        kwargs.pop(out_param.name, None)
        if out_param.position is not None and out_param.position < len(args):
            del args[out_param.position]
    # The algorithm only changes speed; simdsoftmax.dask picks its own per block.
    kwargs.pop("algorithm", None)
    return fn(*args, **kwargs)


def _torch_promoted(found):
    """The floating dtype torch's promotion gives the call's tensors (SciPy
    under the array API computes in it: int64 with float32 is float32 in
    torch, float64 in NumPy); integers alone give torch's default dtype."""
    torch = sys.modules["torch"]
    dtype = None
    for _, v, _ in found:
        dtype = v.dtype if dtype is None else torch.promote_types(dtype, v.dtype)
    if dtype is None or dtype is torch.bool or not (dtype.is_floating_point or dtype.is_complex):
        return torch.get_default_dtype()
    return dtype


def _jax_promoted(found) -> np.dtype:
    """JAX's promotion of the call's arrays, at least floating (JAX's default float)."""
    jnp = sys.modules["jax.numpy"]
    dtype = np.dtype(jnp.result_type(*[v.dtype for _, v, _ in found]))
    if dtype.kind not in "fc":
        dtype = np.dtype(jnp.result_type(float))
    return dtype


def _cast_numpy(result, target: np.dtype):
    """Floating results cast to `target` (a real result of complex input to its real counterpart)."""
    real = np.empty(0, target).real.dtype

    def one(r):
        if not isinstance(r, (np.ndarray, np.generic)):
            return r
        if r.dtype.kind == "c" and target.kind == "c" and r.dtype != target:
            return np.asarray(r, target)
        if r.dtype.kind == "f" and r.dtype != real and r.dtype.itemsize >= 4 and real.itemsize >= 4:
            return np.asarray(r, real)
        return r

    return tuple(one(r) for r in result) if type(result) is tuple else one(result)


def array_api(fn=None, *, arrays=("x",), out="out", half=None, name=None, promote=True, tensor=None):
    """Make a NumPy-facing function take and return the arrays of any library.

    Parameters
    ----------
    fn : callable
        The NumPy implementation. Its first name in `arrays` is the primary
        input: its library, device and dtype decide the result's.
    arrays : tuple of str
        Parameters that may hold arrays (the others pass through untouched).
    out : str or None
        The output parameter, if the function has one.
    half : callable or None
        ``half(fn, args, kwargs, primary, out)`` for float16 / bfloat16
        primary input (`simdsoftmax._half`); default: computed in float32
        and floating results rounded back to the input's format.
    name : str, optional
        The function's name in `simdsoftmax.dask` (default ``fn.__name__``).
    promote : bool
        Floating results of torch calls take torch's promotion of the
        inputs' dtypes (NumPy's may differ: int64 with float32).
    tensor : callable or None
        ``tensor(args, kwargs)``: a fast path for calls whose primary input
        is a torch tensor or a NumPy float16 / bfloat16 array
        (`_core.tensor_softmax`...), returning the result in the input's
        library, or None to let the general path take the call.

    Usable as ``array_api(fn, arrays=...)`` or as a decorator.
    """
    if fn is None:
        return functools.partial(
            array_api, arrays=arrays, out=out, half=half, name=name, promote=promote, tensor=tensor
        )
    params = _params(fn, arrays)
    out_param = _params(fn, (out,))[0] if out is not None else None
    first = params[0]
    others = params[1:] + ([out_param] if out_param is not None else [])
    dask_name = name or fn.__name__
    half_fn = half if half is not None else _half.generic
    # Positional arguments that can hold no other array (the torch fast path
    # takes calls with only these, and no keywords).
    positions = [p.position for p in others if p.position is not None]
    first_array_free = min(positions) if positions else 1 << 30
    other_names = tuple(p.name for p in others)
    input_names = tuple(p.name for p in params[1:])

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        x = args[0] if args and first.position == 0 else first.get(args, kwargs)
        tx = type(x)
        # A plain CPU tensor, read and answered in one C++ call.
        if tx is _TORCH_TENSOR[0] and tensor is not None:
            y = tensor(args, kwargs)
            if y is not None:
                return y
        # The common NumPy call: no other array and nothing to convert.
        if tx is np.ndarray and x.dtype in _PLAIN:
            for p in others:
                v = p.get(args, kwargs)
                if v is not None and _kind(v) not in ("numpy", None):
                    break
            else:
                return fn(*args, **kwargs)
        # The common torch call: a float32/float64 CPU tensor, no grad, no other array.
        elif (
            tx is _TORCH_TENSOR[0]
            and x.dtype in _TORCH_PLAIN
            and len(args) <= first_array_free
            and (not kwargs or all(kwargs.get(n) is None for n in other_names))
        ):
            # Tensor.numpy() itself refuses what this path must not take (another
            # device, requires_grad, a lazy negative view; a real dtype has no
            # conjugate bit): the general path then raises the error that says
            # what to do.
            try:
                a = x.numpy()
            except (RuntimeError, TypeError):
                a = None
            if a is not None:
                y = fn(a, *args[1:], **kwargs)
                if type(y) is np.ndarray and y.flags.writeable:
                    return _TORCH_FROM_NUMPY[0](y)
                if type(y) is tuple:
                    return tuple(_result(r, "torch", x) for r in y)
                return _result(y, "torch", x)
        # The common half calls: a NumPy or torch float16 / bfloat16 array, no
        # other input array, out= None or the same type and dtype.
        elif (
            (tx is np.ndarray and x.dtype.itemsize == 2) or (tx is _TORCH_TENSOR[0] and x.dtype in _TORCH_HALF)
        ) and len(args) <= first_array_free and all(kwargs.get(n) is None for n in input_names):
            if tx is np.ndarray and tensor is not None:
                y = tensor(args, kwargs)  # float16 / bfloat16 rows in one C++ call
                if y is not None:
                    return y[()] if y.ndim == 0 else y
            result = _half_call(fn, first, out_param, half_fn, x, tx, args, kwargs)
            if result is not _MISS:
                return result
        return _call(fn, params, out_param, dask_name, half_fn, args, kwargs, promote)

    wrapper.__wrapped_numpy__ = fn
    return wrapper


_MISS = object()


def _half_call(fn, first, out_param, half_fn, x, tx, args, kwargs):
    """_call's result for a half `x` (NumPy or torch, of type `tx`) and at most an
    `out` of its type and dtype (the per-call work of _call skipped), or _MISS
    when the call is not that."""
    kind = "numpy" if tx is np.ndarray else "torch"
    h = _numpy_half(x) if kind == "numpy" else _half_view(x, first.name, False)
    if h is None:
        return _MISS
    out = kwargs.get(out_param.name) if out_param is not None else None
    kwargs = dict(kwargs)
    if out is not None:
        if type(out) is not tx or out.dtype != x.dtype:
            return _MISS
        if kind == "numpy":
            if not out.dtype.isnative:
                return _MISS
            kwargs[out_param.name] = _numpy_half(out)
        else:
            kwargs[out_param.name] = _half_view(out, out_param.name, True)
    args = list(args)
    first.set(args, kwargs, h)
    result = half_fn(fn, args, kwargs, first, out_param, True)
    if out is not None:
        return out
    if type(result) is tuple:
        return tuple(_result(r, kind, x) for r in result)
    return _result(result, kind, x)


def _half_view(t, name: str, writable: bool):
    """A torch float16 / bfloat16 tensor's bits as a _Half (errors as _torch_view)."""
    torch = sys.modules["torch"]
    if not t.is_cpu or t.requires_grad:
        return _torch_view(t, name, writable)  # raises the error that says what to do
    if t.is_neg():
        return None  # a lazy negative view: the general path resolves it
    fmt = "bfloat16" if t.dtype is torch.bfloat16 else "float16"
    return _Half(t.view(torch.int16).numpy().view(np.uint16), fmt, None)


def _call(fn, params, out_param, dask_name, half_fn, args, kwargs, promote=False):
    args = list(args)
    found = []  # (param, value, kind) of array parameters holding arrays
    for p in params + ([out_param] if out_param is not None else []):
        v = p.get(args, kwargs)
        if v is None:
            continue
        k = _kind(v)
        if k is not None:
            found.append((p, v, k))
    kinds = {k for _, _, k in found}
    if len(kinds) > 1:
        names = ", ".join(f"{p.name} ({_library_name(k, v)})" for p, v, k in found)
        raise TypeError(f"all arrays in one call must come from the same library; got {names}")
    kind = kinds.pop() if kinds else None
    if kind == "dask":
        return _route_to_dask(dask_name, args, kwargs, out_param)

    if kind == "jax" and any(isinstance(v, sys.modules["jax"].core.Tracer) for _, v, _ in found):
        return _jax_traced(fn, params, out_param, half_fn, args, kwargs, found, promote)

    primary = params[0]
    like = primary.get(args, kwargs) if kind is not None else None
    if kind is not None and _kind(like) != kind:
        like = next(v for _, v, _ in found)
    out_value = None
    for p, v, k in found:
        writable = p is out_param
        if writable:
            out_value = v
            if kind in ("jax",):
                raise TypeError("out= cannot be a JAX array (JAX arrays are immutable); use the result")
        if writable and k == "numpy" and v.dtype.char == "e" and not v.dtype.isnative:
            continue  # written by assignment below (a converted copy would be lost)
        view = _view(v, k, p.name, writable)
        p.set(args, kwargs, view)
    # NumPy half arrays passed directly (no library around them).
    x = primary.get(args, kwargs)
    if isinstance(x, np.ndarray):
        h = _numpy_half(x)
        if h is not None:
            primary.set(args, kwargs, h)
            x = h
    swapped_out = None
    if out_param is not None:
        o = out_param.get(args, kwargs)
        if isinstance(o, np.ndarray):
            if o.dtype.char == "e" and not o.dtype.isnative and isinstance(x, _Half):
                # A byte-swapped float16 out gets the result by assignment (NumPy swaps).
                swapped_out = o
                out_param.set(args, kwargs, None)
            else:
                h = _numpy_half(o)
                if h is not None:
                    out_param.set(args, kwargs, h)
    # Views an `out` cannot be written through (array-api-strict, generic
    # DLPack: read-only) get the result by assignment.
    assign_out = None
    if out_param is not None and out_value is not None and kind in ("strict", "dlpack"):
        assign_out = out_value
        out_param.set(args, kwargs, None)

    # Other arguments in half precision (logsumexp's b, say) are widened; the
    # result stays half only if each is of the primary input's format.
    keep = True
    for p in params[1:]:
        v = p.get(args, kwargs)
        if isinstance(v, np.ndarray):
            v = _numpy_half(v) or v
        if isinstance(v, _Half):
            keep = keep and isinstance(x, _Half) and v.fmt == x.fmt
            p.set(args, kwargs, _half.widen(v))
        elif v is not None and type(v) not in (int, float, bool):
            keep = False

    if isinstance(x, _Half):
        result = half_fn(fn, args, kwargs, primary, out_param, keep)
    else:
        o = out_param.get(args, kwargs) if out_param is not None else None
        if isinstance(o, _Half):
            raise ValueError(f"out has dtype {o.fmt}, but the result has dtype {np.asarray(x).dtype}")
        result = fn(*args, **kwargs)

    if swapped_out is not None:
        y = _result(result, "numpy", None)
        if not (isinstance(y, (np.ndarray, np.generic)) and np.shape(y) == swapped_out.shape):
            raise ValueError(f"out has shape {swapped_out.shape}, but the result has shape {np.shape(y)}")
        if not swapped_out.flags.writeable:
            raise ValueError("out is read-only")
        swapped_out[...] = y
        return swapped_out
    if out_value is not None:
        if assign_out is not None:
            assign_out[...] = _result(result, kind, like)
        return out_value
    if kind == "jax" and promote:
        result = _cast_numpy(result, _jax_promoted(found))
    if kind == "torch" and promote:
        target = _torch_promoted([f for f in found if f[0] is not out_param])

        torch = sys.modules["torch"]
        real_target = {torch.complex64: torch.float32, torch.complex128: torch.float64}.get(target, target)

        def back(r):
            t = _result(r, kind, like)
            if t.is_complex():
                return t.to(target) if target.is_complex and t.dtype != target else t
            if t.is_floating_point() and t.dtype != real_target:
                return t.to(real_target)  # a real result (log|sum|) of complex input stays real
            return t

    else:

        def back(r):
            return _result(r, kind, like)

    if type(result) is tuple:
        return tuple(back(r) for r in result)
    return back(result)


def _jax_traced(fn, params, out_param, half_fn, args, kwargs, found, promote):
    """A call on JAX tracers (inside jax.jit, vmap of a jitted function...):
    the NumPy computation runs as a host callback (jax.pure_callback) on the
    CPU. Its result shapes and dtypes come from running it once, at trace
    time, on zeros of the inputs' shapes."""
    jax = sys.modules["jax"]
    if out_param is not None and out_param.get(args, kwargs) is not None:
        raise TypeError("out= cannot be a JAX array (JAX arrays are immutable); use the result")
    slots = [p for p, _, _ in found]
    target = _jax_promoted(found) if promote else None

    def host(*arrays):
        call_args, call_kwargs = list(args), dict(kwargs)
        for p, a in zip(slots, arrays):
            p.set(call_args, call_kwargs, np.asarray(a))
        result = _call(fn, params, out_param, None, half_fn, call_args, call_kwargs)
        if promote:
            result = _cast_numpy(result, target)
        return tuple(np.asarray(r) for r in result) if type(result) is tuple else np.asarray(result)

    values = [v for _, v, _ in found]
    sample = host(*(np.zeros(v.shape, v.dtype) for v in values))

    def struct(r):
        return jax.ShapeDtypeStruct(r.shape, jax.dtypes.canonicalize_dtype(r.dtype))

    shapes = tuple(struct(r) for r in sample) if type(sample) is tuple else struct(sample)

    def host_cast(*arrays):
        result = host(*arrays)
        if type(result) is tuple:
            return tuple(np.asarray(r, dtype=s.dtype) for r, s in zip(result, shapes))
        return np.asarray(result, dtype=shapes.dtype)

    return jax.pure_callback(host_cast, shapes, *values)


def _library_name(kind: str, value) -> str:
    if kind == "numpy":
        return "numpy.ndarray"
    return f"{type(value).__module__.split('.')[0]}.{type(value).__name__}"
