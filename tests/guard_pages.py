"""Arrays that border an inaccessible page.

`guarded(shape, dtype, at_end=True)` gives a C-contiguous array whose data
ends exactly where a PROT_NONE page begins (at_end=False: starts right after
one), so a kernel that touches a single byte outside the array faults
deterministically instead of only when the allocator happened to place the
array at the end of a mapping. Real CPUs never fault on the masked-off lanes
of a masked load; qemu's emulation of VMASKMOV (7.2) does, so under the
emulated-CPU runs these arrays also catch masked loads over a row's end.
"""

import ctypes
import mmap
import sys

import numpy as np
import pytest

PAGE = mmap.PAGESIZE


def _protect_none(address, length):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    if libc.mprotect(address, length, 0) != 0:
        raise OSError(ctypes.get_errno(), "mprotect")


def guarded(shape, dtype, at_end=True):
    """A zero-filled array of `shape` whose first or last byte borders a PROT_NONE page."""
    if sys.platform == "win32":
        pytest.skip("guard pages need mprotect")
    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    nbytes = count * dtype.itemsize
    pages = max(1, (nbytes + PAGE - 1) // PAGE)
    buf = mmap.mmap(-1, (pages + 2) * PAGE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    _protect_none(base, PAGE)
    _protect_none(base + (pages + 1) * PAGE, PAGE)
    offset = (pages + 1) * PAGE - nbytes if at_end else PAGE
    # frombuffer keeps `buf` (the mapping) alive as long as the array
    return np.frombuffer(buf, dtype=dtype, count=count, offset=offset).reshape(shape)
