"""Kernel-set selection, thread count and the runtime report.

The active kernel set is process-wide, and a thread may override it: `use_isa`
as a setter changes it for every thread, `use_isa` in a ``with`` statement only
for the calling thread, until the block ends. A call reads the set once, when
it starts, and finishes on it. The environment variables ``SIMDSOFTMAX_ISA``
and ``SIMDSOFTMAX_NUM_THREADS`` are read once, when the package is imported.
"""

from __future__ import annotations

import os
import platform
import sys
import threading

import numpy as np

from . import _core

__all__ = [
    "isa",
    "available_isas",
    "use_isa",
    "set_num_threads",
    "get_num_threads",
    "show_runtime",
]

ISA_ENV = "SIMDSOFTMAX_ISA"
THREADS_ENV = "SIMDSOFTMAX_NUM_THREADS"

# Every kernel set the project knows, best first; a build compiles a subset.
_KNOWN_ISAS = tuple(_core.ISA_NAMES)


def isa() -> str:
    """Return the name of the active kernel set: the one calls from this thread use.

    That is the set of the innermost ``with use_isa(...)`` block this thread
    is in, else the process-wide set.

    Returns
    -------
    name : str
        ``"avx512"``, ``"avx2"``, ``"neon"`` or ``"scalar"``.

    See Also
    --------
    available_isas, use_isa

    Examples
    --------
    >>> import simdsoftmax as ssm
    >>> ssm.isa() in ssm.available_isas()
    True
    """
    return _core.get_isa()


def available_isas() -> list[str]:
    """Return the kernel sets this build and this CPU can run, best first.

    A set is available when it was compiled in and the CPU and operating
    system support its instructions (CPUID and XGETBV are both checked).
    ``"scalar"`` is always available.

    Returns
    -------
    names : list of str
        Kernel-set names such as ``"avx512"``, ``"avx2"``, ``"scalar"``; the
        first is the one picked at import unless ``SIMDSOFTMAX_ISA`` says
        otherwise.

    See Also
    --------
    isa, use_isa, show_runtime

    Examples
    --------
    >>> import simdsoftmax as ssm
    >>> ssm.available_isas()[-1]
    'scalar'
    """
    return list(_core.supported_isas())


