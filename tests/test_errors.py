"""Every bad argument of every public function raises TypeError or ValueError
(AxisError is both a ValueError and an IndexError) with a message that names
the argument, before anything is written to `out`."""

import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core, _runtime

AxisError = np.exceptions.AxisError if hasattr(np, "exceptions") else np.AxisError

X = np.ones((2, 3))


def read_only(shape, dtype=np.float64):
    a = np.zeros(shape, dtype)
    a.flags.writeable = False
    return a


ROWWISE = [ssm.softmax, ssm.log_softmax]
REDUCING = [ssm.softmax, ssm.log_softmax, ssm.logsumexp]

# (call, exception, words the message must contain)
CASES = []


def case(id_, call, exc, *words):
    CASES.append(pytest.param(call, exc, words, id=id_))


for f in REDUCING:
    n = f.__name__
    case(f"{n}-axis-out-of-range", lambda f=f: f(X, axis=2), AxisError, "axis", "2")
    case(f"{n}-axis-negative-out-of-range", lambda f=f: f(X, axis=-3), AxisError, "axis", "-3")
    case(f"{n}-axis-tuple-out-of-range", lambda f=f: f(X, axis=(0, 5)), AxisError, "axis", "5")
    case(f"{n}-axis-duplicate", lambda f=f: f(X, axis=(1, 1)), ValueError, "axis", "repeated")
    case(f"{n}-axis-duplicate-alias", lambda f=f: f(X, axis=(0, -2)), ValueError, "axis", "repeated")
    case(f"{n}-axis-float", lambda f=f: f(X, axis=1.0), TypeError, "axis", "float")
    case(f"{n}-axis-str", lambda f=f: f(X, axis="1"), TypeError, "axis", "str")
    case(f"{n}-axis-list", lambda f=f: f(X, axis=[0]), TypeError, "axis", "list")
    case(f"{n}-axis-tuple-of-floats", lambda f=f: f(X, axis=(0.5,)), TypeError, "axis", "float")
    case(f"{n}-axis-on-0d", lambda f=f: f(np.float32(1), axis=1), AxisError, "axis")
    arg = "a" if f is ssm.logsumexp else "x"
    case(f"{n}-object", lambda f=f: f(np.array(["a", None], object)), TypeError, arg, "object")
    case(f"{n}-object-of-numbers", lambda f=f: f(np.array([1.0, 2.0], object)), TypeError, arg, "object")
    case(f"{n}-strings", lambda f=f: f(["a", "b"]), TypeError, arg, "<U1")
    case(f"{n}-datetime", lambda f=f: f(np.array(["2020-01-01"], "M8[D]")), TypeError, arg, "datetime64")
    case(f"{n}-timedelta", lambda f=f: f(np.array([1], "m8[s]")), TypeError, arg, "timedelta64")
    case(f"{n}-void", lambda f=f: f(np.zeros(2, "V8")), TypeError, arg, "V8")
    case(f"{n}-None", lambda f=f: f(None), TypeError, arg, "object")
    case(f"{n}-ragged", lambda f=f: f([[1.0, 2.0], [3.0]]), ValueError, arg, "array")

for f in ROWWISE:
    n = f.__name__
    case(f"{n}-out-shape", lambda f=f: f(X, out=np.empty((3, 2))), ValueError, "out", "shape")
    case(f"{n}-out-size", lambda f=f: f(X, out=np.empty(6)), ValueError, "out", "shape")
    case(f"{n}-out-dtype", lambda f=f: f(X, out=np.empty((2, 3), np.float32)), ValueError, "out", "dtype")
    case(f"{n}-out-int", lambda f=f: f(np.ones(3, np.int32), out=np.empty(3, np.int32)), ValueError, "out", "dtype")
    case(f"{n}-out-read-only", lambda f=f: f(X, out=read_only((2, 3))), ValueError, "out", "read-only")
    case(f"{n}-out-list", lambda f=f: f(X, out=[[0.0] * 3] * 2), TypeError, "out", "ndarray")

case("softmax-algorithm-unknown", lambda: ssm.softmax(X, algorithm="fast"), ValueError, "algorithm", "'fast'")
case("softmax-algorithm-case", lambda: ssm.softmax(X, algorithm="Two-Pass"), ValueError, "algorithm")
case("softmax-algorithm-None", lambda: ssm.softmax(X, algorithm=None), ValueError, "algorithm", "None")
case("softmax-algorithm-list", lambda: ssm.softmax(X, algorithm=["auto"]), ValueError, "algorithm")

