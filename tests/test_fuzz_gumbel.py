"""Property-based tests (hypothesis) of the Gumbel samplers: any dtype,
shape, layout, axis, temperature and kernel set (strategies.py draws them).

Checked: shape and dtype, valid draws (never a masked logit, never twice in
a top-k), bit-identical results on every kernel set and layout, greedy
temperature 0, top-k prefixes and gumbel_argmax as its first draw, the first
bad row named in the error, and `out` untouched on error.
"""

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import simdsoftmax as ssm
from strategies import (
    F16,
    GUMBEL_DTYPES,
    dtypes,
    fuzz,
    raw,
    relayout,
    result_dtype,
    shapes,
    values,
    work_dtype,
)


@st.composite
def gumbel_cases(draw):
    dtype = draw(dtypes(GUMBEL_DTYPES + [np.dtype(np.longdouble), np.dtype(np.complex128)]))
    shape = draw(shapes(min_dims=0))
    x = draw(values(dtype, shape))
    view, owner = relayout(draw, x)
    axis = draw(st.integers(-len(shape), len(shape) - 1)) if shape else draw(st.sampled_from([0, -1]))
    temperature = draw(st.sampled_from([1.0, 1.0, 0.5, 3.0, 1e-3, 0.0]))
    seed = draw(st.integers(0, 2**63))
    isas = ssm.available_isas()
    return x, view, owner, axis, temperature, seed, draw(st.sampled_from(isas))


def row_view(x, axis):
    """Rows of x (work dtype) along `axis`, batch positions in C order."""
    moved = np.moveaxis(x, axis, -1)
    return moved.reshape(int(np.prod(moved.shape[:-1])), moved.shape[-1]), moved.shape[:-1]


def first_bad_row(xw, axis, k):
    """(batch index, reason) of the first row a Gumbel sampler must reject, or None."""
    rows, batch = row_view(xw, axis)
    for r, row in enumerate(rows):
        if np.isnan(row).any():
            reason = "contains NaN"
        elif np.isposinf(row).any():
            reason = "contains +inf"
        elif np.isfinite(row).sum() < k:
            reason = "finite logit"
        else:
            continue
        return (tuple(int(i) for i in np.unravel_index(r, batch)) if batch else None), reason
    return None


def gumbel_rejects(x, view, axis):
    """The error a Gumbel call must raise for the input alone, or None."""
    if x.ndim == 0:
        return ValueError
    if x.dtype.kind not in "biuf" or np.dtype(x.dtype.type) == np.longdouble:
        return TypeError
    return None


def expect_bad_row(excinfo, bad):
    where, reason = bad
    message = str(excinfo.value)
    assert message.startswith("logits:"), message
    assert reason in message, message
    if where is not None:
        assert f"row {where}" in message, message


@fuzz("gumbel_argmax")
@given(gumbel_cases())
def test_gumbel_argmax(case):
    x, view, owner, axis, temperature, seed, isa = case
    note(f"isa={isa} dtype={view.dtype} shape={view.shape} axis={axis} T={temperature}")
    owner_before = owner.copy()
    error = gumbel_rejects(x, view, axis)
    if error is not None:
        with pytest.raises(error, match="logits"):
            ssm.gumbel_argmax(view, axis=axis, temperature=temperature, rng=seed)
        return
    xw = x.astype(work_dtype(x.dtype))
    bad = first_bad_row(xw, axis, 1)
    with ssm.use_isa(isa):
        if bad is not None:
            with pytest.raises(ValueError) as excinfo:
                ssm.gumbel_argmax(view, axis=axis, temperature=temperature, rng=seed)
            expect_bad_row(excinfo, bad)
            return
        got = np.asarray(ssm.gumbel_argmax(view, axis=axis, temperature=temperature, rng=seed))
    np.testing.assert_array_equal(raw(owner), raw(owner_before))
    rows, batch = row_view(xw, axis)
    assert got.dtype == np.intp and got.shape == batch
    idx = got.reshape(-1)
    assert np.all((idx >= 0) & (idx < max(rows.shape[1], 1)))
    if rows.size:
        assert np.all(np.isfinite(rows[np.arange(len(idx)), idx])), "drew a masked logit"
    if temperature == 0 and rows.size:
        np.testing.assert_array_equal(idx, np.argmax(rows, axis=1))
    # the same draw on the scalar kernels, from a C-contiguous native copy
    with ssm.use_isa("scalar"):
        again = ssm.gumbel_argmax(np.ascontiguousarray(xw), axis=axis, temperature=temperature, rng=seed)
    np.testing.assert_array_equal(got, again)


