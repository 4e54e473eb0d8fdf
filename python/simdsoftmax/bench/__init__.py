"""simdsoftmax-bench: memory-bandwidth benchmark with a same-run roofline.

Sweeps input sizes from L1-resident to far beyond the last-level cache (or
batches of rows: ``--shape ROWSxN``, ``--rows-sweep``) and times each
function / algorithm / kernel set / dtype / thread count asked for. Every
kernel time is set against a *bound* composed from the extension's own
bandwidth probes (``_core.probe_read`` / ``probe_copy`` / ``probe_write``),
timed on the same bytes, dtype and kernel set, interleaved with the kernels
in the same run: efficiency = bound time / measured time.

Run ``simdsoftmax-bench --help`` for the options, ``--list`` for what this
build and machine can measure and for the fields of the JSON/CSV records.
Also runnable as ``python -m simdsoftmax.bench``.

Modules, in the order a run uses them:

- ``cli``: the command line and ``main``.
- ``plan``: arguments checked and turned into a Plan before anything is timed.
- ``sizes``, ``machine``: size/shape parsing; cache sizes, free memory, CPU name.
- ``workloads``, ``peers``: the arrays, the registry of functions and their peers.
- ``sweep``: timing, the probes, the round-robin sweep, records.
- ``report``, ``plot``: header, tables, JSON/CSV schema and writers, the plot.
"""

from .cli import EPILOG, build_parser, main, run_sweep
from .machine import MEMORY_FRACTION, cache_sizes, default_max_bytes, last_level_cache, memory_available
from .peers import GUMBEL_TOPK_K, PEERS, Peer
from .plan import Plan, UsageError, have_module, make_plan
from .report import DTYPES, KNOWN_ISAS, PROG, RECORD_FIELDS, format_tables
from .sizes import Shape, Size, format_bytes, format_seconds, parse_count, parse_shapes, parse_size, parse_sizes
from .sweep import Sweep, add_speedups, group_records
from .workloads import ALGORITHMS, DEFAULT_BATCH_ELEMENTS, FUNCTIONS, PROBES, ROW_LENGTHS, BenchFunction, Workload

__all__ = [
    "ALGORITHMS", "BenchFunction", "DEFAULT_BATCH_ELEMENTS", "DTYPES", "EPILOG", "FUNCTIONS", "GUMBEL_TOPK_K",
    "KNOWN_ISAS", "MEMORY_FRACTION", "PEERS", "PROBES", "PROG", "RECORD_FIELDS", "ROW_LENGTHS", "Peer", "Plan",
    "Shape", "Size", "Sweep", "UsageError", "Workload", "add_speedups", "build_parser", "cache_sizes",
    "default_max_bytes", "format_bytes", "format_seconds", "format_tables", "group_records", "have_module",
    "last_level_cache", "main", "make_plan", "memory_available", "parse_count", "parse_shapes", "parse_size",
    "parse_sizes", "run_sweep",
]  # fmt: skip
