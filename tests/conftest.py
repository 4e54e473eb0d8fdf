import numpy as np
import pytest

import simdsoftmax as ssm


@pytest.fixture(params=ssm.available_isas(), ids=lambda name: f"isa={name}")
def isa(request):
    """Run the test on one kernel set; parametrized over every set this machine can run.

    Process-wide (`use_isa` as a setter), so that threads the test starts
    (Python threads, Dask workers) run on it too; a `with` block would only
    cover the test's own thread.
    """
    before = ssm.isa()
    ssm.use_isa(request.param)
    assert ssm.isa() == request.param
    yield request.param
    ssm.use_isa(before)


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    """The two dtypes the kernels compute in."""
    return np.dtype(request.param)
