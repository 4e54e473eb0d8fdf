"""sample(): the kept sets and draws against a float64 reference of the
semantics built by sorting, the exact "gumbel_argmax over the kept set"
property, the distribution (chi-square), log-probabilities, per-row
parameters and seeds, errors, and bit-identity across kernel sets, thread
counts and chunkings."""

import re

import numpy as np
import pytest
from scipy import stats

import simdsoftmax as ssm
from simdsoftmax import _core, _sample

_hooks = getattr(_core, "testing", None)


def set_chunking(chunk_elements, chunked_row):
    (_hooks.set_chunking if _hooks else _core._set_chunking)(chunk_elements, chunked_row)


def set_parallel_min(elements):
    (_hooks.set_parallel_min if _hooks else _core._set_parallel_min)(elements)

P_FAIL = 1e-6


def ref_kept(x, temperature=1.0, top_k=None, top_p=None, min_p=None):
    """The kept set of one row in float64, by sorting (the specification)."""
    x = np.asarray(x, np.float64)
    n = x.size
    kept = x > -np.inf
    if temperature == 0:
        out = np.zeros(n, bool)
        out[np.argmax(x)] = True
        return out
    if top_k:
        kth = np.sort(x)[::-1][min(top_k, n) - 1]
        kept &= x >= kth
    z = x / temperature
    w = np.exp(z - z.max())
    if top_p is not None and top_p < 1:
        idx = np.flatnonzero(kept)
        q = w[idx] / w[idx].sum()
        order = np.argsort(-z[idx], kind="stable")
        zs, qs = z[idx][order], q[order]
        csum = np.cumsum(qs)
        first = np.searchsorted(-zs, -zs, side="left")  # first position of each value
        above = np.where(first > 0, csum[np.maximum(first - 1, 0)], 0.0)  # mass strictly above
        keep = np.zeros(n, bool)
        keep[idx[order]] = above < top_p
        kept &= keep
    if min_p is not None and min_p > 0:
        p = w / w.sum()
        kept &= p >= min_p * p.max()
    return kept


def ref_kept_rows(x2, **params):
    """Per-row reference; params may be per-row arrays."""
    rows = x2.shape[0]
    out = np.zeros(x2.shape, bool)
    for r in range(rows):
        kw = {}
        for name, v in params.items():
            v = np.broadcast_to(np.asarray(v, dtype=object), (rows,))[r]
            kw[name] = None if v is None else float(v) if name != "top_k" else int(v)
        out[r] = ref_kept(x2[r], **kw)
    return out


def masked(x, kept):
    return np.where(kept, x, np.array(-np.inf, x.dtype)).astype(x.dtype)


def make_rows(kind, rows, n, dtype, seed):
    g = np.random.default_rng(seed)
    if kind == "normal":
        x = g.normal(0, 1, (rows, n))
    elif kind == "wide":
        x = g.normal(0, 3, (rows, n))
    elif kind == "ties":
        x = np.round(g.normal(0, 1.5, (rows, n)))  # few distinct values
    elif kind == "flat":
        x = np.zeros((rows, n))
    elif kind == "peaked":
        x = g.normal(0, 1, (rows, n))
        x[np.arange(rows), g.integers(0, n, rows)] += 12
    elif kind == "masked":
        x = g.normal(0, 1, (rows, n))
        x[g.random((rows, n)) < 0.4] = -np.inf
        x[np.arange(rows), g.integers(0, n, rows)] = g.normal(0, 1, rows)  # one finite per row at least
    return x.astype(dtype)


SETTINGS = [
    dict(),
    dict(top_k=1),
    dict(top_k=3),
    dict(top_k=50),
    dict(top_p=0.37),
    dict(top_p=0.9),
    dict(top_p=0.999),
    dict(min_p=0.05),
    dict(min_p=0.3),
    dict(min_p=1.0),
    dict(top_k=5, top_p=0.6),
    dict(top_k=40, top_p=0.9, min_p=0.05),
    dict(top_p=0.8, min_p=0.2),
    dict(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05),
    dict(temperature=2.5, top_p=0.5),
    dict(temperature=0.3, min_p=0.1),
    dict(temperature=0, top_k=3, top_p=0.5),
]
SIZES = [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65, 100, 257]