@fuzz("gumbel_topk")
@given(gumbel_cases(), st.integers(0, 6))
def test_gumbel_topk(case, k):
    x, view, owner, axis, temperature, seed, isa = case
    note(f"isa={isa} dtype={view.dtype} shape={view.shape} axis={axis} T={temperature} k={k}")
    error = gumbel_rejects(x, view, axis)
    if error is not None:
        with pytest.raises(error, match="logits"):
            ssm.gumbel_topk(view, k, axis=axis, temperature=temperature, rng=seed)
        return
    xw = x.astype(work_dtype(x.dtype))
    rows, batch = row_view(xw, axis)
    bad = first_bad_row(xw, axis, k) if k else None
    if k and rows.shape[1] == 0 and rows.shape[0]:
        bad = bad or ((0,) * len(batch) if batch else None, "finite logit")
    with ssm.use_isa(isa):
        if bad is not None:
            with pytest.raises(ValueError) as excinfo:
                ssm.gumbel_topk(view, k, axis=axis, temperature=temperature, rng=seed)
            expect_bad_row(excinfo, bad)
            return
        got = ssm.gumbel_topk(view, k, axis=axis, temperature=temperature, rng=seed)
    assert got.dtype == np.intp and got.shape == batch + (k,)
    flat = got.reshape(rows.shape[0], k)
    for r, drawn in enumerate(flat):
        assert len(set(drawn.tolist())) == k, "drew an index twice"
        assert np.all(np.isfinite(rows[r, drawn])), "drew a masked logit"
    if temperature == 0 and k and rows.size:
        np.testing.assert_array_equal(flat, np.argsort(-rows, axis=1, kind="stable")[:, :k])
    if k:
        # top-k is ordered by perturbed score: its first draw is gumbel_argmax's, and a
        # smaller k is a prefix (same rng)
        first = ssm.gumbel_argmax(np.ascontiguousarray(xw), axis=axis, temperature=temperature, rng=seed)
        np.testing.assert_array_equal(flat[:, 0], np.asarray(first).reshape(-1))
        with ssm.use_isa("scalar"):
            prefix = ssm.gumbel_topk(np.ascontiguousarray(xw), k - 1, axis=axis, temperature=temperature, rng=seed)
        np.testing.assert_array_equal(flat[:, : k - 1], prefix.reshape(rows.shape[0], k - 1))


@fuzz("gumbel_softmax")
@given(gumbel_cases(), st.booleans(), st.sampled_from(["none", "new", "inplace"]), st.data())
def test_gumbel_softmax(case, hard, out_mode, data):
    x, view, owner, axis, tau, seed, isa = case
    note(f"isa={isa} dtype={view.dtype} shape={view.shape} axis={axis} tau={tau} hard={hard} out={out_mode}")
    error = gumbel_rejects(x, view, axis)
    if error is not None:
        with pytest.raises(error, match="logits"):
            ssm.gumbel_softmax(view, axis=axis, tau=tau, hard=hard, rng=seed)
        return
    res = result_dtype(x.dtype)
    xw = x.astype(work_dtype(x.dtype))
    out = None
    if out_mode == "inplace" and view.dtype == res and view.flags.writeable:
        out = view
    elif out_mode != "none":
        out, _ = relayout(data.draw, np.full(x.shape, -7, res), may_be_readonly=False)
    out_before = None if out is None else out.copy()
    owner_before = owner.copy()
    rows, batch = row_view(xw, axis)
    bad = first_bad_row(xw, axis, 1)
    if rows.shape[0] and rows.shape[1] == 0:
        bad = bad or ((0,) * len(batch) if batch else None, "finite logit")
    with ssm.use_isa(isa):
        if bad is not None:
            with pytest.raises(ValueError) as excinfo:
                ssm.gumbel_softmax(view, axis=axis, tau=tau, hard=hard, rng=seed, out=out)
            expect_bad_row(excinfo, bad)
            if out is not None:  # untouched on error
                np.testing.assert_array_equal(raw(out), raw(out_before))
            np.testing.assert_array_equal(raw(owner), raw(owner_before))
            return
        got = ssm.gumbel_softmax(view, axis=axis, tau=tau, hard=hard, rng=seed, out=out)
    if out is not None:
        assert got is out
    else:
        np.testing.assert_array_equal(raw(owner), raw(owner_before))
    assert got.dtype.newbyteorder("=") == res and got.shape == x.shape
    y, _ = row_view(np.asarray(got, dtype=np.float64), axis)
    if y.size == 0:
        return
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=2e-3 if res == F16 else 1e-5)
    assert np.all(y[~np.isfinite(rows)] == 0), "a masked logit got probability"
    assert np.all(y >= 0)
    draw = np.asarray(ssm.gumbel_argmax(np.ascontiguousarray(xw), axis=axis, temperature=1.0, rng=seed))
    draw = draw.reshape(-1)
    if hard or tau == 0:
        one_hot = np.zeros_like(y)
        one_hot[np.arange(len(draw)), draw] = 1
        np.testing.assert_array_equal(y, one_hot)
    else:
        # The relaxed sample concentrates on the same draw: where its largest entry
        # stands clear of the others (rounding of (x + g)/tau can swap near-ties,
        # amplified by a small tau), that entry is the draw.
        top2 = np.sort(y, axis=1)[:, -2:] if y.shape[1] > 1 else np.concatenate([np.zeros_like(y), y], axis=1)
        clear = top2[:, 0] <= 0.9 * top2[:, 1]
        np.testing.assert_array_equal(np.argmax(y, axis=1)[clear], draw[clear])
        with ssm.use_isa("scalar"):
            again = ssm.gumbel_softmax(np.ascontiguousarray(xw), axis=axis, tau=tau, rng=seed)
        np.testing.assert_array_equal(np.asarray(got), again.astype(res))
