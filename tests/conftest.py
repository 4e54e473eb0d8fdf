import os
import zlib

import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core


# SIMDSOFTMAX_TEST_ISAS="a,b" narrows the fixture below to those of the
# runnable sets (an emulated Haswell runs only avx2: its scalar set is the
# emulated Nehalem's, and both are the native run's).
_ISAS = [name for name in ssm.available_isas()
         if name in os.environ.get("SIMDSOFTMAX_TEST_ISAS", name).split(",")]


@pytest.fixture(params=_ISAS, ids=lambda name: f"isa={name}")
def isa(request):
    """Run the test on one kernel set; parametrized over every set this machine can run.

    The set is made active process-wide (the setter, not a `with` block), so
    Python threads the test starts and the kernels' own pool run on it too.
    """
    before = ssm.isa()
    ssm.use_isa(request.param)
    try:
        assert ssm.isa() == request.param and _core.get_isa() == request.param
        yield request.param
    finally:
        _core.set_isa(before)


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    """The two dtypes the kernels compute in (a numpy.dtype)."""
    return np.dtype(request.param)


@pytest.fixture
def restore_settings():
    """Put back the chunking, thresholds, store policy and thread count a test changes."""
    before = _core.runtime_settings()
    threads = ssm.get_num_threads()
    yield
    _core.testing.set_chunking(before["chunk_elements"], before["chunked_row"])
    _core.testing.set_parallel_min(before["parallel_min"])
    _core.testing.set_store_policy(before["store_policy"])
    ssm.set_num_threads(threads)


@pytest.fixture
def small_chunks(restore_settings):
    """Rows above 100 elements are split into chunks of 37; every call may use
    threads (the defaults chunk only long rows and thread only large calls).
    Returns ssm.set_num_threads for the test to pick a thread count."""
    _core.testing.set_chunking(37, 100)
    _core.testing.set_parallel_min(0)
    return ssm.set_num_threads


def pytest_collection_modifyitems(config, items):
    """SIMDSOFTMAX_TEST_SHARD=i/N keeps the collected tests whose id hashes
    to i modulo N (0 <= i < N), so N processes together run the suite once:
    the sanitizer and emulated runs spread one suite over the machine's
    cores. A hash rather than every N-th test: parametrizations alternate
    (float32, float64, ...), so taking every other test sent all the slower
    float64 cases to one shard."""
    shard = os.environ.get("SIMDSOFTMAX_TEST_SHARD")
    if not shard:
        return
    index, count = (int(part) for part in shard.split("/"))
    if not 0 <= index < count:
        raise pytest.UsageError(f"SIMDSOFTMAX_TEST_SHARD={shard!r}: need i/N with 0 <= i < N")
    mine = [zlib.crc32(item.nodeid.encode()) % count == index for item in items]
    keep = [item for item, m in zip(items, mine) if m]
    config.hook.pytest_deselected(items=[item for item, m in zip(items, mine) if not m])
    items[:] = keep