def check_property(x2, rng_seed, **params):
    """sample == gumbel_argmax over the reference kept set, same rng."""
    kept = ref_kept_rows(x2, **params)
    t = params.get("temperature", 1.0)
    got = ssm.sample(x2, rng=rng_seed, **params)
    want = ssm.gumbel_argmax(masked(x2, kept), temperature=t, rng=rng_seed)
    np.testing.assert_array_equal(got, want, err_msg=f"{params}")
    assert kept[np.arange(x2.shape[0]), got].all()


@pytest.mark.parametrize("params", SETTINGS, ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()) or "none")
@pytest.mark.parametrize("kind", ["normal", "ties", "flat", "peaked", "masked"])
def test_equals_gumbel_argmax_over_the_kept_set(isa, dtype, params, kind):
    for n in SIZES:
        x2 = make_rows(kind, 6, n, dtype, seed=n)
        for seed in range(3):
            check_property(x2, seed, **params)


@pytest.mark.parametrize("params", [dict(top_p=0.9), dict(top_p=0.95, temperature=0.7), dict(min_p=0.05),
                                    dict(top_k=50, top_p=0.9, min_p=0.05, temperature=0.7), dict(top_p=0.3),
                                    dict(top_p=0.999, temperature=3.0)])
@pytest.mark.parametrize("kind", ["normal", "wide", "ties"])
def test_long_rows_equal_gumbel_argmax_over_the_kept_set(isa, dtype, params, kind):
    # long enough for the histogram rounds (more than 2048 values)
    for n in (3000, 40000):
        x2 = make_rows(kind, 2, n, dtype, seed=n + 1)
        check_property(x2, 11, **params)


def test_no_filter_is_gumbel_argmax(isa, dtype):
    g = np.random.default_rng(0)
    for shape in [(5,), (3, 100), (2, 3, 70), (4, 5000)]:
        x = g.normal(size=shape).astype(dtype)
        for t in (1.0, 0.5, 3.0):
            for seed in (0, 1, 2):
                np.testing.assert_array_equal(
                    ssm.sample(x, temperature=t, rng=seed), ssm.gumbel_argmax(x, temperature=t, rng=seed)
                )
                # disabled filters are the same as no filter
                np.testing.assert_array_equal(
                    ssm.sample(x, temperature=t, top_k=0, top_p=1.0, min_p=0.0, rng=seed),
                    ssm.gumbel_argmax(x, temperature=t, rng=seed),
                )


def test_generator_advances_like_gumbel_argmax():
    x = np.random.default_rng(1).normal(size=(3, 50))
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    for _ in range(3):
        np.testing.assert_array_equal(ssm.sample(x, top_k=10, rng=a), ssm.gumbel_argmax(masked(x, ref_kept_rows(x, top_k=10)), rng=b))


def test_per_row_parameters(isa, dtype):
    g = np.random.default_rng(3)
    x2 = g.normal(0, 2, (6, 300)).astype(dtype)
    t = np.array([1.0, 0.7, 0.0, 2.0, 0.5, 1.3])
    k = np.array([0, 50, 3, 1, 300, 20])
    p = np.array([1.0, 0.9, 0.5, 0.2, 0.95, 0.7])
    m = np.array([0.0, 0.05, 0.0, 0.5, 0.01, 0.1])
    got = ssm.sample(x2, temperature=t, top_k=k, top_p=p, min_p=m, rng=4)
    kept = ref_kept_rows(x2, temperature=t, top_k=k, top_p=p, min_p=m)
    for r in range(6):
        assert kept[r, got[r]]
    # rows with t > 0: the draw is gumbel_argmax's over the kept set (row noise by row index)
    for r in np.flatnonzero(t > 0):
        assert got[r] == ssm.gumbel_argmax(masked(x2, kept), temperature=t[r], rng=4)[r]
    # None entries disable a filter for that row
    got2 = ssm.sample(x2[:2], top_p=[None, 0.9], top_k=[None, 50], rng=4)
    kept2 = ref_kept_rows(x2[:2], top_p=[1.0, 0.9], top_k=[0, 50])
    np.testing.assert_array_equal(got2, ssm.gumbel_argmax(masked(x2[:2], kept2), rng=4))
    # broadcasting over a 2-D batch
    x3 = g.normal(size=(2, 3, 40)).astype(dtype)
    pp = np.array([0.5, 0.9, 1.0])
    got3 = ssm.sample(x3, top_p=pp, rng=9)
    kept3 = ref_kept_rows(x3.reshape(6, 40), top_p=np.tile(pp, 2)).reshape(x3.shape)
    np.testing.assert_array_equal(got3, ssm.gumbel_argmax(masked(x3, kept3), rng=9))


