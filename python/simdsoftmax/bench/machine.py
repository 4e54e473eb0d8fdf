"""Facts about the machine the sweep adapts to: cache sizes, free memory, CPU name."""

from __future__ import annotations

import os
import platform

from .. import _core
from .sizes import KiB, MiB

# The default sweep: x4 steps from 1 KiB up to max(4 x LLC, 256 MiB), but
# never more than 1/MEMORY_FRACTION of the available memory (the input, the
# output and a peer's temporaries must fit next to what others are running).
DEFAULT_MIN_BYTES = 1 * KiB
DEFAULT_FLOOR_MAX_BYTES = 256 * MiB
MEMORY_FRACTION = 8


def cache_sizes() -> dict[str, int]:
    """Data/unified cache sizes by level ('L1d', 'L2', 'L3'), as the kernels see them.

    The extension detects them once (sysfs, sysctl, CPUID or sysconf) to tune
    its own crossovers; the sweep uses the same numbers. When the extension
    found nothing and fell back to a guess, the result is empty ("unknown").
    """
    c = _core.cache_sizes()
    if c["source"] == "default":
        return {}
    levels = (("L1d", c["l1d_bytes"]), ("L2", c["l2_bytes"]), ("L3", c["l3_bytes"]))
    return {name: int(size) for name, size in levels if size}


def last_level_cache(caches: dict[str, int]) -> int:
    # Unknown: assume a large server L3 so the default sweep still leaves it.
    return caches[max(caches, key=lambda k: int(k[1]))] if caches else 64 * MiB


def memory_available() -> int | None:
    """Bytes the kernel says can be allocated without swapping (MemAvailable), if known."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_max_bytes(caches: dict[str, int], available: int | None) -> int:
    top = max(4 * last_level_cache(caches), DEFAULT_FLOOR_MAX_BYTES)
    if available:
        top = min(top, available // MEMORY_FRACTION)
    return max(top, DEFAULT_MIN_BYTES)


def cpu_brand() -> str:
    try:
        brand = str(_core.cpu_info().get("brand", "")).strip()
    except Exception:
        brand = ""
    if not brand:
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
    return brand or platform.processor() or "unknown CPU"

