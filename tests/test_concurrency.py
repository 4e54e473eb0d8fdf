"""Many Python threads at once (the GIL is released while kernels run).

Semantics under test (README, "Threads and kernel sets"):
* calls from any number of threads give exactly the results of serial calls;
* the active kernel set and the thread count are process-wide: `use_isa` and
  `set_num_threads` in one thread apply to calls that start afterwards in
  every thread, and a call already running finishes on the kernel set (and
  thread count) it started with, so each result is entirely that of one
  configuration, never a mixture.
"""

import threading

import numpy as np
import pytest

import simdsoftmax as ssm
from reference import ALGORITHMS

N_THREADS = 8
ROUNDS = 10


def make_inputs(seed):
    rng = np.random.default_rng(seed)
    x32 = (rng.standard_normal((48, 301)) * 6).astype(np.float32)
    x32[::5, ::7] = -np.inf  # masked logits
    x64 = rng.standard_normal((7, 2049)) * 30
    x64[3, 5] = np.nan  # a special row, filled by the Python layer
    b = rng.uniform(-1, 2, x64.shape)
    return x32, x64, b


def every_function(x32, x64, b, seed):
    """One call of every public function (each algorithm), as a list of results."""
    out = [ssm.softmax(x32, axis=1, algorithm=a) for a in ALGORITHMS]
    out.append(ssm.softmax(x64, axis=0))
    out.append(ssm.log_softmax(x32, axis=-1))
    out.append(ssm.log_softmax(x64.T, axis=None))
    out.append(ssm.logsumexp(x32, axis=1))
    out.extend(ssm.logsumexp(x64, axis=1, b=b, return_sign=True))
    buf = x32.copy()
    out.append(ssm.softmax(buf, axis=1, out=buf))  # in place
    buf = np.asfortranarray(x64)
    out.append(ssm.log_softmax(buf, axis=1, out=buf))  # in place, through a temporary
    finite = np.nan_to_num(x64, nan=0.0)
    out.append(ssm.gumbel_argmax(x32, rng=seed))
    out.append(ssm.gumbel_topk(finite, 5, axis=0, temperature=0.7, rng=seed))
    out.append(ssm.gumbel_softmax(x32, tau=0.5, rng=seed))
    return out


def assert_identical(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        g, e = np.asarray(g), np.asarray(e)
        assert g.dtype == e.dtype and g.shape == e.shape
        # bit for bit (NaN payloads included)
        assert g.tobytes() == e.tobytes()


def run_threads(target, n):
    errors = []

    def guarded(i):
        try:
            target(i)
        except BaseException as error:  # reported in the main thread
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]


def test_threads_give_the_serial_results(isa):
    shared = make_inputs(1000)
    own = [make_inputs(i) for i in range(N_THREADS)]
    serial_shared = every_function(*shared, seed=7)
    serial_own = [every_function(*own[i], seed=i) for i in range(N_THREADS)]
    shared_before = [a.copy() for a in shared]
    barrier = threading.Barrier(N_THREADS)

    def work(i):
        barrier.wait()  # start together
        for r in range(ROUNDS):
            if (i + r) % 2:
                assert_identical(every_function(*shared, seed=7), serial_shared)
            else:
                assert_identical(every_function(*own[i], seed=i), serial_own[i])

    run_threads(work, N_THREADS)
    for a, before in zip(shared, shared_before):
        np.testing.assert_array_equal(a, before)  # a shared input is read only


def test_thread_pool_map_gives_the_serial_results(isa):
    """A ThreadPoolExecutor over independent float32 inputs, every kernel set."""
    from concurrent.futures import ThreadPoolExecutor

    inputs = [(np.random.default_rng(i).standard_normal((64, 257)) * 3).astype(np.float32) for i in range(8)]
    serial = [ssm.softmax(x, axis=1) for x in inputs]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda x: ssm.softmax(x, axis=1), inputs))
    for a, b in zip(threaded, serial):
        np.testing.assert_array_equal(a, b)



@pytest.fixture
def restore_runtime():
    isa, threads = ssm.isa(), ssm.get_num_threads()
    yield
    ssm.use_isa(isa)
    ssm.set_num_threads(threads)


def test_switching_isa_and_threads_while_calls_run(restore_runtime):
    """One thread flips the kernel set and the thread count as fast as it can
    while others compute: every result must be exactly the serial result of
    one (kernel set, thread count) configuration."""
    inputs = make_inputs(5)
    configs = [(name, n) for name in ssm.available_isas() for n in (1, 2)]
    expected = {}
    for name, n in configs:
        with ssm.use_isa(name):
            ssm.set_num_threads(n)
            expected[name, n] = every_function(*inputs, seed=3)
    stop = threading.Event()
    seen = set()

    def switcher():
        k = 0
        while not stop.is_set():
            name, n = configs[k % len(configs)]
            ssm.use_isa(name)  # process-wide setter
            ssm.set_num_threads(n)
            k += 1

    def worker(i):
        for _ in range(ROUNDS):
            got = every_function(*inputs, seed=3)
            # each result on its own: a call finishes on the set it started with
            for j, value in enumerate(got):
                matches = [c for c in configs if np.asarray(value).tobytes() == np.asarray(expected[c][j]).tobytes()]
                assert matches, f"result {j} is no configuration's serial result"
                seen.update(matches)

    flipper = threading.Thread(target=switcher)
    flipper.start()
    try:
        run_threads(worker, N_THREADS - 1)
    finally:
        stop.set()
        flipper.join()
    assert seen


def test_use_isa_is_process_wide(restore_runtime):
    """A switch made in one thread is seen by calls started later in another."""
    target = ssm.available_isas()[-1]  # "scalar"
    seen = []
    switched = threading.Event()

    def other():
        switched.wait(60)
        seen.append(ssm.isa())

    t = threading.Thread(target=other)
    t.start()
    ssm.use_isa(target)
    switched.set()
    t.join()
    assert seen == [target]