def chi2_ok(counts, probs):
    counts = np.asarray(counts, np.float64)
    expected = probs * counts.sum()
    keep = expected > 0
    assert np.all(counts[~keep] == 0), "a filtered token was drawn"
    if keep.sum() < 2:
        return True
    stat = np.sum((counts[keep] - expected[keep]) ** 2 / expected[keep])
    return stat < stats.chi2.isf(P_FAIL, keep.sum() - 1)


@pytest.mark.parametrize(
    "params",
    [dict(temperature=0.8, top_k=4), dict(top_p=0.8), dict(min_p=0.1, temperature=1.5),
     dict(temperature=0.7, top_k=5, top_p=0.9, min_p=0.05)],
)
def test_draws_are_categorical_over_the_kept_set(isa, params):
    logits = np.log(np.array([0.3, 0.2, 0.15, 0.12, 0.1, 0.08, 0.05]))
    draws = 100_000
    x = np.tile(logits.astype(np.float32), (draws, 1))
    got = ssm.sample(x, rng=2024, **params)
    kept = ref_kept(logits, **params)
    z = logits / params.get("temperature", 1.0)
    q = np.where(kept, np.exp(z - z.max()), 0.0)
    q /= q.sum()
    assert chi2_ok(np.bincount(got, minlength=logits.size), q)


@pytest.mark.parametrize("params", [dict(), dict(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05),
                                    dict(top_p=0.95, temperature=0.7), dict(min_p=0.1), dict(temperature=0)])
def test_logprobs_against_float64(isa, dtype, params):
    g = np.random.default_rng(8)
    x2 = g.normal(0, 2, (5, 3000)).astype(dtype)
    tok_raw, raw = ssm.sample(x2, rng=1, logprobs="raw", **params)
    tok_proc, proc = ssm.sample(x2, rng=1, logprobs="processed", **params)
    np.testing.assert_array_equal(tok_raw, tok_proc)
    np.testing.assert_array_equal(tok_raw, ssm.sample(x2, rng=1, **params))
    assert raw.dtype == dtype and proc.dtype == dtype
    x64 = x2.astype(np.float64)
    rows = np.arange(5)
    lsm = x64 - (x64.max(1, keepdims=True) + np.log(np.exp(x64 - x64.max(1, keepdims=True)).sum(1, keepdims=True)))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(raw, lsm[rows, tok_raw], rtol=tol, atol=tol)
    t = params.get("temperature", 1.0)
    kept = ref_kept_rows(x2, **params)
    if t == 0:
        np.testing.assert_array_equal(proc, 0.0)
        return
    z = np.where(kept, x64 / t, -np.inf)
    lq = z - (z.max(1, keepdims=True) + np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)))
    np.testing.assert_allclose(proc, lq[rows, tok_proc], rtol=tol, atol=tol)


def test_greedy_and_dtypes_and_axes():
    x = np.array([[1.0, 3.0, 3.0, -np.inf], [0.5, 0.5, 0.1, 0.2]])
    np.testing.assert_array_equal(ssm.sample(x, temperature=0), [1, 0])
    np.testing.assert_array_equal(ssm.sample(x, temperature=0, top_p=0.1, top_k=2, min_p=0.9), [1, 0])
    tok = ssm.sample(x[0], temperature=0)
    assert isinstance(tok, np.intp) and tok == 1
    g = np.random.default_rng(2)
    x3 = g.normal(size=(5, 4, 3))
    for axis in (0, 1, -1):
        got = ssm.sample(x3, axis=axis, top_k=2, rng=3)
        moved = np.moveaxis(x3, axis, -1)
        want = ssm.sample(np.ascontiguousarray(moved), top_k=2, rng=3)
        np.testing.assert_array_equal(got, want)
    h = g.normal(size=(3, 20)).astype(np.float16)
    tok, lp = ssm.sample(h, top_p=0.9, rng=1, logprobs="processed")
    assert lp.dtype == np.float16
    np.testing.assert_array_equal(tok, ssm.sample(h.astype(np.float32), top_p=0.9, rng=1))
    ints = np.array([[1, 5, 2], [7, 7, 0]])
    np.testing.assert_array_equal(ssm.sample(ints, temperature=0), [1, 0])
    empty = ssm.sample(np.zeros((0, 5)), rng=1)
    assert empty.shape == (0,)


