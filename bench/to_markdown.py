#!/usr/bin/env python3
"""Render a simdsoftmax-bench JSON file as the Markdown tables shown in the README.

    python3 bench/to_markdown.py bench/results/roofline.json > bench/results/roofline.md
    python3 bench/to_markdown.py --peers bench/results/peers.json > bench/results/peers.md
    python3 bench/to_markdown.py --sizes 16KiB,1MiB,256MiB bench/results/peers.json

For batches of rows (--shape, --rows-sweep) the rows are shapes (rows x n)
in the order measured instead of sizes. The roofline view has one row per size: the read and copy probes' GB/s, then
each function/algorithm as "GB/s (efficiency)". The peers view has one row per
function and size: simdsoftmax's time (auto if measured, else its fastest
algorithm) and each peer's time with simdsoftmax's speedup over it.

Only reads the JSON (no simdsoftmax import), so a result file can be
re-rendered on any machine.
"""

import argparse
import json
import re
import sys

UNITS = {"": 1, "b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}


def parse_bytes(text):
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in UNITS:
        raise argparse.ArgumentTypeError(f"cannot read size {text!r} (e.g. 64MiB)")
    return int(float(m.group(1)) * UNITS[m.group(2).lower()])


def label(b):
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= scale:
            v = b / scale
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.3g} {unit}"
    return f"{b} B"


def seconds(s):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def machine(doc):
    rt, cfg = doc["runtime"], doc["config"]
    cpu, sets = rt.get("cpu", {}), rt.get("kernel_sets", {})
    caches = ", ".join(f"{k} {label(v)}" for k, v in cpu.get("caches", {}).items())
    peers = ", ".join(f"{k} {v}" for k, v in rt.get("peers", {}).items() if k != "numpy")  # NumPy is listed anyway
    lines = [
        f"Machine: {cpu.get('brand', '?')}, {cpu.get('usable_cpus', cpu.get('logical_cpus', '?'))} CPUs, "
        f"caches {caches or '?'}; kernel sets runnable: {' '.join(sets.get('supported', []))}.",
        f"Software: simdsoftmax {rt.get('simdsoftmax')}, NumPy {rt.get('numpy')}, Python {rt.get('python')}"
        + (f", {peers}" if peers else "")
        + f"; {rt.get('platform')}; {rt.get('date_utc', '')[:10]}.",
        "Command: `simdsoftmax-bench " + " ".join(cfg.get("argv", [])) + "`",
    ]
    if doc.get("interrupted"):
        lines.append("**Interrupted run: partial results.**")
    return "\n\n".join(lines)


def point(r):
    """Where a record was measured: bytes, rows, row length (files without rows: one row)."""
    return r["size_bytes"], r.get("rows", 1), r["n"]


def points(records, keep):
    """1-D sizes ascending; batch shapes in measurement order; --sizes filters by bytes."""
    found = list(dict.fromkeys(point(r) for r in records))
    if all(rows == 1 for _, rows, _ in found):
        found.sort()
    return [p for p in found if not keep or p[0] in keep]


def where(p, batched):
    return f"{p[1]} x {p[2]}" if batched else label(p[0])


def groups(records):
    return list(dict.fromkeys((r["dtype"], r["threads"], r["isa"]) for r in records if r["impl"] == "simdsoftmax"))


def roofline(records, keep, batched):
    parts = []
    for dtype, threads, isa in groups(records):
        ours = [r for r in records if r["impl"] == "simdsoftmax" and (r["dtype"], r["threads"], r["isa"]) == (dtype, threads, isa)]
        probes = [r for r in records if r["impl"] == "probe" and (r["dtype"], r["threads"], r["isa"]) == (dtype, threads, isa)]
        columns = list(dict.fromkeys((r["function"], r["algorithm"]) for r in ours))
        header = ["shape" if batched else "size", "read GB/s", "copy GB/s"] + [f"{f} {a}" if a else f for f, a in columns]
        rows = []
        for at in points(ours, keep):
            best = {}
            for r in probes:
                if point(r) == at:
                    best[r["function"]] = max(best.get(r["function"], 0.0), r["gbps"])
            cells = {(r["function"], r["algorithm"]): r for r in ours if point(r) == at}
            row = [where(at, batched), *(f"{best[p]:.1f}" if p in best else "-" for p in ("read", "copy"))]
            for key in columns:
                r = cells.get(key)
                eff = "" if r is None or r["efficiency"] is None else f" ({r['efficiency']:.2f})"
                row.append("-" if r is None else f"{r['gbps']:.1f}{eff}")
            rows.append(row)
        parts.append(f"**{dtype}, kernel set {isa}, {threads} thread(s)** — GB/s of each algorithm's own "
                     "traffic (efficiency = probe bound / time)\n\n" + table(header, rows))
    return "\n\n".join(parts)


def peers(records, keep, batched):
    peer_names = [p for p in ("numpy", "scipy", "torch") if any(r["impl"] == p for r in records)]
    if not peer_names:
        return "(no peer was measured: run with --compare)"
    parts = []
    for dtype, threads, isa in groups(records):
        ours = [r for r in records if r["impl"] == "simdsoftmax" and (r["dtype"], r["threads"], r["isa"]) == (dtype, threads, isa)]
        rows = []
        for function in dict.fromkeys(r["function"] for r in ours):
            for here in points([r for r in ours if r["function"] == function], keep):
                at = [r for r in ours if r["function"] == function and point(r) == here]
                pick = next((r for r in at if r["algorithm"] == "auto"), None) or min(at, key=lambda r: r["time_s"])
                name = f"{function} ({pick['algorithm']})" if pick["algorithm"] else function
                row = [name, where(here, batched), seconds(pick["time_s"])]
                for p in peer_names:
                    t = next((r["time_s"] for r in records if r["impl"] == p and r["function"] == function
                              and point(r) == here and r["dtype"] == dtype and r["threads"] == threads), None)
                    row.append("-" if t is None else f"{seconds(t)} ({t / pick['time_s']:.1f}×)")
                rows.append(row)
        header = ["function", "shape" if batched else "size", "simdsoftmax"] + [f"{p} (speedup)" for p in peer_names]
        parts.append(f"**{dtype}, kernel set {isa}, {threads} thread(s)** — median time per call; "
                     "(N×) = how many times faster simdsoftmax is\n\n" + table(header, rows))
    return "\n\n".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json_file")
    ap.add_argument("--peers", action="store_true", help="peer comparison view instead of the roofline view")
    ap.add_argument("--sizes", help="only these sizes (bytes), e.g. 16KiB,1MiB,256MiB")
    args = ap.parse_args()
    with open(args.json_file) as f:
        doc = json.load(f)
    keep = {parse_bytes(s) for s in args.sizes.split(",")} if args.sizes else None
    batched = bool(doc["config"].get("batched"))
    body = (peers if args.peers else roofline)(doc["records"], keep, batched)
    sys.stdout.write(machine(doc) + "\n\n" + body + "\n")


if __name__ == "__main__":
    main()
