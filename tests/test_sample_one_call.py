"""sample()'s one-step call (_core.sample_call: an ndarray the kernels take
as it is, one setting and one rng for every row) against the general path
(per-row parameter arrays, reached here with NumPy scalar parameters or a
non-contiguous view): the same tokens and log-probabilities bit for bit, the
same result types, errors and Generator advance; and against the reference
semantics (gumbel_argmax over the kept set)."""

import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core

from test_sample import SETTINGS as BASE_SETTINGS
from test_sample import masked, ref_kept_rows

SETTINGS = BASE_SETTINGS + [
    dict(temperature=0),
    dict(top_k=10_000),  # more than n: every token
    dict(temperature=0.7, top_p=0.95),
    dict(top_k=5, min_p=0.2, top_p=1.0),
]


def general(params):
    """The same parameters as NumPy scalars: _scalar_values refuses them, so
    the call takes the general path."""
    return {name: (v if v is None else np.asarray(v)[()]) for name, v in params.items()}


@pytest.mark.parametrize("params", SETTINGS, ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()) or "none")
@pytest.mark.parametrize("logprobs", [None, "raw", "processed"])
def test_one_call_equals_general_path(isa, dtype, params, logprobs):
    x = np.random.default_rng(2).normal(0, 2, (6, 3001)).astype(dtype)
    fast = ssm.sample(x, rng=4, logprobs=logprobs, **params)
    slow = ssm.sample(x, rng=4, logprobs=logprobs, **general(params))
    if logprobs is None:
        fast, slow = (fast,), (slow,)
    for a, b in zip(fast, slow):
        assert type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    t = params.get("temperature", 1.0)
    if t > 0:
        kept = ref_kept_rows(x, **params)
        np.testing.assert_array_equal(fast[0], ssm.gumbel_argmax(masked(x, kept), temperature=t, rng=4))


@pytest.mark.parametrize("shape", [(1,), (7,), (3, 17), (2, 3, 65), (0, 5), (4, 0, 9)])
def test_one_call_shapes_and_types(dtype, shape):
    x = np.random.default_rng(5).normal(0, 1, shape).astype(dtype)
    for logprobs in (None, "raw"):
        fast = ssm.sample(x, rng=1, top_k=3, logprobs=logprobs)
        slow = ssm.sample(x, rng=1, top_k=np.int64(3), logprobs=logprobs)
        if logprobs is None:
            fast, slow = (fast,), (slow,)
        for a, b in zip(fast, slow):
            assert type(a) is type(b) and np.shape(a) == shape[:-1] and a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    if len(shape) == 1:
        assert isinstance(ssm.sample(x, rng=1), np.intp)


def test_one_call_strided_and_axis_inputs_take_the_general_path(isa):
    x = np.random.default_rng(6).normal(0, 1, (40, 8)).astype(np.float32)
    # axis 0 and a transposed copy: the same rows
    np.testing.assert_array_equal(ssm.sample(x, axis=0, rng=3, top_p=0.8), ssm.sample(x.T.copy(), rng=3, top_p=0.8))
    np.testing.assert_array_equal(ssm.sample(x[::2], rng=3, min_p=0.1), ssm.sample(x[::2].copy(), rng=3, min_p=0.1))


def test_one_call_generator_advances_like_the_general_path():
    x = np.random.default_rng(7).normal(0, 1, (3, 500))
    g1, g2 = np.random.default_rng(11), np.random.default_rng(11)
    for _ in range(3):
        np.testing.assert_array_equal(ssm.sample(x, rng=g1, top_k=20), ssm.sample(x, rng=g2, top_k=np.int64(20)))
    assert g1.bit_generator.state == g2.bit_generator.state


@pytest.mark.parametrize("bad, reason", [(np.nan, "NaN"), (np.inf, r"\+inf"), (-np.inf, "no finite")])
def test_one_call_errors_name_the_row(bad, reason):
    x = np.zeros((2, 3, 10))
    x[1, 2, :] = -np.inf
    x[1, 2, 4] = bad
    for params in (dict(), dict(top_p=0.9), dict(top_k=2), dict(min_p=0.1), dict(temperature=0)):
        with pytest.raises(ValueError, match=rf"row \(1, 2\).*{reason}"):
            ssm.sample(x, rng=0, **params)


