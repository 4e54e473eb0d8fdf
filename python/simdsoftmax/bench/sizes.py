"""Sizes and shapes on the command line, and how they are printed.

A size is bytes of input with a unit (``64MiB``) or an element count (a plain
integer); a shape is ``ROWSxN``: a C-contiguous batch of ROWS rows of N
elements, reduced along its last axis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

# Geometric ranges (START:STOP) step by this factor unless told otherwise.
DEFAULT_STEP = 4

_UNIT_BYTES = {
    "b": 1,
    "k": KiB, "kib": KiB, "m": MiB, "mib": MiB, "g": GiB, "gib": GiB, "t": 1 << 40, "tib": 1 << 40,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
}  # fmt: skip


@dataclass(frozen=True)
class Size:
    """A requested size: bytes of input (with a unit) or an element count (plain integer)."""

    value: int
    in_bytes: bool

    def elements(self, dtype: np.dtype) -> int:
        return self.value // np.dtype(dtype).itemsize if self.in_bytes else self.value

    def __str__(self) -> str:
        return format_bytes(self.value) if self.in_bytes else f"{self.value} elements"


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> Size:
    """'64MiB' / '1.5 GiB' / '4KB' -> bytes; '4096' -> 4096 elements."""
    m = _SIZE_RE.match(text)
    if not m:
        raise ValueError(f"cannot read size {text!r} (examples: 1KiB, 64MiB, 1.5GiB, 4096)")
    number, unit = m.group(1), m.group(2).lower()
    if not unit:
        if not number.isdigit():
            raise ValueError(f"element count {text!r} must be a whole number (or give a unit: 1.5MiB)")
        value, in_bytes = int(number), False
    elif unit in _UNIT_BYTES:
        value, in_bytes = int(float(number) * _UNIT_BYTES[unit]), True
    else:
        raise ValueError(f"unknown unit {m.group(2)!r} in {text!r} (use B, KiB, MiB, GiB, KB, MB, GB)")
    if value <= 0:
        raise ValueError(f"size {text!r} must be positive")
    return Size(value, in_bytes)


def parse_sizes(text: str) -> list[Size]:
    """Comma list of sizes and geometric ranges START:STOP[:FACTOR] (factor default 4)."""
    sizes: list[Size] = []
    for token in (t for t in text.split(",") if t.strip()):
        parts = token.split(":")
        if len(parts) == 1:
            sizes.append(parse_size(token))
            continue
        if len(parts) > 3:
            raise ValueError(f"range {token!r} must be START:STOP or START:STOP:FACTOR")
        start, stop = parse_size(parts[0]), parse_size(parts[1])
        if start.in_bytes != stop.in_bytes:
            raise ValueError(f"range {token!r} mixes bytes and element counts")
        try:
            factor = float(parts[2].strip().lstrip("xX")) if len(parts) == 3 else float(DEFAULT_STEP)
        except ValueError:
            raise ValueError(f"range factor in {token!r} must be a number > 1, e.g. 1KiB:1GiB:2") from None
        if not factor > 1:
            raise ValueError(f"range factor in {token!r} must be > 1")
        sizes.extend(Size(v, start.in_bytes) for v in geometric(start.value, stop.value, factor))
    if not sizes:
        raise ValueError("no sizes given")
    return sizes


def geometric(start: int, stop: int, factor: float) -> list[int]:
    """start, start*factor, ... <= stop, plus stop itself if the steps miss it."""
    values, v = [], float(start)
    while v <= stop * (1 + 1e-9):
        values.append(int(round(v)))
        v *= factor
    if values and values[-1] < stop:
        values.append(stop)
    return values


def format_bytes(b: float) -> str:
    for unit, scale in (("TiB", 1 << 40), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if b >= scale:
            v = b / scale
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.3g} {unit}"
    return f"{int(b)} B"



def format_count(n: int) -> str:
    """4194304 -> '4 Mi', 1000 -> '1000': element counts the way the options take them."""
    for unit, scale in (("Gi", GiB), ("Mi", MiB), ("Ki", KiB)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return str(n)


def format_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:.4g} {unit}"
    return f"{s / 1e-9:.4g} ns"



_COUNT_RE = re.compile(r"^\s*(\d+)\s*(ki|mi|gi|k|m|g)?\s*$", re.IGNORECASE)
_COUNT_UNITS = {"ki": KiB, "mi": MiB, "gi": GiB, "k": 10**3, "m": 10**6, "g": 10**9}


def parse_count(text: str) -> int:
    """An element count: '4194304', '4Mi' (binary) or '4M' (decimal)."""
    m = _COUNT_RE.match(text)
    if not m:
        raise ValueError(f"cannot read element count {text!r} (examples: 4Mi, 64Mi, 1000000)")
    value = int(m.group(1)) * (_COUNT_UNITS[m.group(2).lower()] if m.group(2) else 1)
    if value <= 0:
        raise ValueError(f"element count {text!r} must be positive")
    return value


@dataclass(frozen=True)
class Shape:
    """A batch of `rows` C-contiguous rows of `n` elements, reduced along the rows."""

    rows: int
    n: int

    @property
    def elements(self) -> int:
        return self.rows * self.n

    def __str__(self) -> str:
        return f"{self.rows}x{self.n}"


_SHAPE_RE = re.compile(r"^\s*(\d+)\s*[xX*]\s*(\d+)\s*$")


def parse_shapes(texts: list[str]) -> list[Shape]:
    """'--shape 64x151936 --shape 8192x512,1000000x5' -> shapes in the order given, duplicates dropped."""
    shapes: list[Shape] = []
    for text in texts:
        for token in (t for t in text.split(",") if t.strip()):
            m = _SHAPE_RE.match(token)
            if not m:
                raise ValueError(f"cannot read shape {token.strip()!r}: write ROWSxN, e.g. 8192x512")
            rows, n = int(m.group(1)), int(m.group(2))
            if rows < 1 or n < 1:
                raise ValueError(f"shape {token.strip()!r} must have at least one row and one element per row")
            shapes.append(Shape(rows, n))
    if not shapes:
        raise ValueError("no shape given")
    return list(dict.fromkeys(shapes))


def batch_shapes(row_lengths: list[int], batch_elements: int) -> list[Shape]:
    """Row lengths -> shapes holding about `batch_elements` each (at least one row)."""
    return list(dict.fromkeys(Shape(max(1, batch_elements // n), n) for n in row_lengths))