case("logsumexp-b-shape", lambda: ssm.logsumexp(X, b=np.ones(4)), ValueError, "b", "broadcast")
case("logsumexp-b-object", lambda: ssm.logsumexp(X, b=np.array(["a"] * 3, object)), TypeError, "b", "object")
case("logsumexp-b-strings", lambda: ssm.logsumexp(X, b="abc"), TypeError, "b", "<U3")
case("logsumexp-b-ragged", lambda: ssm.logsumexp(X, b=[[1.0], [1.0, 2.0]]), ValueError, "b", "array")

GUMBEL = [
    ("gumbel_argmax", lambda x, **kw: ssm.gumbel_argmax(x, **kw)),
    ("gumbel_topk", lambda x, **kw: ssm.gumbel_topk(x, 1, **kw)),
    ("gumbel_softmax", lambda x, **kw: ssm.gumbel_softmax(x, **kw)),
]
for n, g in GUMBEL:
    t = "tau" if n == "gumbel_softmax" else "temperature"
    case(f"{n}-{t}-negative", lambda g=g, t=t: g(X, **{t: -1.0}), ValueError, t, "-1")
    case(f"{n}-{t}-nan", lambda g=g, t=t: g(X, **{t: float("nan")}), ValueError, t, "nan")
    case(f"{n}-{t}-inf", lambda g=g, t=t: g(X, **{t: float("inf")}), ValueError, t, "inf")
    case(f"{n}-{t}-str", lambda g=g, t=t: g(X, **{t: "hot"}), TypeError, t, "str")
    case(f"{n}-{t}-None", lambda g=g, t=t: g(X, **{t: None}), TypeError, t, "NoneType")
    case(f"{n}-{t}-complex", lambda g=g, t=t: g(X, **{t: 1j}), TypeError, t, "complex")
    case(f"{n}-{t}-array", lambda g=g, t=t: g(X, **{t: np.array([1.0, 2.0])}), TypeError, t, "ndarray")
    case(f"{n}-axis-out-of-range", lambda g=g: g(X, axis=2), AxisError, "axis")
    case(f"{n}-axis-tuple", lambda g=g: g(X, axis=(0, 1)), TypeError, "axis", "tuple")
    case(f"{n}-axis-None", lambda g=g: g(X, axis=None), TypeError, "axis", "NoneType")
    case(f"{n}-axis-float", lambda g=g: g(X, axis=1.0), TypeError, "axis", "float")
    case(f"{n}-0d", lambda g=g: g(np.float64(1.0)), ValueError, "logits", "dimension")
    case(f"{n}-object", lambda g=g: g(np.array(["a", "b"], object)), TypeError, "logits", "object")
    case(f"{n}-strings", lambda g=g: g(["a", "b"]), TypeError, "logits", "<U1")
    case(f"{n}-complex", lambda g=g: g(np.array([1j, 2j])), TypeError, "logits", "complex")
    case(f"{n}-longdouble", lambda g=g: g(np.ones(2, np.longdouble)), TypeError, "logits")
    case(f"{n}-ragged", lambda g=g: g([[1.0, 2.0], [3.0]]), ValueError, "logits", "array")
    case(f"{n}-rng-str", lambda g=g: g(X, rng="seed"), TypeError, "rng")
    case(f"{n}-rng-negative", lambda g=g: g(X, rng=-1), ValueError, "rng")
    case(f"{n}-rng-float", lambda g=g: g(X, rng=1.5), TypeError, "rng")
    case(f"{n}-nan-row", lambda g=g: g(np.array([[1.0, 2.0], [np.nan, 1.0]])), ValueError, "logits", "row (1,)", "NaN")
    case(f"{n}-posinf-row", lambda g=g: g(np.array([[1.0, np.inf]])), ValueError, "logits", "row (0,)", "+inf")
    case(f"{n}-masked-row", lambda g=g: g(np.full((2, 2), -np.inf)), ValueError, "logits", "row (0,)", "finite")

case("gumbel_topk-k-negative", lambda: ssm.gumbel_topk(X, -1), ValueError, "k", "-1")
case("gumbel_topk-k-numpy-negative", lambda: ssm.gumbel_topk(X, np.int8(-1)), ValueError, "k", "-1")
case("gumbel_topk-k-float", lambda: ssm.gumbel_topk(X, 1.5), TypeError, "k", "float")
case("gumbel_topk-k-bool", lambda: ssm.gumbel_topk(X, True), TypeError, "k", "bool")
case("gumbel_topk-k-str", lambda: ssm.gumbel_topk(X, "2"), TypeError, "k", "str")
case("gumbel_topk-k-None", lambda: ssm.gumbel_topk(X, None), TypeError, "k", "NoneType")
case("gumbel_topk-k-too-large", lambda: ssm.gumbel_topk(X, 4), ValueError, "logits", "row (0,)", "than k")
case("gumbel_topk-k-too-large-greedy", lambda: ssm.gumbel_topk(X, 4, temperature=0), ValueError, "than k")
case("gumbel_topk-k-too-large-masked", lambda: ssm.gumbel_topk([[1.0, -np.inf, 2.0]], 3), ValueError, "than k")
case("gumbel_softmax-out-shape", lambda: ssm.gumbel_softmax(X, out=np.empty((3, 2))), ValueError, "out", "shape")
case("gumbel_softmax-out-dtype", lambda: ssm.gumbel_softmax(X, out=np.empty((2, 3), np.float32)), ValueError, "out", "dtype")
case("gumbel_softmax-out-read-only", lambda: ssm.gumbel_softmax(X, out=read_only((2, 3))), ValueError, "out", "read-only")
case("gumbel_softmax-out-list", lambda: ssm.gumbel_softmax(X, out=[0.0]), TypeError, "out", "ndarray")

