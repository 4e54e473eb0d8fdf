"""The plan of a run: every argument checked before anything is measured.

make_plan turns the parsed command line into a Plan or raises UsageError
(one line on stderr, exit status 2): unknown names, a kernel set the CPU
cannot run, sizes that do not fit in memory and unwritable output files are
all refused before the first timing.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import simdsoftmax as ssm

from .. import _core
from .machine import DEFAULT_MIN_BYTES, cache_sizes, default_max_bytes, memory_available
from .peers import PEERS, Peer
from .report import DTYPES, KNOWN_ISAS
from .sizes import DEFAULT_STEP, Shape, Size, batch_shapes, format_bytes, geometric, parse_count, parse_shapes, parse_sizes
from .workloads import ALGORITHMS, DEFAULT_BATCH_ELEMENTS, FUNCTIONS, ROW_LENGTHS, BenchFunction

DTYPE_ALIASES = {"f32": "float32", "single": "float32", "f64": "float64", "double": "float64", "f16": "float16",
                 "half": "float16", "bf16": "bfloat16"}
SPLIT_PROBES = ("auto", "always", "never")

# Arrays alive at once, in units of the input size: x and out, plus (with
# peers) a scratch buffer for the NumPy textbook and the temporaries SciPy and
# torch allocate per call.
ARRAYS_NO_PEERS = 2
ARRAYS_WITH_PEERS = 5


class UsageError(Exception):
    """Bad command line: reported as one line on stderr, exit status 2."""


@dataclass
class Plan:
    functions: list[BenchFunction]
    algorithms: list[str]
    isas: list[str]
    dtypes: list[np.dtype]
    threads: list[int]
    # dtype name -> what to measure, in order. The --sizes sweep: Shape(1, n)
    # per size, ascending, measured as one 1-D row. Batches (batched=True):
    # the shapes asked for, each a 2-D array reduced along its last axis.
    shapes: dict[str, list[Shape]]
    batched: bool
    peers: list[tuple[Peer, Any]]  # (peer, loaded module)
    repeats: int | None
    warmup: int
    time_per_point: float
    split_probes: str  # when the N-thread probes are timed: auto, always, never
    seed: int
    quiet: bool
    outputs: dict[str, str]  # "json"/"csv"/"plot" -> path
    caches: dict[str, int]
    memory_available: int | None
    notes: list[str] = field(default_factory=list)

    def groups(self) -> int:
        return sum(len(v) for v in self.shapes.values()) * len(self.threads) * len(self.isas)


def split_list(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    return list(dict.fromkeys(items))  # de-duplicate, keep order


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def make_plan(args: argparse.Namespace) -> Plan:
    """Turn arguments into a Plan, or raise UsageError. Measures nothing."""
    notes: list[str] = []
    functions, algorithms = pick_functions(args), pick_algorithms(args)
    isas, dtypes, threads = pick_isas(args), pick_dtypes(args), pick_threads(args)
    peers = load_peers(args, notes)
    outputs = check_outputs(args)

    caches = cache_sizes()
    available = memory_available()
    arrays = ARRAYS_WITH_PEERS if peers else ARRAYS_NO_PEERS
    batch = requested_batch(args)
    if batch is None:
        shapes = one_row_sizes(args, dtypes, caches, available, arrays, notes)
    else:
        shapes = {d.name: fitting_shapes(batch, d, args.max_bytes, available, arrays, notes) for d in dtypes}
    if not any(shapes.values()):
        raise UsageError("no size left to measure (all above --max-bytes?)")

    return Plan(
        functions=functions, algorithms=algorithms, isas=isas, dtypes=dtypes, threads=threads,
        shapes=shapes, batched=batch is not None, peers=peers, repeats=args.repeats, warmup=args.warmup,
        time_per_point=args.time_per_point, split_probes=args.split_probes, seed=args.seed, quiet=args.quiet,
        outputs=outputs, caches=caches, memory_available=available, notes=notes,
    )  # fmt: skip



def pick_functions(args: argparse.Namespace):
    """Unknown names and names this build lacks are both errors."""
    if args.functions == "all":
        functions = [f for f in FUNCTIONS.values() if f.available()]
    else:
        functions = []
        for name in split_list(args.functions):
            if name not in FUNCTIONS:
                raise UsageError(f"unknown function {name!r}; choose from {', '.join(FUNCTIONS)}")
            if not FUNCTIONS[name].available():
                raise UsageError(f"function {name!r} is not available in simdsoftmax {ssm.__version__}")
            functions.append(FUNCTIONS[name])
    if not functions:
        raise UsageError("no function to benchmark")
    return functions


def pick_algorithms(args: argparse.Namespace):
    """Softmax algorithms by name, or all of them."""
    if args.algorithms == "all":
        algorithms = list(ALGORITHMS)
    else:
        algorithms = split_list(args.algorithms)
        for a in algorithms:
            if a not in ALGORITHMS:
                raise UsageError(f"unknown algorithm {a!r}; choose from {', '.join(ALGORITHMS)}")
        if not algorithms:
            raise UsageError("no algorithm given")
    return algorithms


def pick_isas(args: argparse.Namespace):
    """Kernel sets: the active one, all this CPU runs, or names checked against build and CPU."""
    supported = list(ssm.available_isas())
    compiled = list(_core.compiled_isas())
    if args.isa == "active":
        isas = [ssm.isa()]
    elif args.isa == "all":
        isas = supported
    else:
        isas = split_list(args.isa)
        for name in isas:
            if name not in KNOWN_ISAS and name not in compiled:
                raise UsageError(f"unknown kernel set {name!r}; choose from all, active, {', '.join(KNOWN_ISAS)}")
            if name not in compiled:
                raise UsageError(f"kernel set {name!r} is not compiled into this build (has: {', '.join(compiled)})")
            if name not in supported:
                raise UsageError(f"this CPU cannot run kernel set {name!r} (it can run: {', '.join(supported)})")
        if not isas:
            raise UsageError("no kernel set given")
    return isas


def pick_dtypes(args: argparse.Namespace):
    """float32, float64, float16, bfloat16 (aliases f32, single, f64, double, f16, half, bf16).

    bfloat16 arrays are ml_dtypes' (imported only here); 'all' leaves bfloat16
    out when ml_dtypes is not installed.
    """
    if args.dtypes == "all":
        names = [d for d in DTYPES if d != "bfloat16" or _bfloat16() is not None]
    else:
        names = [DTYPE_ALIASES.get(d, d) for d in split_list(args.dtypes)]
    for d in names:
        if d not in DTYPES:
            raise UsageError(f"unsupported dtype {d!r}; choose from {', '.join(DTYPES)}")
    if not names:
        raise UsageError("no dtype given")
    dtypes = []
    for d in dict.fromkeys(names):
        if d == "bfloat16":
            if _bfloat16() is None:
                raise UsageError("bfloat16 needs ml_dtypes (pip install ml_dtypes)")
            dtypes.append(np.dtype(_bfloat16()))
        else:
            dtypes.append(np.dtype(DTYPES[d]))
    return dtypes


def _bfloat16():
    try:
        import ml_dtypes
    except ImportError:
        return None
    return ml_dtypes.bfloat16


def pick_threads(args: argparse.Namespace):
    """Thread counts, de-duplicated; default the current one."""
    if args.threads is None:
        threads = [ssm.get_num_threads()]
    else:
        threads = []
        for t in split_list(args.threads):
            try:
                threads.append(positive_int(t))
            except argparse.ArgumentTypeError as e:
                raise UsageError(f"--threads: {e}") from None
        if not threads:
            raise UsageError("no thread count given")
        threads = list(dict.fromkeys(threads))
    return threads


def load_peers(args: argparse.Namespace, notes: list[str]):
    """The peers asked for and installed, imported; a missing one is a note, not an error."""
    peers = []
    requested = list(PEERS) if args.compare.strip() == "all" else split_list(args.compare)
    for name in requested:
        if name not in PEERS:
            raise UsageError(f"unknown peer {name!r}; choose from {', '.join(PEERS)}")
        peer = PEERS[name]
        if not peer.installed():
            notes.append(f"{name} is not installed: its columns are left out (pip install {peer.distribution})")
            continue
        try:
            peers.append((peer, peer.load()))
        except Exception as e:  # a broken install is a note, not a reason to refuse the run
            notes.append(f"{name} failed to import ({type(e).__name__}: {e}): its columns are left out")
    return peers


def check_outputs(args: argparse.Namespace):
    """Output files by option, refused now if they could not be written later."""
    outputs = {k: getattr(args, k) for k in ("json", "csv", "plot") if getattr(args, k)}
    for option, path in outputs.items():
        check_writable(path, f"--{option}")
    if "plot" in outputs:
        if os.path.splitext(outputs["plot"])[1].lower() not in (".png", ".svg", ".pdf"):
            raise UsageError(f"--plot {outputs['plot']!r}: the file name must end in .png, .svg or .pdf")
        if not have_module("matplotlib"):
            raise UsageError("--plot needs matplotlib, which is not installed: pip install simdsoftmax[plot]")
    return outputs


def requested_batch(args: argparse.Namespace) -> list[Shape] | None:
    """The batch shapes asked for (--shape, or the row-length sweep), or None for the 1-D --sizes sweep."""
    sweep = args.rows_sweep or args.row_lengths is not None or args.batch_elements is not None
    if args.shape and sweep:
        raise UsageError("--shape cannot be combined with --rows-sweep, --row-lengths or --batch-elements")
    if (args.shape or sweep) and args.sizes is not None:
        raise UsageError("--sizes measures one contiguous row: give it, or batch shapes, not both")
    if args.shape:
        try:
            return parse_shapes(args.shape)
        except ValueError as e:
            raise UsageError(f"--shape: {e}") from None
    if not sweep:
        return None
    lengths = list(ROW_LENGTHS)
    if args.row_lengths is not None:
        try:
            lengths = [positive_int(t) for t in split_list(args.row_lengths)]
        except argparse.ArgumentTypeError as e:
            raise UsageError(f"--row-lengths: {e}") from None
        if not lengths:
            raise UsageError("--row-lengths: no row length given")
    elements = DEFAULT_BATCH_ELEMENTS
    if args.batch_elements is not None:
        try:
            elements = parse_count(args.batch_elements)
        except ValueError as e:
            raise UsageError(f"--batch-elements: {e}") from None
    return batch_shapes(lengths, elements)


def fitting_shapes(shapes: list[Shape], dtype: np.dtype, max_bytes: int | None, available: int | None,
                   arrays: int, notes: list[str]) -> list[Shape]:  # fmt: skip
    """The shapes that fit --max-bytes and memory, in the order given."""
    kept = []
    for shape in shapes:
        nbytes = shape.elements * dtype.itemsize
        if max_bytes is not None and nbytes > max_bytes:
            notes.append(f"skipping {shape} ({format_bytes(nbytes)}) of {dtype.name}: above --max-bytes "
                         f"{format_bytes(max_bytes)}")  # fmt: skip
            continue
        check_memory(nbytes, dtype, arrays, available)
        kept.append(shape)
    return kept


def one_row_sizes(args, dtypes, caches, available, arrays, notes) -> dict[str, list[Shape]]:
    """The --sizes sweep (or its default): one contiguous row per size, ascending."""
    max_bytes = args.max_bytes
    if args.sizes is None:
        top = max_bytes if max_bytes is not None else default_max_bytes(caches, available)
        requested_sizes = [Size(b, True) for b in geometric(DEFAULT_MIN_BYTES, max(top, DEFAULT_MIN_BYTES), DEFAULT_STEP)]
        if top < DEFAULT_MIN_BYTES:
            requested_sizes = [Size(top, True)]
    else:
        try:
            requested_sizes = parse_sizes(args.sizes)
        except ValueError as e:
            raise UsageError(f"--sizes: {e}") from None
    shapes: dict[str, list[Shape]] = {}
    for dtype in dtypes:
        counts = set()
        for s in requested_sizes:
            n = s.elements(dtype)
            if n < 1:
                raise UsageError(f"size {s} is smaller than one {dtype.name} element")
            nbytes = n * dtype.itemsize
            if max_bytes is not None and nbytes > max_bytes:
                notes.append(f"skipping {format_bytes(nbytes)} of {dtype.name}: above --max-bytes {format_bytes(max_bytes)}")
                continue
            check_memory(nbytes, dtype, arrays, available)
            counts.add(n)
        shapes[dtype.name] = [Shape(1, n) for n in sorted(counts)]
    return shapes


def check_memory(nbytes: int, dtype: np.dtype, arrays: int, available: int | None) -> None:
    need = arrays * nbytes
    if available is not None and need > 0.9 * available:
        raise UsageError(
            f"size {format_bytes(nbytes)} of {dtype.name} needs about {format_bytes(need)} of memory "
            f"({arrays} arrays), but only {format_bytes(available)} is available"
        )


def check_writable(path: str, option: str) -> None:
    """Refuse an output path we could not write, before spending minutes measuring."""
    full = os.path.abspath(path)
    if os.path.isdir(full):
        raise UsageError(f"{option} {path!r} is a directory")
    parent = os.path.dirname(full)
    if not os.path.isdir(parent):
        raise UsageError(f"{option} {path!r}: directory {parent!r} does not exist")
    if os.path.exists(full):
        if not os.access(full, os.W_OK):
            raise UsageError(f"{option} {path!r} is not writable")
    elif not os.access(parent, os.W_OK):
        raise UsageError(f"{option} {path!r}: directory {parent!r} is not writable")


def have_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False