@pytest.mark.parametrize("params, match", [(dict(top_k=-1), "top_k"), (dict(top_p=0.0), "top_p"),
                                           (dict(min_p=1.5), "min_p"), (dict(temperature=float("nan")), "temperature"),
                                           (dict(temperature=-1.0), "temperature"), (dict(top_k=2.5), "top_k")])
def test_one_call_bad_parameters_raise_as_before(params, match):
    with pytest.raises(ValueError, match=match):
        ssm.sample(np.zeros((2, 5)), rng=0, **params)


def test_one_call_checks_its_arguments():
    """Checked before the key is drawn: a refused call leaves the Generator as it was."""
    x = np.zeros((2, 5), np.float32)
    gen = np.random.default_rng(1)
    with pytest.raises(ValueError):
        _core.sample_call(x, -1, 1.0, 0, 1.0, 0.0, gen, 3)  # logprobs mode
    # not a call it takes: None (the general path's)
    for y, axis in ((x[:, ::2], -1), (x, 0), (x, True), (x.astype(np.float16), -1), (x[:, :0], 1), (x.tolist(), -1)):
        assert _core.sample_call(y, axis, 1.0, 0, 1.0, 0.0, gen, 0) is None
    # settings it does not take, or out of range: the general path converts them or names the error
    for t, k, p, m in ((1.0, 0, 0.0, 0.0), (1.0, 0, 1.5, 0.0), (-1.0, 0, 1.0, 0.0), (float("nan"), 0, 1.0, 0.0),
                       (float("inf"), 0, 1.0, 0.0), (1.0, -1, 1.0, 0.0), (1.0, 2.0, 1.0, 0.0), (1.0, True, 1.0, 0.0),
                       (1.0, 0, 1.0, 1.5), (1.0, 0, 1.0, -0.0001), ("1", 0, 1.0, 0.0), (1.0, 10**30, 1.0, 0.0),
                       (np.array([1.0, np.nan]), 0, 1.0, 0.0), (np.array([1.0, 1.0, 1.0]), 0, 1.0, 0.0),
                       (np.array([[1.0, 1.0]]), 0, 1.0, 0.0), (np.array([1, 1]), 0, 1.0, 0.0),
                       (np.array([1.0, 1.0])[::-1].copy().astype(">f8"), 0, 1.0, 0.0),
                       (np.ones(4)[::2], 0, 1.0, 0.0), (1.0, np.array([1.0, 2.0]), 1.0, 0.0),
                       (1.0, np.array([3, -1]), 1.0, 0.0), (1.0, [3, 2.0], 1.0, 0.0), (1.0, 0, [0.5], 0.0),
                       (1.0, 0, [0.5, None], 0.0), (1.0, 0, (0.5, 1.01), 0.0), (1.0, 0, 1.0, [[0.1, 0.1]])):
        assert _core.sample_call(x, -1, t, k, p, m, gen, 0) is None, (t, k, p, m)
    # ...and ones it takes: each row's own, None as the default
    for t, k, p, m in ((None, None, None, None), (np.array([0.5, 1.0]), np.array([2, 9]), [0.9, 1], (0, 0.5)),
                       (np.float32([0.5, 1.0]), [2, 0], np.array([0.9, 0.8]), None)):
        assert _core.sample_call(x, -1, t, k, p, m, np.random.default_rng(2), 0) is not None
    assert gen.bit_generator.random_raw() == np.random.default_rng(1).bit_generator.random_raw()  # not advanced


@pytest.mark.parametrize("threads", [1, 2])
def test_one_call_threads_and_chunks(isa, small_chunks, threads):
    small_chunks(threads)
    x = np.random.default_rng(8).normal(0, 1, (5, 1000)).astype(np.float32)
    for params in SETTINGS[:9]:
        tok, lp = ssm.sample(x, rng=2, logprobs="processed", **params)
        tok2, lp2 = ssm.sample(x, rng=2, logprobs="processed", **general(params))
        np.testing.assert_array_equal(tok, tok2)
        np.testing.assert_array_equal(lp, lp2)