def test_per_request_seeds(isa, dtype):
    g = np.random.default_rng(6)
    x2 = g.normal(0, 1, (4, 500)).astype(dtype)
    params = dict(temperature=0.8, top_k=100, top_p=0.9)
    for seeds in ([1, 2, 3, 4], [np.random.SeedSequence(s) for s in (5, 6, 7, 8)]):
        got = ssm.sample(x2, rng=seeds, **params)
        for r in range(4):
            assert got[r] == ssm.sample(x2[r], rng=seeds[r], **params)
            assert ssm.gumbel_argmax(x2, rng=seeds)[r] == ssm.gumbel_argmax(x2[r], rng=seeds[r])
            np.testing.assert_array_equal(ssm.gumbel_topk(x2, 3, rng=seeds)[r], ssm.gumbel_topk(x2[r], 3, rng=seeds[r]))
    gens = [np.random.default_rng(s) for s in (10, 11, 12, 13)]
    copies = [np.random.default_rng(s) for s in (10, 11, 12, 13)]
    got = ssm.sample(x2, rng=gens, **params)
    for r in range(4):
        assert got[r] == ssm.sample(x2[r], rng=copies[r], **params)
    # the generators were advanced: the next call differs from a fresh one somewhere
    again = [ssm.sample(x2, rng=gens, **params) for _ in range(5)]
    assert any((a != got).any() for a in again)
    # a row's draw does not depend on its neighbours
    other = x2.copy()
    other[0] = g.normal(0, 1, 500)
    np.testing.assert_array_equal(ssm.sample(other, rng=[1, 2, 3, 4], **params)[1:], ssm.sample(x2, rng=[1, 2, 3, 4], **params)[1:])
    # 2-D batch: the rng sequence may have the batch shape
    x3 = x2.reshape(2, 2, 500)
    np.testing.assert_array_equal(ssm.sample(x3, rng=[[1, 2], [3, 4]], **params), ssm.sample(x2, rng=[1, 2, 3, 4], **params).reshape(2, 2))
    with pytest.raises(ValueError, match="rng"):
        ssm.sample(x2, rng=[1, 2, 3])


def _settings(name, value):
    """sample()'s four settings at their defaults, `name` set to `value`."""
    out = dict(temperature=1.0, top_k=None, top_p=None, min_p=None)
    if name is not None:
        out[name] = value
    return out


def _assert_same(got, want):
    """Equal sample() results (tokens, or (tokens, logprobs)) of equal types."""
    assert type(got) is type(want)
    for g, w in zip(got if type(got) is tuple else (got,), want if type(want) is tuple else (want,)):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_array_equal(g, w)


