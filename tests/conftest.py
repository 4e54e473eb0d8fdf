import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core


@pytest.fixture(params=ssm.available_isas(), ids=lambda name: f"isa={name}")
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