case("use_isa-unknown", lambda: ssm.use_isa("sse9"), ValueError, "name", "'sse9'", "unknown")
case("use_isa-empty", lambda: ssm.use_isa(""), ValueError, "name", "unknown")
case("use_isa-None", lambda: ssm.use_isa(None), TypeError, "name", "NoneType")
case("use_isa-int", lambda: ssm.use_isa(2), TypeError, "name", "int")
case("set_num_threads-zero", lambda: ssm.set_num_threads(0), ValueError, "n", "0")
case("set_num_threads-negative", lambda: ssm.set_num_threads(-2), ValueError, "n", "-2")
case("set_num_threads-str", lambda: ssm.set_num_threads("2"), ValueError, "n", "'2'")
case("set_num_threads-float", lambda: ssm.set_num_threads(2.0), ValueError, "n", "2.0")
case("set_num_threads-bool", lambda: ssm.set_num_threads(True), ValueError, "n", "True")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("call, exc, words", CASES)
def test_bad_argument(call, exc, words):
    isa, threads = ssm.isa(), ssm.get_num_threads()
    with pytest.raises(exc) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    # nothing changed on the way
    assert ssm.isa() == isa and ssm.get_num_threads() == threads


@pytest.mark.parametrize("name", ["avx512", "avx2", "neon", "scalar"])
def test_use_isa_unsupported_names_the_argument(name, monkeypatch):
    # Pretend the CPU runs only another set, so every known name takes the unsupported path.
    others = [n for n in ("avx512", "avx2", "neon", "scalar") if n != name]
    monkeypatch.setattr(_runtime, "available_isas", lambda: others[-1:])
    with pytest.raises(ValueError, match=rf"name='{name}'.*not supported"):
        ssm.use_isa(name)


@pytest.mark.parametrize("func", ROWWISE)
@pytest.mark.parametrize(
    "bad",
    [
        dict(axis=5),
        dict(axis=(0, 0)),
        dict(out=np.zeros((2, 3), np.float32)),
        dict(out=np.zeros((3, 2))),
    ],
    ids=["axis", "duplicate-axis", "out-dtype", "out-shape"],
)
def test_nothing_is_written_on_error(func, bad):
    x = np.arange(6.0).reshape(2, 3)
    before = x.copy()
    bad = dict(bad)  # the parametrized dict is shared between the functions
    out = bad.pop("out", np.full((2, 3), 7.0))
    out_before = out.copy()
    with pytest.raises((TypeError, ValueError)):
        func(x, out=out, **bad)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(out, out_before)


def test_gumbel_softmax_writes_nothing_on_a_bad_row():
    x = np.zeros((3, 4))
    x[2, 1] = np.nan
    out = np.full((3, 4), 7.0)
    with pytest.raises(ValueError, match=r"logits: row \(2,\) contains NaN"):
        ssm.gumbel_softmax(x, out=out, rng=0)
    assert np.all(out == 7.0)


def test_core_rejects_bad_arguments_before_writing():
    """The kernels' own entry (_core.softmax) checks what it is given."""
    x = np.zeros((2, 3), np.float32)
    out = np.full((2, 3), 5.0, np.float32)
    with pytest.raises(ValueError, match="algorithm"):
        _core.softmax(x, out, "three-pass")
    with pytest.raises(ValueError, match="out"):
        _core.softmax(x, np.zeros((2, 4), np.float32), "auto")
    with pytest.raises(ValueError, match="out"):
        _core.softmax(x, np.zeros((2, 3), np.float64), "auto")
    ro = np.zeros((2, 3), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        _core.softmax(x, ro, "auto")
    with pytest.raises(TypeError, match="float32 or float64"):
        _core.softmax(x.astype(np.int32), out, "auto")
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.softmax(np.zeros((3, 2), np.float32).T, out, "auto")
    assert np.all(out == 5.0)
