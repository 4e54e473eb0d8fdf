"""More than 2^31 elements: 64-bit indexing from the Python layer down to the
kernels (a 32-bit index would wrap at element 2^31 and leave the end of the
array unread or unwritten).

One float32 buffer of N = (2^19 + 2) * 4096 = 2^31 + 8192 elements (8.6 GB),
zeros except three logits placed before and after element 2^31, is viewed
both as one row of N elements and as 2^19 + 2 rows of 4096 (the last two
start at and beyond element 2^31). Every result is known in closed form, and every
element is checked cheaply: unwritten zeros or misplaced rows would show in
the min, the max or the special positions. About 15 passes over the buffer.

Runs when the machine has the memory (SIMDSOFTMAX_TEST_HUGE=0 skips it, =1
insists); in-place softmax keeps the peak at one buffer.
"""

import os

import numpy as np
import pytest

import simdsoftmax as ssm

ROWS, COLS = 2**19 + 2, 4096  # the last two rows start at and beyond element 2^31
N = ROWS * COLS
assert N > 2**31
NEED_BYTES = N * 4 + (2 << 30)  # the buffer, plus room for the rest of the process
# (flat index, logit): one in the first row, one just past 2^31, the last element
# (three different rows)
SPECIALS = [(7, 10.0), (2**31 + 5, 20.0), (N - 1, 30.0)]
F32_ULP = 2.0**-23


def available_memory():
    """Bytes of memory available to a new allocation, or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def huge_skip_reason():
    mode = os.environ.get("SIMDSOFTMAX_TEST_HUGE", "auto")
    if mode == "0":
        return "SIMDSOFTMAX_TEST_HUGE=0"
    if mode == "1":
        return None
    avail = available_memory()
    if avail is None:
        return "cannot tell how much memory is available (SIMDSOFTMAX_TEST_HUGE=1 runs it anyway)"
    if avail < NEED_BYTES:
        return f"needs {NEED_BYTES / 2**30:.1f} GiB of available memory, {avail / 2**30:.1f} GiB here"
    return None


pytestmark = pytest.mark.skipif(huge_skip_reason() is not None, reason=huge_skip_reason() or "")


@pytest.fixture(scope="module")
def buffer():
    x = np.zeros(N, np.float32)
    yield x
    del x


def reset(x):
    x.fill(0)
    for i, v in SPECIALS:
        x[i] = v


def within(actual, exact, ulps):
    return abs(float(actual) - exact) <= ulps * F32_ULP * abs(exact)


def test_logsumexp_one_row_of_more_than_2_31(buffer):
    reset(buffer)
    got = ssm.logsumexp(buffer)
    exact = float(np.log(np.longdouble(N - 3) + sum(np.exp(np.longdouble(v)) for _, v in SPECIALS)))
    # float32 logsumexp: within 1 ulp of the rounded exact result
    assert abs(float(got) - float(np.float32(exact))) <= np.spacing(np.float32(exact))


def test_logsumexp_rows_beyond_2_31(buffer):
    reset(buffer)
    got = ssm.logsumexp(buffer.reshape(ROWS, COLS), axis=1)
    assert got.shape == (ROWS,) and got.dtype == np.float32
    plain = float(np.float32(np.log(COLS)))
    special_rows = {i // COLS: v for i, v in SPECIALS}
    for r, v in special_rows.items():
        exact = np.log(np.longdouble(COLS - 1) + np.exp(np.longdouble(v)))
        assert within(got[r], float(exact), 1), (r, got[r], exact)
    mask = np.ones(ROWS, bool)
    mask[list(special_rows)] = False
    assert np.all(got[mask] == plain)


def test_softmax_rows_beyond_2_31_in_place(buffer):
    reset(buffer)
    x2 = buffer.reshape(ROWS, COLS)
    y = ssm.softmax(x2, axis=1, out=x2)
    assert y is x2
    # every element of an ordinary row is exactly 2^-12; special rows are smaller
    # except at their logit, and no element stayed 0 (unwritten)
    for i, v in SPECIALS:
        r, c = divmod(i, COLS)
        z = np.longdouble(COLS - 1) + np.exp(np.longdouble(v))
        assert within(y[r, c], float(np.exp(np.longdouble(v)) / z), 4)
        other = (c + 1) % COLS
        assert within(y[r, other], float(1 / z), 4)
        x2[r] = 2.0**-12  # so that min and max below see only ordinary rows
    assert buffer.min() == 2.0**-12 and buffer.max() == 2.0**-12


def test_softmax_one_row_of_more_than_2_31_in_place(buffer):
    reset(buffer)
    y = ssm.softmax(buffer, out=buffer)
    assert y is buffer
    z = np.longdouble(N - 3) + sum(np.exp(np.longdouble(v)) for _, v in SPECIALS)
    common = float(1 / z)
    for i, v in SPECIALS:
        assert within(y[i], float(np.exp(np.longdouble(v)) / z), 4), (i, y[i])
    for i in (0, 2**31 - 1, 2**31, 2**31 + 6, N - 2):
        assert within(y[i], common, 4), (i, y[i])
    for i, _ in SPECIALS:
        y[i] = common
    # every other element: 1/z (a 0 would be an unwritten element)
    assert within(y.min(), common, 4) and within(y.max(), common, 4)
