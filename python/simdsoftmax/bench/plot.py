"""``--plot FILE``: GB/s against size (or row length, for batches), probes as reference lines."""

from __future__ import annotations

from .sizes import format_bytes


def write_plot(path: str, records: list[dict], runtime: dict, batched: bool = False) -> None:
    """One panel per function; the x axis is the input size, or the row length n for batches."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    work = [r for r in records if r["impl"] != "probe"]
    probes = [r for r in records if r["impl"] == "probe"]
    functions = list(dict.fromkeys(r["function"] for r in work)) or ["(probes only)"]
    # Label series only by the parameters that vary in this run.
    ours = [r for r in records if r["impl"] == "simdsoftmax"] or work
    varying = [k for k in ("isa", "dtype", "threads") if len({r[k] for r in ours}) > 1]

    fig, axes = plt.subplots(len(functions), 1, figsize=(9, 3.9 * len(functions)), squeeze=False, sharex=True)
    xkey = "n" if batched else "size_bytes"
    sizes = sorted({r[xkey] for r in records})
    for ax, fn in zip(axes[:, 0], functions):
        series: dict[tuple, list[dict]] = {}
        for r in work:
            if r["function"] == fn:
                series.setdefault((r["impl"], r["algorithm"], r["isa"], r["dtype"], r["threads"]), []).append(r)
        for (impl, algorithm, isa, dtype, threads), rs in series.items():
            rs.sort(key=lambda r: r[xkey])
            name = algorithm or (fn if impl == "simdsoftmax" else impl)
            extra = [str({"isa": isa, "dtype": dtype, "threads": f"{threads} thr"}[k]) for k in varying
                     if impl == "simdsoftmax" or k != "isa"]  # fmt: skip
            label = " ".join([name, *extra])
            style = dict(marker="o", markersize=3, linewidth=1.5) if impl == "simdsoftmax" else dict(
                marker="x", markersize=4, linewidth=1.0, linestyle=":")
            ax.plot([r[xkey] for r in rs], [r["gbps"] for r in rs], label=label, **style)
        # Reference lines: the best probe GB/s per size (over kernel sets and
        # probe thread splits) for each dtype/thread count plotted.
        for probe, color in (("read", "0.25"), ("copy", "0.55")):
            for dtype, threads in dict.fromkeys((r["dtype"], r["threads"]) for r in work if r["function"] == fn):
                best: dict[int, float] = {}
                for r in probes:
                    if r["function"] == probe and r["dtype"] == dtype and r["threads"] == threads:
                        best[r[xkey]] = max(best.get(r[xkey], 0.0), r["gbps"])
                if best:
                    xs = sorted(best)
                    extra = " ".join(str({"dtype": dtype, "threads": f"{threads} thr"}[k]) for k in varying if k != "isa")
                    ax.plot(xs, [best[x] for x in xs], color=color, linestyle="--", linewidth=1.2,
                            label=f"{probe} probe {extra}".strip())  # fmt: skip
        for level, b in ({} if batched else runtime.get("cpu", {}).get("caches", {})).items():
            ax.axvline(b, color="0.85", linewidth=0.8, zorder=0)
            ax.annotate(level, (b, 1), xycoords=("data", "axes fraction"), xytext=(2, -10),
                        textcoords="offset points", fontsize=7, color="0.45")  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_ylim(bottom=0)
        ax.set_ylabel("GB/s of algorithm traffic")
        ax.set_title(fn, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, ncol=2, loc="best")
    bottom = axes[-1, 0]
    bottom.set_xticks(sizes)
    labels = [str(s) if batched else format_bytes(s).replace(" ", "") for s in sizes]
    bottom.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
    bottom.minorticks_off()
    bottom.set_xlabel("row length n (batches of rows, log scale)" if batched else "input size (one row, log scale)")
    cpu = runtime.get("cpu", {})
    fig.suptitle(f"simdsoftmax {runtime.get('simdsoftmax')} on {cpu.get('brand')}, "
                 f"{runtime.get('date_utc', '')[:10]}", fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)