def test_per_row_arrays_as_given():
    """Per-request settings as a decode loop gives them (contiguous float64 /
    int64 arrays of the batch shape, lists, Python numbers) take the
    one-step call and draw exactly what the general path draws (Fortran-order
    logits take it: its own conversion of each setting), with the Generator
    advanced alike; what the one-step call does not take leaves the rng
    untouched; out-of-range or NaN entries raise the error naming the
    parameter and the entry."""
    x = np.random.default_rng(5).normal(0, 2, (6, 40))
    t = np.array([0.7, 1.0, 0.0, 0.9, 1.3, 0.5])
    k = np.array([5, 0, 0, 40, 100, 1], np.int64)
    p = np.array([0.9, 0.95, 1.0, 1.0, 0.5, 0.8])
    m = np.array([0.05, 0.0, 0.0, 0.1, 0.2, 0.0])
    fast = _sample._row_params((6,), 40, t, k, p, m)  # the general path's shortcut for them
    assert fast is not None and np.array_equal(fast[1], np.minimum(k, 40))
    assert _sample._row_params((6,), 40, t, k.astype(np.float64), p, m) is None  # anything else: converted
    assert _sample._row_params((2, 3), 40, t, k, p, m) is None  # (6,) does not broadcast to (2, 3)
    for kw in (dict(temperature=t), dict(temperature=t, top_p=p), dict(temperature=t, top_k=k, top_p=p, min_p=m),
               dict(temperature=0.8, top_k=k, min_p=m), dict(top_p=p, logprobs="processed"),
               dict(temperature=t.astype(np.float32), top_p=tuple(p), logprobs="raw")):
        as_lists = {key: (v.tolist() if isinstance(v, np.ndarray) else v) for key, v in kw.items()}
        settings = {**_settings(None, None), **{key: v for key, v in kw.items() if key != "logprobs"}}
        assert _sample.one_step(x, -1, **settings, rng=1, logprobs=kw.get("logprobs")) is not _sample.NOT_TAKEN
        g_fast, g_general = np.random.default_rng(9), np.random.default_rng(9)
        for _ in range(2):  # the second round: both generators advanced alike
            _assert_same(ssm.sample(x, rng=g_fast, **kw), ssm.sample(np.asfortranarray(x), rng=g_general, **kw))
        _assert_same(ssm.sample(x, rng=3, **as_lists), ssm.sample(np.asfortranarray(x), rng=3, **kw))
    x3 = x.reshape(2, 3, 40)  # a batch of two axes: per-row settings of its shape, not flat
    np.testing.assert_array_equal(ssm.sample(x3, temperature=t.reshape(2, 3), top_k=k.reshape(2, 3), rng=3),
                                  ssm.sample(x, temperature=t, top_k=k, rng=3).reshape(2, 3))
    with pytest.raises(ValueError, match="temperature of shape"):
        ssm.sample(x3, temperature=t, rng=3)
    for name, bad in (("temperature", [0.7, np.nan]), ("temperature", [0.7, -1.0]), ("temperature", [0.7, np.inf]),
                      ("top_k", np.array([3, -1])), ("top_p", [0.5, 0.0]), ("top_p", [0.5, np.nan]),
                      ("top_p", [0.5, 1.5]), ("min_p", [0.1, -0.1]), ("min_p", [0.1, 1.5])):
        arr = np.array(bad, np.int64 if name == "top_k" else np.float64)
        for given in (arr, arr.tolist()):
            g = np.random.default_rng(4)
            before = g.bit_generator.state
            assert _sample.one_step(x[:2], -1, 1.0, None, None, None, g, None) is not _sample.NOT_TAKEN
            g.bit_generator.state = before
            assert _sample.one_step(x[:2], -1, **_settings(name, given), rng=g, logprobs=None) is _sample.NOT_TAKEN
            assert g.bit_generator.state == before  # nothing drawn
            with pytest.raises(ValueError, match=rf"{name} must be .* \(entry 1\)"):
                ssm.sample(x[:2], rng=0, **{name: given})


def test_per_row_rngs_in_one_step():
    """A list or tuple of per-row rngs takes the one-step call and draws what
    the general path draws (Fortran-order logits take it), each Generator
    advanced alike; a sequence it does not take (another length, nested
    entries) draws nothing there, and the general path raises its error or
    takes it (a list as one row's entropy)."""
    x = np.random.default_rng(6).normal(0, 2, (4, 50)).astype(np.float32)
    fast_gens = [np.random.default_rng(s) for s in range(4)]
    general_gens = [np.random.default_rng(s) for s in range(4)]
    assert _sample.one_step(x, -1, **_settings(None, None), rng=[1, 2, 3, 4], logprobs=None) is not _sample.NOT_TAKEN
    for kw in (dict(), dict(temperature=0.7, top_p=0.9, logprobs="raw"), dict(top_k=5, min_p=0.1)):
        for _ in range(2):  # the second round: the Generators advanced alike
            _assert_same(ssm.sample(x, rng=fast_gens, **kw), ssm.sample(np.asfortranarray(x), rng=general_gens, **kw))
        mixed = (7, np.random.SeedSequence(8), None, np.random.PCG64(9))
        want = ssm.sample(np.asfortranarray(x), rng=[7, np.random.SeedSequence(8), 5, np.random.PCG64(9)], **kw)
        got = ssm.sample(x, rng=(mixed[0], mixed[1], 5, mixed[3]), **kw)
        _assert_same(got, want)
    # gumbel_topk's one-step call takes them (row by row, as its general path's loop); gumbel_argmax's goes
    # through sample() (every key drawn first, as its general path)
    assert _core.gumbel_topk_call(x, -1, 3, False, 1.0, [1, 2, 3, 4]) is not None
    assert _core.gumbel_topk_call(x, -1, 1, True, 1.0, [1, 2, 3, 4]) is None
    for call in (lambda z, rng: ssm.gumbel_argmax(z, rng=rng), lambda z, rng: ssm.gumbel_topk(z, 3, rng=rng)):
        fast_gens = [np.random.default_rng(s) for s in range(4)]
        general_gens = [np.random.default_rng(s) for s in range(4)]
        for _ in range(2):
            np.testing.assert_array_equal(call(x, fast_gens), call(np.asfortranarray(x), general_gens))
        bad = x.copy()
        bad[2, 7] = np.nan  # the row-by-row draw stops there: rows 3+ keep their rngs untouched
        fast_gens = [np.random.default_rng(s) for s in range(4)]
        general_gens = [np.random.default_rng(s) for s in range(4)]
        with pytest.raises(ValueError) as want:
            call(np.asfortranarray(bad), general_gens)
        with pytest.raises(ValueError, match=re.escape(str(want.value))):
            call(bad, fast_gens)
        assert [g.bit_generator.state for g in fast_gens] == [g.bit_generator.state for g in general_gens]
    gens = [np.random.default_rng(s) for s in range(3)]
    before = [g.bit_generator.state for g in gens]
    for rng in (gens, gens + [[1, 2]], [[1, 2], [3, 4], [5, 6], [7, 8]]):
        assert _sample.one_step(x, -1, **_settings(None, None), rng=rng, logprobs=None) is _sample.NOT_TAKEN
    assert [g.bit_generator.state for g in gens] == before
    for rng in (gens, [[1, 2], [3, 4], [5, 6], [7, 8]]):
        with pytest.raises(ValueError, match="rng"):
            ssm.sample(x, rng=rng)