def _check_isa(name, what: str) -> str:
    """Return `name` normalised, or raise ValueError saying what is wrong with `what`."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str naming a kernel set, got {type(name).__name__}")
    key = name.strip().lower()
    supported = available_isas()
    if key in supported:
        return key
    valid = ", ".join(repr(s) for s in supported)
    if key in _KNOWN_ISAS or key in _core.compiled_isas():
        raise ValueError(
            f"{what}={name!r}: kernel set not supported by this CPU or build; valid names here: {valid}"
        )
    raise ValueError(f"{what}={name!r}: unknown kernel set; valid names here: {valid}")


# Process-wide switches made by `use_isa` calls that a `with` statement may
# still take back, oldest first. `use_isa(name)` switches the process-wide set
# at once (it cannot know yet whether a `with` follows); entering the block
# turns the switch into the calling thread's override and retracts the
# process-wide one. Retracting one switch of several (threads interleave)
# hands its `previous` to the next, so the process-wide set ends as if the
# retracted call had never been made. A thread's next `use_isa` call makes its
# earlier, unentered switch final: it was a setter.
_switch_lock = threading.Lock()
_retractable: list[_IsaOverride] = []


class _IsaOverride:
    """What `use_isa` returns: the switch has already happened; `with` makes it per-thread."""

    __slots__ = ("name", "previous", "thread", "saved")

    def __init__(self, name: str, previous: str, thread: int):
        self.name = name
        self.previous = previous  # the process-wide set before this switch
        self.thread = thread
        self.saved = ""  # the thread's override before the block ("": none)

    def __enter__(self) -> str:
        with _switch_lock:
            for i, switch in enumerate(_retractable):
                if switch is self:
                    if i + 1 < len(_retractable):
                        _retractable[i + 1].previous = self.previous
                    else:
                        _core.set_isa(self.previous)
                    del _retractable[i]
                    break
        self.saved = _core.thread_isa()
        _core.set_thread_isa(self.name)
        return self.name

    def __exit__(self, *exc_info) -> None:
        _core.set_thread_isa(self.saved)

    def __repr__(self) -> str:
        return f"use_isa({self.name!r})"


def use_isa(name: str) -> _IsaOverride:
    """Make `name` the active kernel set, as a setter or a context manager.

    As a setter, ``ssm.use_isa("avx2")`` on its own line, the set changes for
    every thread, for the rest of the process (a call already running finishes
    on its set). In a ``with`` statement the set applies to the calling thread
    only, until the block ends (also when it raises); other threads keep
    theirs, so threads can use different sets at the same time. Blocks nest.

    Parameters
    ----------
    name : str
        One of `available_isas` (case-insensitive).

    Returns
    -------
    context : context manager
        Entering it gives `name`; leaving it restores the set the thread used
        before.

    Raises
    ------
    ValueError
        If `name` is unknown or not supported by this CPU or build.

    See Also
    --------
    isa, available_isas

    Notes
    -----
    The call switches the process-wide set before the ``with`` statement
    enters the block, which then takes the switch back and keeps `name` for
    its own thread. In between, calls started by other threads that have no
    block of their own may run on `name`; their results are the same up to
    the rounding differences between kernel sets (Gumbel sampling is
    bit-identical on every set). Use the object `use_isa` returns in a
    ``with`` statement right away: a thread's later `use_isa` call makes an
    earlier switch it did not enter final.

    Examples
    --------
    >>> import simdsoftmax as ssm
    >>> best = ssm.isa()
    >>> with ssm.use_isa("scalar"):
    ...     ssm.isa()
    'scalar'
    >>> ssm.isa() == best
    True
    >>> ssm.use_isa("scalar")  # as a setter: stays in effect
    use_isa('scalar')
    >>> ssm.isa()
    'scalar'
    >>> _ = ssm.use_isa(best)
    """
    key = _check_isa(name, "name")
    me = threading.get_ident()
    with _switch_lock:
        for i, switch in enumerate(_retractable):
            if switch.thread == me:
                # A setter: final, and so is every switch before it.
                del _retractable[: i + 1]
                break
        switch = _IsaOverride(key, _core.process_isa(), me)
        _core.set_isa(key)
        _retractable.append(switch)
    return switch


def _check_threads(n, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{what} must be an int >= 1, got {n!r}")
    return int(n)


def _default_threads() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


_forced_isa: str | None = None  # the SIMDSOFTMAX_ISA value honoured at import

# Only used by an extension built without a thread pool; otherwise the
# extension owns the count (default: the CPUs this process may run on).
_num_threads = _default_threads()


def set_num_threads(n: int) -> None:
    """Set the number of threads the kernels may use.

    Parameters
    ----------
    n : int
        At least 1. The initial value comes from ``SIMDSOFTMAX_NUM_THREADS``,
        else the number of CPUs this process may run on.

    Raises
    ------
    ValueError
        If `n` is not an int >= 1.

    See Also
    --------
    get_num_threads

    Notes
    -----
    The setting is process-wide. The kernels' thread pool is created on the
    first call large enough to use it (about 4 elements per nanosecond of a
    worker's measured wake-up time, 120 Ki elements until it is measured;
    smaller calls run on the calling thread) and reused afterwards. A long row is split
    into fixed chunks and a batch is split by rows, so results are
    bit-identical for any thread count. When threadpoolctl is installed,
    ``threadpoolctl.threadpool_limits`` limits these threads too (user_api
    ``"simdsoftmax"``).

    Examples
    --------
    >>> import simdsoftmax as ssm
    >>> old = ssm.get_num_threads()
    >>> ssm.set_num_threads(1)
    >>> ssm.get_num_threads()
    1
    >>> ssm.set_num_threads(old)
    """
    global _num_threads
    n = _check_threads(n, "n")
    if hasattr(_core, "set_num_threads"):
        _core.set_num_threads(n)
    else:
        _num_threads = n


def get_num_threads() -> int:
    """Return the number of threads the kernels may use.

    See `set_num_threads` for how it is chosen.

    Returns
    -------
    n : int
        At least 1.

    See Also
    --------
    set_num_threads

    Examples
    --------
    >>> import simdsoftmax as ssm
    >>> ssm.get_num_threads() >= 1
    True
    """
    if hasattr(_core, "get_num_threads"):
        return int(_core.get_num_threads())
    return _num_threads


_CPU_FEATURES = (
    "sse2", "sse41", "avx", "avx2", "fma", "f16c",
    "avx512f", "avx512dq", "avx512bw", "avx512vl", "os_saves_ymm", "os_saves_zmm", "neon",
)  # fmt: skip


def _runtime_info() -> dict:
    cpu = _core.cpu_info()
    from . import __version__

    return {
        "simdsoftmax": __version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": {
            "vendor": cpu.get("vendor", ""),
            "brand": cpu.get("brand", ""),
            "features": [f for f in _CPU_FEATURES if cpu.get(f)],
            "missing": [f for f in _CPU_FEATURES if f in cpu and not cpu[f]],
        },
        "kernel_sets": {
            "compiled": list(_core.compiled_isas()),
            "supported": available_isas(),
            "active": isa(),
            "forced_by_env": _forced_isa,
        },
        "num_threads": get_num_threads(),
    }


def show_runtime(*, as_dict: bool = False) -> dict | None:
    """Print the runtime environment, for bug reports and benchmark headers.

    Shows the versions of simdsoftmax, NumPy and Python, the CPU vendor and
    brand, the CPU features the dispatcher looks at (found and missing), the
    kernel sets compiled into this build, those this CPU supports, the active
    one, and the thread count. Modelled on `numpy.show_runtime`.

    Parameters
    ----------
    as_dict : bool, optional
        If True, print nothing and return the information as a nested dict
        (keys ``"simdsoftmax"``, ``"numpy"``, ``"python"``, ``"platform"``,
        ``"cpu"``, ``"kernel_sets"``, ``"num_threads"``).

    Returns
    -------
    info : dict or None
        The dict if `as_dict` is True, else None.

    See Also
    --------
    isa, available_isas, get_num_threads, numpy.show_runtime

    Examples
    --------
    >>> import simdsoftmax as ssm
    >>> ssm.show_runtime()  # doctest: +SKIP
    simdsoftmax 0.1.0  numpy 2.4.6  python 3.11.7  (Linux-6.1-x86_64-with-glibc2.36)
    CPU: GenuineIntel  Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz
      features: sse2 sse41 avx avx2 fma f16c avx512f avx512dq avx512bw avx512vl os_saves_ymm os_saves_zmm
      missing:  -
    kernel sets compiled:  avx512 avx2 scalar
    kernel sets supported: avx512 avx2 scalar
    active kernel set:     avx512
    threads:               2
    >>> ssm.show_runtime(as_dict=True)["kernel_sets"]["active"] == ssm.isa()
    True
    """
    info = _runtime_info()
    if as_dict:
        return info
    cpu, sets = info["cpu"], info["kernel_sets"]
    forced = f"  (forced by {ISA_ENV}={sets['forced_by_env']})" if sets["forced_by_env"] else ""
    print(
        f"simdsoftmax {info['simdsoftmax']}  numpy {info['numpy']}  "
        f"python {info['python']}  ({info['platform']})\n"
        f"CPU: {cpu['vendor']}  {cpu['brand']}\n"
        f"  features: {' '.join(cpu['features']) or '-'}\n"
        f"  missing:  {' '.join(cpu['missing']) or '-'}\n"
        f"kernel sets compiled:  {' '.join(sets['compiled'])}\n"
        f"kernel sets supported: {' '.join(sets['supported'])}\n"
        f"active kernel set:     {sets['active']}{forced}\n"
        f"threads:               {info['num_threads']}"
    )
    return None


def _apply_environment() -> None:
    """Honour SIMDSOFTMAX_ISA and SIMDSOFTMAX_NUM_THREADS (called once, at import)."""
    global _forced_isa
    name = os.environ.get(ISA_ENV, "")
    if name.strip():
        _forced_isa = _check_isa(name, ISA_ENV)
        _core.set_isa(_forced_isa)
    threads = os.environ.get(THREADS_ENV, "")
    if threads.strip():
        try:
            n = int(threads)
        except ValueError:
            n = threads
        set_num_threads(_check_threads(n, THREADS_ENV))
