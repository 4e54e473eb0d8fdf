"""`use_isa` and threads: as a context manager it applies to the calling thread
only (a per-thread override), as a setter to the whole process. Threads are
interleaved with barriers so that their switches, blocks and calls overlap."""

import threading

import numpy as np
import pytest

import simdsoftmax as ssm

ISAS = ssm.available_isas()
TIMEOUT = 60


@pytest.fixture
def restore_process_isa():
    before = ssm.isa()
    yield before
    ssm.use_isa(before)


def inputs():
    rng = np.random.default_rng(17)
    # 64 x 4096 float32: large enough that the kernels' thread pool joins in
    # (when there are threads), so the workers must follow the caller's set.
    return rng.standard_normal((64, 4096)).astype(np.float32) * 5


def compute(x):
    return (
        ssm.softmax(x, axis=-1),
        ssm.log_softmax(x, axis=-1),
        ssm.logsumexp(x, axis=-1),
        ssm.softmax(x, axis=0),
        ssm.gumbel_argmax(x, rng=5),
    )


def same_bits(a, b):
    return all(np.asarray(u).tobytes() == np.asarray(v).tobytes() for u, v in zip(a, b))


def references(x):
    out = {}
    for name in ISAS:
        with ssm.use_isa(name):
            out[name] = compute(x)
    return out


def run_threads(target, count):
    errors = []

    def wrapped(i):
        try:
            target(i)
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]


@pytest.mark.parametrize("rounds", [3])
def test_with_blocks_of_interleaved_threads_keep_their_own_set(restore_process_isa, rounds):
    process = restore_process_isa
    x = inputs()
    expected = references(x)
    n = 2 * len(ISAS)
    barrier = threading.Barrier(n, timeout=TIMEOUT)
    seen = [[] for _ in range(n)]

    def work(i):
        for r in range(rounds):
            mine = ISAS[(i + r) % len(ISAS)]
            barrier.wait()  # every thread calls use_isa at the same time ...
            with ssm.use_isa(mine):
                barrier.wait()  # ... and computes while the others are inside theirs
                seen[i].append(ssm.isa())
                got = compute(x)
                barrier.wait()
                assert same_bits(got, expected[mine]), f"thread {i} computed on another set than {mine}"
                seen[i].append(ssm.isa())
            barrier.wait()  # every block has exited
            assert ssm.isa() == process

    run_threads(work, n)
    for i in range(n):
        assert seen[i] == [ISAS[(i + r) % len(ISAS)] for r in range(rounds) for _ in range(2)]
    assert ssm.isa() == process


def test_the_sets_differ_so_the_bit_comparison_can_fail():
    if len(ISAS) < 2:
        pytest.skip("one kernel set on this machine")
    x = inputs()
    refs = references(x)
    assert not same_bits(refs[ISAS[0]], refs[ISAS[-1]])


def test_a_block_does_not_change_other_threads(restore_process_isa):
    process = restore_process_isa
    other = ISAS[-1] if ISAS[-1] != process else ISAS[0]
    inside, release = threading.Event(), threading.Event()

    def holder():
        with ssm.use_isa(other):
            inside.set()
            release.wait(TIMEOUT)
            assert ssm.isa() == other

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert inside.wait(TIMEOUT)
        assert ssm.isa() == process
        seen = []
        bystander = threading.Thread(target=lambda: seen.append(ssm.isa()))
        bystander.start()
        bystander.join(TIMEOUT)
        assert seen == [process]
    finally:
        release.set()
        t.join(TIMEOUT)
    assert ssm.isa() == process


def test_a_setter_in_one_thread_reaches_threads_after_their_blocks(restore_process_isa):
    process = restore_process_isa
    target = ISAS[-1] if ISAS[-1] != process else ISAS[0]
    inside, switched = threading.Event(), threading.Event()
    seen = []

    def blocker():
        with ssm.use_isa(process):
            inside.set()
            switched.wait(TIMEOUT)
            seen.append(ssm.isa())  # its own block still holds
        seen.append(ssm.isa())  # after it: the process-wide set, switched meanwhile

    t = threading.Thread(target=blocker)
    t.start()
    assert inside.wait(TIMEOUT)
    ssm.use_isa(target)  # setter, from another thread
    switched.set()
    t.join(TIMEOUT)
    assert seen == [process, target]
    assert ssm.isa() == target


def test_blocks_nest_and_restore_on_errors(restore_process_isa):
    process = restore_process_isa
    with ssm.use_isa(ISAS[-1]):
        with ssm.use_isa(ISAS[0]):
            assert ssm.isa() == ISAS[0]
        assert ssm.isa() == ISAS[-1]
        with pytest.raises(RuntimeError):
            with ssm.use_isa(ISAS[0]):
                raise RuntimeError("inside")
        assert ssm.isa() == ISAS[-1]
    assert ssm.isa() == process


def test_interleaved_setters_and_blocks_leave_the_last_setter(restore_process_isa):
    """Threads alternate setters and blocks; the process-wide set must end as
    the last setter left it, whatever the interleaving of the blocks."""
    n = 4
    barrier = threading.Barrier(n, timeout=TIMEOUT)
    final = ISAS[-1]

    def work(i):
        for r in range(20):
            barrier.wait()
            with ssm.use_isa(ISAS[(i + r) % len(ISAS)]):
                assert ssm.isa() == ISAS[(i + r) % len(ISAS)]
        barrier.wait()
        if i == 0:
            ssm.use_isa(final)  # the last setter
        barrier.wait()
        assert ssm.isa() == final
        barrier.wait()  # no switch before every thread has looked
        for r in range(20):
            with ssm.use_isa(ISAS[(i + r) % len(ISAS)]):
                pass
        barrier.wait()
        assert ssm.isa() == final

    run_threads(work, n)
    assert ssm.isa() == final


def test_a_setter_inside_a_block_is_process_wide_after_it(restore_process_isa):
    process = restore_process_isa
    target = ISAS[-1] if ISAS[-1] != process else ISAS[0]
    with ssm.use_isa(process):
        ssm.use_isa(target)
        assert ssm.isa() == process  # the block's own set still applies here
    assert ssm.isa() == target