@pytest.mark.parametrize("n", [2, 8, 16, 17, 64, 128, 129, 1024, 1025])
def test_short_rows_top_k_alone(isa, dtype, n):
    """sample(top_k=k) alone on a batch of short rows (the floor from one scan
    per row, the masked block drawn at once) draws what the row-by-row path
    draws (short-row path off) and what gumbel_argmax draws with the logits
    below the k-th largest set to -inf; ties at the k-th value kept; the first
    row with a NaN or +inf named as on the row-by-row path."""
    g = np.random.default_rng(n)
    x = (np.round(g.normal(0, 2, (300, n)) * 2) / 2).astype(dtype)
    x[7, : n // 2] = -np.inf
    x[11] = 0.5
    for k in sorted({1, 2, min(n, 15), min(n, 16), min(n, 17), n - 1, n}):
        got = []
        for limit in (1 << 30, 0):
            _core.testing.set_gumbel_short_rows_max(limit)
            got.append(ssm.sample(x, temperature=0.7, top_k=k, rng=5))
        _core.testing.set_gumbel_short_rows_max(1 << 30)
        np.testing.assert_array_equal(got[0], got[1], err_msg=f"k={k}")
        kth = -np.sort(-x.astype(np.float64), axis=-1)[:, k - 1 : k]
        masked = np.where(x >= kth, x, -np.inf).astype(dtype)
        np.testing.assert_array_equal(got[0], ssm.gumbel_argmax(masked, temperature=0.7, rng=5))
    # one k per row (a block of rows of one k finds their k-th values at once)
    ks = np.where(np.arange(x.shape[0]) % 3 == 0, 1, max(1, n // 2))
    got = ssm.sample(x, temperature=0.7, top_k=ks, rng=5)
    kth = np.take_along_axis(-np.sort(-x.astype(np.float64), axis=-1), (ks - 1)[:, None], axis=-1)
    masked = np.where(x >= kth, x, -np.inf).astype(dtype)
    np.testing.assert_array_equal(got, ssm.gumbel_argmax(masked, temperature=0.7, rng=5))
    for bad_value, reason in ((np.nan, "NaN"), (np.inf, r"\+inf")):
        bad = x.copy()
        bad[40, n - 1] = bad_value
        bad[90, 0] = np.nan
        with pytest.raises(ValueError, match=rf"row \(40,\).*{reason}"):
            ssm.sample(bad, temperature=0.7, top_k=min(n - 1, 16) or 1, rng=5)


def test_errors_name_the_parameter_or_row():
    x = np.zeros((3, 10))
    for kw, name in [
        (dict(temperature=-1), "temperature"),
        (dict(temperature=np.nan), "temperature"),
        (dict(temperature=[1.0, -0.5, 1.0]), "temperature"),
        (dict(top_k=-1), "top_k"),
        (dict(top_k=2.5), "top_k"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.5), "top_p"),
        (dict(top_p=np.nan), "top_p"),
        (dict(min_p=-0.1), "min_p"),
        (dict(min_p=1.1), "min_p"),
        (dict(top_p=[0.5, 0.5]), "top_p"),
        (dict(temperature=np.ones((2, 3))), "temperature"),
    ]:
        with pytest.raises(ValueError, match=name):
            ssm.sample(x, rng=0, **kw)
    with pytest.raises(ValueError, match="logprobs"):
        ssm.sample(x, logprobs="yes")
    with pytest.raises(TypeError, match="top_k"):
        ssm.sample(x, top_k="a")
    assert ssm.sample(x, top_k=3.0, rng=0).shape == (3,)  # integral floats are integers
    for bad, reason in [(np.nan, "NaN"), (np.inf, r"\+inf"), (-np.inf, "no finite")]:
        y = np.zeros((3, 10))
        y[1, :] = -np.inf
        y[1, 4] = bad if bad != -np.inf else -np.inf
        y[2, 2] = np.nan
        for params in SETTINGS + [dict(logprobs="raw"), dict(logprobs="processed")]:
            with pytest.raises(ValueError, match=rf"row \(1,\).*{reason}"):
                ssm.sample(y, rng=0, **params)
    with pytest.raises(ValueError, match="no finite"):
        ssm.sample(np.zeros((2, 0)))


@pytest.fixture
def sample_threads():
    before = _core.runtime_settings()
    threads = ssm.get_num_threads()
    yield
    set_chunking(before["chunk_elements"], before["chunked_row"])
    set_parallel_min(before["parallel_min"])
    ssm.set_num_threads(threads)


@pytest.mark.parametrize("params", [dict(), dict(top_p=0.9), dict(top_p=0.95, temperature=0.7), dict(min_p=0.05),
                                    dict(top_k=50, top_p=0.9, min_p=0.05, temperature=0.7), dict(top_k=7),
                                    dict(temperature=0)])
def test_identical_across_isas_threads_and_chunkings(sample_threads, params):
    g = np.random.default_rng(12)
    cases = [g.normal(0, 1, (1, 20000)).astype(np.float32), g.normal(0, 3, (5, 3000)),
             np.round(g.normal(0, 1, (3, 5000))).astype(np.float32)]
    for x in cases:
        results = []
        for isa in ssm.available_isas():
            with ssm.use_isa(isa):
                for chunking, threads in [((1 << 16, 1 << 24), 1), ((1000, 2000), 1), ((997, 100), 2), ((4096, 4096), 3)]:
                    set_chunking(*chunking)
                    set_parallel_min(0)
                    ssm.set_num_threads(threads)
                    tok, lp = ssm.sample(x, rng=77, logprobs="processed", **params)
                    results.append((isa, chunking, threads, tok, lp))
        for isa, chunking, threads, tok, lp in results[1:]:
            np.testing.assert_array_equal(tok, results[0][3], err_msg=f"{isa} {chunking} {threads}")
            np.testing.assert_allclose(lp, results[0][4], rtol=1e-6, atol=1e-9)
        # and each equals gumbel_argmax over its kept set, also when chunked
        kept = ref_kept_rows(x, **params)
        t = params.get("temperature", 1.0)
        if t > 0:
            np.testing.assert_array_equal(results[-1][3], ssm.gumbel_argmax(masked(x, kept), temperature=t, rng=77))


def test_llm_row_top_p_matches_reference_kept_set():
    # a vocabulary-sized row: the histogram rounds, then the exact finish
    g = np.random.default_rng(21)
    x = g.normal(0, 1, (2, 151936)).astype(np.float32)
    for params in (dict(top_p=0.95, temperature=0.7), dict(top_p=0.5), dict(min_p=0.05, top_p=0.9)):
        kept = ref_kept_rows(x, **params)
        for seed in range(3):
            got = ssm.sample(x, rng=seed, **params)
            assert kept[np.arange(2), got].all()
            np.testing.assert_array_equal(
                got, ssm.gumbel_argmax(masked(x, kept), temperature=params.get("temperature", 1.0), rng=seed)
            )
        # the processed log-probability normalizes over exactly the kept set
        tok, lp = ssm.sample(x, rng=0, logprobs="processed", **params)
        z = np.where(kept, x.astype(np.float64) / params.get("temperature", 1.0), -np.inf)
        lq = z - (z.max(1, keepdims=True) + np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)))
        np.testing.assert_allclose(lp, lq[np.arange(2), tok], rtol=1e-5)
