"""The benchmark CLI (simdsoftmax-bench) end to end, on tiny sizes so it stays fast.

Measurements are not checked for speed (a shared CI machine says nothing
about that), only for being complete, consistent with the documented record
fields and the roofline formula, and for bad input being refused before any
work starts.
"""

import csv
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import bench

# Tiny and single-threaded unless a test is about threads: well under a second per run.
TINY = ["--sizes", "1KiB,8KiB", "--repeats", "3", "--threads", "1", "--quiet"]
FIELDS = list(bench.RECORD_FIELDS)


def run(capsys, *argv):
    status = bench.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def load_records(path):
    with open(path) as f:
        doc = json.load(f)
    return doc, doc["records"]


def by_group(records):
    """(isa, dtype, threads, size) -> {probe name: best median}, for re-deriving bounds."""
    probes = {}
    for r in records:
        if r["impl"] == "probe":
            key = (r["isa"], r["dtype"], r["threads"], r["size_bytes"])
            best = probes.setdefault(key, {})
            best[r["function"]] = min(r["time_s"], best.get(r["function"], math.inf))
    return probes


# -- size parsing and defaults ---------------------------------------------


@pytest.mark.parametrize(
    "text, value, in_bytes",
    [
        ("1KiB", 1024, True),
        ("64MiB", 64 << 20, True),
        ("1GiB", 1 << 30, True),
        ("1.5 MiB", 3 << 19, True),
        ("4KB", 4000, True),
        ("32768K", 32 << 20, True),  # sysfs cache size format
        ("100B", 100, True),
        ("4096", 4096, False),  # plain integers are element counts
    ],
)
def test_parse_size(text, value, in_bytes):
    assert bench.parse_size(text) == bench.Size(value, in_bytes)


@pytest.mark.parametrize("text", ["", "abc", "1.5", "12 parsecs", "0", "0KiB", "-4KiB"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError):
        bench.parse_size(text)


def test_parse_sizes_lists_and_ranges():
    assert [s.value for s in bench.parse_sizes("1KiB,64MiB")] == [1024, 64 << 20]
    assert [s.value for s in bench.parse_sizes("1KiB:16KiB")] == [1024, 4096, 16384]
    assert [s.value for s in bench.parse_sizes("1KiB:8KiB:x2")] == [1024, 2048, 4096, 8192]
    assert [s.value for s in bench.parse_sizes("1KiB:10KiB")] == [1024, 4096, 10240]  # the end is kept
    assert bench.parse_sizes("1000:4000:2")[0] == bench.Size(1000, False)
    with pytest.raises(ValueError):
        bench.parse_sizes("1KiB:1MiB:1")
    with pytest.raises(ValueError):
        bench.parse_sizes("1KiB:1000")  # bytes and elements mixed


def test_size_elements_per_dtype():
    size = bench.parse_size("1KiB")
    assert size.elements("float32") == 256 and size.elements("float64") == 128
    assert bench.parse_size("100").elements("float64") == 100


def test_default_upper_bound_follows_cache_and_memory():
    assert bench.default_max_bytes({"L3": 32 << 20}, None) == 256 << 20
    assert bench.default_max_bytes({"L3": 128 << 20}, None) == 512 << 20
    assert bench.default_max_bytes({"L3": 128 << 20}, 1 << 30) == (1 << 30) // bench.MEMORY_FRACTION
    assert bench.default_max_bytes({}, None) >= 256 << 20


def test_format_bytes():
    assert bench.format_bytes(1024) == "1 KiB"
    assert bench.format_bytes(3 << 19) == "1.5 MiB"
    assert bench.format_bytes(100) == "100 B"


def test_parse_shapes_and_counts():
    assert bench.parse_shapes(["64x151936", "8192x512, 1000000X5", "64x151936"]) == [
        bench.Shape(64, 151936), bench.Shape(8192, 512), bench.Shape(1000000, 5)]  # fmt: skip
    for bad in (["5"], ["0x5"], ["5x0"], ["ax5"], [","]):
        with pytest.raises(ValueError):
            bench.parse_shapes(bad)
    assert bench.parse_count("4Mi") == 4 << 20 and bench.parse_count("64mi") == 64 << 20
    assert bench.parse_count("4M") == 4_000_000 and bench.parse_count("1000") == 1000
    for bad in ("0", "4MiB", "x", "-1"):
        with pytest.raises(ValueError):
            bench.parse_count(bad)


def test_row_sweep_shapes_hold_the_batch():
    shapes = bench.sizes.batch_shapes(list(bench.ROW_LENGTHS), bench.DEFAULT_BATCH_ELEMENTS)
    assert [s.n for s in shapes] == list(bench.ROW_LENGTHS)
    assert bench.ROW_LENGTHS == (2, 3, 5, 8, 10, 16, 32, 64, 100, 128, 256, 1000, 1024, 4096, 10000, 151936)
    for s in shapes:
        # as many whole rows as fit: within one row of the target
        assert s.elements <= bench.DEFAULT_BATCH_ELEMENTS < s.elements + s.n
    assert bench.sizes.batch_shapes([10], 4) == [bench.Shape(1, 10)]  # a row longer than the batch


def test_cache_sizes_are_the_extensions():
    from simdsoftmax import _core

    core, caches = _core.cache_sizes(), bench.cache_sizes()
    if core["source"] == "default":
        assert caches == {}
    else:
        assert caches.get("L1d") == core["l1d_bytes"] and caches.get("L2") == core["l2_bytes"]
        assert caches.get("L3", 0) == core["l3_bytes"]


# -- registry ---------------------------------------------------------------


def test_registry_traffic_matches_spec():
    softmax = bench.FUNCTIONS["softmax"].traffic
    assert softmax == {
        "two-pass": (2, 1),
        "three-pass-recompute": (3, 1),
        "three-pass-reload": (3, 2),
        "online": (2, 1),
        "auto": (2, 1),
    }
    assert bench.FUNCTIONS["log_softmax"].traffic == {None: (2, 1)}
    assert bench.FUNCTIONS["logsumexp"].traffic == {None: (1, 0)}
    for f in bench.FUNCTIONS.values():
        assert set(f.traffic) <= set(bench.ALGORITHMS) | {None}
        assert all(r >= w >= 0 and r > 0 for r, w in f.traffic.values())
        assert set(f.peers) <= set(bench.PEERS)


# -- end to end ---------------------------------------------------------------


def test_help_explains_every_option(capsys):
    status, out, _ = run(capsys, "--help")
    assert status == 0
    for action in bench.build_parser()._actions:
        for option in action.option_strings:
            assert option in out
    assert out.count("e.g.") >= 15
    for topic in ("how traffic is counted", "efficiency", "bound = read + copy", "pip install simdsoftmax[plot]"):
        assert topic in out


def test_table_json_csv(tmp_path, capsys):
    json_path, csv_path = tmp_path / "run.json", tmp_path / "run.csv"
    status, out, err = run(capsys, *TINY, "--json", json_path, "--csv", csv_path)
    assert status == 0, err
    assert err == ""
    # Header: what makes runs comparable.
    assert ssm.isa() in out and f"simdsoftmax {ssm.__version__}" in out
    for block in ("== bandwidth probes", "== softmax", "== log_softmax", "== logsumexp"):
        assert block in out
    for algorithm in bench.ALGORITHMS:
        assert algorithm in out

    doc, records = load_records(json_path)
    assert doc["schema"] == "simdsoftmax-bench/1"
    assert doc["interrupted"] is False
    assert doc["fields"] == bench.RECORD_FIELDS
    assert doc["runtime"]["kernel_sets"]["active"] == ssm.isa()
    assert doc["runtime"]["cpu"]["brand"]
    assert doc["config"]["repeats"] == 3

    # One record per (size, thing measured), every documented field present.
    for r in records:
        assert list(r) == FIELDS
    kinds = {(r["impl"], r["function"], r["algorithm"], r["size_bytes"]) for r in records}
    assert len(kinds) == len(records)
    for size in (1024, 8192):
        for probe in bench.PROBES:
            assert ("probe", probe, None, size) in kinds
        for algorithm in bench.ALGORITHMS:
            assert ("simdsoftmax", "softmax", algorithm, size) in kinds
        assert ("simdsoftmax", "log_softmax", None, size) in kinds
        assert ("simdsoftmax", "logsumexp", None, size) in kinds

    probes = by_group(records)
    for r in records:
        assert r["dtype"] == "float32" and r["threads"] == 1 and r["isa"] == ssm.isa()
        assert r["n"] * 4 == r["size_bytes"]
        assert r["repeats"] == 3 and r["inner"] >= 1
        assert 0 < r["time_min_s"] <= r["time_s"] <= r["time_max_s"]
        assert r["traffic_bytes"] == (r["reads"] + r["writes"]) * r["size_bytes"]
        assert r["gbps"] == pytest.approx(r["traffic_bytes"] / r["time_s"] / 1e9)
        assert r["elements_per_s"] == pytest.approx(r["n"] / r["time_s"])
        if r["impl"] == "probe":
            assert r["bound_s"] is None and r["efficiency"] is None and r["probe_threads"] == 1
        else:
            best = probes[(r["isa"], r["dtype"], r["threads"], r["size_bytes"])]
            expected = (r["reads"] - r["writes"]) * best["read"] + r["writes"] * best["copy"]
            assert r["bound_s"] == pytest.approx(expected)
            assert r["efficiency"] == pytest.approx(r["bound_s"] / r["time_s"])
            assert r["probe_threads"] is None
        for peer in bench.PEERS:
            assert r[f"speedup_vs_{peer}"] is None  # no --compare

    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and list(rows[0]) == FIELDS
    assert len(rows) == len(records)
    for row, r in zip(rows, records):
        assert row["impl"] == r["impl"] and row["function"] == r["function"]
        assert float(row["time_s"]) == pytest.approx(r["time_s"])
        assert row["algorithm"] == (r["algorithm"] or "")


def test_peers_side_by_side(tmp_path, capsys, monkeypatch):
    pytest.importorskip("scipy")
    # Pretend torch is missing, so the "not installed" path runs everywhere.
    real_installed = bench.Peer.installed
    monkeypatch.setattr(bench.Peer, "installed", lambda self: self.name != "torch" and real_installed(self))
    json_path = tmp_path / "peers.json"
    status, out, err = run(
        capsys, "--sizes", "4KiB", "--repeats", "3", "--threads", "1",
        "--functions", "softmax,log_softmax,logsumexp", "--algorithms", "two-pass,auto",
        "--compare", "numpy,scipy,torch", "--json", json_path,
    )  # fmt: skip
    assert status == 0, err
    assert "torch is not installed" in err and "pip install torch" in err
    assert "vs numpy" in out and "vs scipy" in out and "vs torch" not in out
    assert "[numpy]" in out and "[scipy]" in out
    _, records = load_records(json_path)
    peer_time = {(r["impl"], r["function"]): r["time_s"] for r in records if r["impl"] in ("numpy", "scipy")}
    assert {f for _, f in peer_time} == {"softmax", "log_softmax", "logsumexp"}
    for r in records:
        if r["impl"] in bench.PEERS:
            assert r["isa"] is None and r["algorithm"] is None
            assert r["efficiency"] is not None  # against the function's cheapest bound
        if r["impl"] == "simdsoftmax":
            for peer in ("numpy", "scipy"):
                assert r[f"speedup_vs_{peer}"] == pytest.approx(peer_time[(peer, r["function"])] / r["time_s"])
            assert r["speedup_vs_torch"] is None


def test_every_isa_and_thread_count_is_restored(tmp_path, capsys):
    json_path = tmp_path / "isas.json"
    isa_before, threads_before = ssm.isa(), ssm.get_num_threads()
    status, _, err = run(
        capsys, "--sizes", "1KiB", "--repeats", "3", "--isa", "all", "--threads", "1,2",
        "--functions", "softmax", "--algorithms", "two-pass", "--dtypes", "float32,float64",
        "--split-probes", "always", "--json", json_path, "--quiet",
    )  # fmt: skip
    assert status == 0, err
    assert ssm.isa() == isa_before and ssm.get_num_threads() == threads_before
    _, records = load_records(json_path)
    kernels = {(r["isa"], r["dtype"], r["threads"]) for r in records if r["impl"] == "simdsoftmax"}
    assert kernels == {
        (isa, dtype, t) for isa in ssm.available_isas() for dtype in ("float32", "float64") for t in (1, 2)
    }
    split = {(r["threads"], r["probe_threads"]) for r in records if r["impl"] == "probe"}
    assert split == {(1, 1), (2, 1), (2, 2)}  # with 2 threads the probes also run split in two
    assert {r["n"] for r in records if r["dtype"] == "float64"} == {128}


@pytest.mark.parametrize("sizes", [["--sizes", "1KiB,8KiB,1001"], ["--shape", "3x257"]])
def test_half_dtypes_with_their_own_bound(tmp_path, capsys, sizes):
    """--dtypes float16,bfloat16: 2-byte inputs, results in the same format, and
    bounds from probes over the same bytes (the half-width bound)."""
    pytest.importorskip("ml_dtypes")
    json_path = tmp_path / "half.json"
    status, out, err = run(capsys, *sizes, "--repeats", "3", "--threads", "1", "--dtypes", "float16,bf16",
                           "--functions", "softmax,log_softmax,logsumexp", "--algorithms", "auto",
                           "--json", json_path, "--quiet")  # fmt: skip
    assert status == 0, err
    assert "== softmax: float16" in out and "== softmax: bfloat16" in out
    _, records = load_records(json_path)
    assert {r["dtype"] for r in records} == {"float16", "bfloat16"}
    probes = by_group(records)
    for r in records:
        assert r["size_bytes"] == 2 * r["n"] * r["rows"]
        if r["impl"] == "simdsoftmax":
            best = probes[(r["isa"], r["dtype"], r["threads"], r["size_bytes"])]
            expected = (r["reads"] - r["writes"]) * best["read"] + r["writes"] * best["copy"]
            assert r["bound_s"] == pytest.approx(expected)
    functions = {(r["dtype"], r["function"]) for r in records if r["impl"] == "simdsoftmax"}
    assert functions == {(d, f) for d in ("float16", "bfloat16") for f in ("softmax", "log_softmax", "logsumexp")}


def test_bfloat16_without_ml_dtypes_is_refused(capsys, monkeypatch, no_sweep):
    import sys

    monkeypatch.setitem(sys.modules, "ml_dtypes", None)  # import fails
    status, _, err = run(capsys, *TINY, "--dtypes", "bfloat16")
    assert status != 0 and "ml_dtypes" in err


def test_element_count_sizes(tmp_path, capsys):
    json_path = tmp_path / "n.json"
    status, _, err = run(capsys, "--sizes", "1000", "--repeats", "3", "--threads", "1",
                         "--functions", "logsumexp", "--dtypes", "float64", "--json", json_path)  # fmt: skip
    assert status == 0, err
    _, records = load_records(json_path)
    assert {(r["n"], r["size_bytes"]) for r in records} == {(1000, 8000)}


def test_batch_shapes_with_peers(tmp_path, capsys):
    pytest.importorskip("scipy")
    json_path, csv_path = tmp_path / "shapes.json", tmp_path / "shapes.csv"
    status, out, err = run(
        capsys, "--shape", "300x5", "--shape", "3x1000,64x16", "--repeats", "3", "--threads", "1",
        "--functions", "softmax,log_softmax,logsumexp", "--algorithms", "two-pass,auto",
        "--compare", "numpy,scipy", "--json", json_path, "--csv", csv_path, "--quiet",
    )  # fmt: skip
    assert status == 0, err
    assert "300x5" in out and "3x1000" in out and "64x16" in out and "batch shapes" in out
    doc, records = load_records(json_path)
    assert doc["config"]["batched"] is True
    assert doc["config"]["shapes"] == {"float32": [[300, 5], [3, 1000], [64, 16]]}
    shapes = {(r["rows"], r["n"]) for r in records}
    assert shapes == {(300, 5), (3, 1000), (64, 16)}
    probes = {}
    for r in records:
        if r["impl"] == "probe":
            probes.setdefault((r["rows"], r["n"]), {})[r["function"]] = r["time_s"]
    peer_time = {(r["impl"], r["function"], r["rows"], r["n"]): r["time_s"] for r in records if r["impl"] in bench.PEERS}
    for r in records:
        assert list(r) == FIELDS
        assert r["size_bytes"] == r["rows"] * r["n"] * 4
        assert r["elements_per_s"] == pytest.approx(r["rows"] * r["n"] / r["time_s"])
        if r["impl"] == "probe":
            continue
        # the bound: this shape's own probes, over the batch's bytes
        best = probes[(r["rows"], r["n"])]
        assert r["bound_s"] == pytest.approx((r["reads"] - r["writes"]) * best["read"] + r["writes"] * best["copy"])
        if r["impl"] == "simdsoftmax":
            for peer in ("numpy", "scipy"):
                t = peer_time[(peer, r["function"], r["rows"], r["n"])]
                assert r[f"speedup_vs_{peer}"] == pytest.approx(t / r["time_s"])
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(int(row["rows"]), int(row["n"])) for row in rows] == [(r["rows"], r["n"]) for r in records]


def test_batch_workloads_reduce_each_row():
    """Every implementation the bench times on a batch computes per-row results (not one over the batch)."""
    scipy_special = pytest.importorskip("scipy.special")
    work = bench.Workload(7, "float64", 0, rows=5)
    x = work.x.copy()
    want = np.exp(x - x.max(axis=1, keepdims=True))
    want /= want.sum(axis=1, keepdims=True)
    for make in (lambda: bench.FUNCTIONS["softmax"].make(work, "two-pass"),
                 lambda: bench.FUNCTIONS["softmax"].peers["numpy"](np, work),
                 lambda: bench.FUNCTIONS["softmax"].peers["scipy"](scipy_special, work)):  # fmt: skip
        work.out.fill(0)
        result = make()()
        got = work.out if result is None or np.shape(result) != x.shape else result
        np.testing.assert_allclose(got, want, rtol=1e-12)
    lse = np.log(np.exp(x).sum(axis=1))
    np.testing.assert_allclose(np.ravel(bench.FUNCTIONS["logsumexp"].make(work, None)()), lse, rtol=1e-12)
    np.testing.assert_allclose(np.ravel(bench.FUNCTIONS["logsumexp"].peers["numpy"](np, work)()), lse, rtol=1e-12)
    np.testing.assert_allclose(np.ravel(bench.FUNCTIONS["logsumexp"].peers["scipy"](scipy_special, work)()), lse,
                               rtol=1e-12)  # fmt: skip


def test_row_length_sweep(tmp_path, capsys):
    json_path = tmp_path / "rows.json"
    status, out, err = run(capsys, "--row-lengths", "2,3,100", "--batch-elements", "1Ki", "--repeats", "3",
                           "--threads", "1", "--functions", "logsumexp", "--json", json_path, "--quiet")  # fmt: skip
    assert status == 0, err
    _, records = load_records(json_path)
    assert list(dict.fromkeys((r["rows"], r["n"]) for r in records)) == [(512, 2), (341, 3), (10, 100)]


def test_split_probes_only_where_threads_pay(tmp_path, capsys):
    # Handing 1 KiB to a pool thread costs microseconds; reading it costs nanoseconds.
    json_path = tmp_path / "split.json"
    status, _, err = run(capsys, "--sizes", "1KiB", "--repeats", "3", "--threads", "2",
                         "--functions", "logsumexp", "--json", json_path, "--quiet")  # fmt: skip
    assert status == 0, err
    _, records = load_records(json_path)
    assert {r["probe_threads"] for r in records if r["impl"] == "probe"} == {1}


def test_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="matplotlib is the optional [plot] extra")
    png = tmp_path / "gbps.png"
    status, _, err = run(capsys, *TINY, "--compare", "numpy", "--plot", png)
    assert status == 0, err
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


def test_module_entry_point_in_subprocess():
    # Not a terminal: no progress bar, so stderr stays empty.
    proc = subprocess.run(
        [sys.executable, "-m", "simdsoftmax.bench", "--sizes", "1KiB", "--repeats", "3",
         "--threads", "1", "--functions", "logsumexp"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "== logsumexp" in proc.stdout and "== bandwidth probes" in proc.stdout
    assert proc.stderr == ""


def test_console_script_installed():
    exe = shutil.which("simdsoftmax-bench")
    if exe is None:
        pytest.skip("simdsoftmax-bench is not on PATH (package not installed as a distribution)")
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and ssm.__version__ in proc.stdout


def test_list(capsys):
    status, out, _ = run(capsys, "--list")
    assert status == 0
    for name in [*bench.FUNCTIONS, *bench.ALGORITHMS, *bench.PEERS, *bench.RECORD_FIELDS]:
        assert name in out


def test_ctrl_c_prints_what_was_measured(tmp_path, capsys, monkeypatch):
    measure = bench.Sweep.measure_group
    calls = []

    def interrupt_second_size(self, work, *args, **kwargs):
        calls.append(work.n)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return measure(self, work, *args, **kwargs)

    monkeypatch.setattr(bench.Sweep, "measure_group", interrupt_second_size)
    isa_before = ssm.isa()
    json_path, csv_path = tmp_path / "partial.json", tmp_path / "partial.csv"
    status, out, err = run(capsys, *TINY, "--json", json_path, "--csv", csv_path)
    assert status == 130
    assert "interrupted" in err
    tables = out.split("\n\n", 1)[1]  # after the runtime header (which names cache sizes)
    assert "== softmax" in tables and "1 KiB" in tables and "8 KiB" not in tables
    doc, records = load_records(json_path)
    assert doc["interrupted"] is True
    assert records and {r["size_bytes"] for r in records} == {1024}
    with open(csv_path, newline="") as f:
        assert len(list(csv.DictReader(f))) == len(records)
    assert ssm.isa() == isa_before


# -- bad input: one line on stderr, exit status 2, nothing measured or written --


@pytest.fixture
def no_sweep(monkeypatch):
    def refuse(sweep):
        raise AssertionError("the sweep started despite bad arguments")

    monkeypatch.setattr(bench.cli, "run_sweep", refuse)


def assert_refused(capsys, argv, tmp_path, *, message=None):
    json_path = tmp_path / "never.json"
    status, out, err = run(capsys, *argv, "--json", json_path)
    assert status == 2
    assert out == ""  # not even the header: refused before any work
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("simdsoftmax-bench: error: "), err
    if message:
        assert message in lines[0]
    assert not json_path.exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--functions", "nosuch"], "unknown function 'nosuch'"),
        (["--functions", "softmax,sofmax"], "unknown function 'sofmax'"),
        (["--algorithms", "fastest"], "unknown algorithm 'fastest'"),
        (["--isa", "sse9"], "unknown kernel set 'sse9'"),
        (["--dtypes", "int8"], "unsupported dtype 'int8'"),
        (["--threads", "0"], "--threads"),
        (["--threads", "two"], "--threads"),
        (["--sizes", "12 parsecs"], "--sizes"),
        (["--sizes", "0"], "--sizes"),
        (["--sizes", "1KiB:1MiB:1"], "--sizes"),
        (["--sizes", "1B"], "smaller than one float32 element"),
        (["--sizes", "512TiB"], "memory"),
        (["--max-bytes", "lots"], "--max-bytes"),
        (["--sizes", "1MiB", "--max-bytes", "4KiB"], "no size left"),
        (["--compare", "matlab"], "unknown peer 'matlab'"),
        (["--repeats", "0"], "--repeats"),
        (["--time-per-point", "-1"], "--time-per-point"),
        (["--warmup", "x"], "--warmup"),
        (["--shape", "64"], "--shape"),
        (["--shape", "0x64"], "--shape"),
        (["--shape", "8x8", "--sizes", "1KiB"], "not both"),
        (["--shape", "8x8", "--rows-sweep"], "cannot be combined"),
        (["--batch-elements", "lots"], "--batch-elements"),
        (["--row-lengths", "2,0"], "--row-lengths"),
        (["--shape", "4x1024", "--max-bytes", "1KiB"], "no size left"),
        (["--shape", "1000000x1000000"], "memory"),
        (["--split-probes", "sometimes"], "--split-probes"),
        (["--bogus-option"], "unrecognized arguments"),
    ],
)
def test_bad_arguments(argv, message, capsys, tmp_path, no_sweep):
    assert_refused(capsys, argv, tmp_path, message=message)


def test_bad_output_paths(capsys, tmp_path, no_sweep):
    missing_dir = tmp_path / "no" / "such" / "dir" / "x.csv"
    assert_refused(capsys, ["--csv", missing_dir], tmp_path, message="does not exist")
    assert_refused(capsys, ["--csv", tmp_path], tmp_path, message="is a directory")
    assert_refused(capsys, ["--plot", tmp_path / "plot.txt"], tmp_path, message=".png")
    assert not missing_dir.parent.exists()


def test_plot_without_matplotlib_is_refused(capsys, tmp_path, monkeypatch, no_sweep):
    real = bench.have_module
    monkeypatch.setattr(bench.plan, "have_module", lambda name: name != "matplotlib" and real(name))
    assert_refused(capsys, ["--plot", tmp_path / "p.png"], tmp_path, message="pip install simdsoftmax[plot]")


def test_isa_the_cpu_lacks(capsys, tmp_path, no_sweep):
    missing = [name for name in bench.KNOWN_ISAS if name not in ssm.available_isas()]
    if not missing:
        pytest.skip("this CPU and build run every kernel set")
    assert_refused(capsys, ["--isa", missing[0]], tmp_path, message=repr(missing[0]))


def test_function_missing_from_this_build(capsys, tmp_path, monkeypatch, no_sweep):
    monkeypatch.setattr(bench.BenchFunction, "available", lambda self: self.name != "logsumexp")
    assert_refused(capsys, ["--functions", "softmax,logsumexp"], tmp_path, message="not available")


def test_unwritable_file(capsys, tmp_path, no_sweep):
    if os.geteuid() == 0:
        pytest.skip("root can write read-only files")
    target = tmp_path / "locked.json"
    target.write_text("{}")
    target.chmod(0o444)
    status, out, err = run(capsys, "--json", target)
    assert status == 2 and out == "" and "not writable" in err


# -- bench/rows.py: the batch targets script (in a source checkout only) -----

ROWS_SCRIPT = os.path.join(os.path.dirname(__file__), os.pardir, "bench", "rows.py")


@pytest.fixture
def rows_script():
    if not os.path.exists(ROWS_SCRIPT):
        pytest.skip("bench/rows.py is not next to the tests (installed-wheel run)")
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_rows", ROWS_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _medians(ours, torch=None, scipy=None, read=1.0, copy=2.0, threads=1):
    """Synthetic medians for rows.py's verdicts: ours/torch/scipy per function, probes."""
    med = {("probe", "read", threads): read, ("probe", "copy", threads): copy}
    for fn, t in ours.items():
        med[("ours", "avx2", fn, threads)] = t
    for fn, t in (torch or {}).items():
        med[("torch", fn, threads)] = t
    for fn, t in (scipy or {}).items():
        med[("scipy", fn)] = t
    return med


def test_rows_verdicts(rows_script):
    fast = {"softmax": 10.0, "log_softmax": 10.0, "logsumexp": 5.0}
    peers = {fn: 100.0 for fn in fast}
    _, cells, missed = rows_script.verdicts(_medians(fast, peers, peers), "avx2", 1, 1 << 20, 1000, 32 << 20)
    assert missed == [] and cells["torch sm"] == 10.0 and cells["lse/sm"] == 0.5
    # torch only 1.5x slower: a miss, unless ours streams at >= 0.85 of the bound (read + copy = 3 s)
    torch = dict(peers, softmax=15.0)
    _, _, missed = rows_script.verdicts(_medians(fast, torch, peers), "avx2", 1, 1 << 20, 1000, 32 << 20)
    assert missed == ["torch:sm"]
    _, _, missed = rows_script.verdicts(_medians(fast, torch, peers, read=4.0, copy=5.0), "avx2", 1, 1 << 20,
                                        1000, 32 << 20)  # fmt: skip
    assert missed == []
    slow = {"softmax": 10.0, "log_softmax": 11.0, "logsumexp": 7.0}
    _, _, missed = rows_script.verdicts(_medians(slow, peers, peers), "avx2", 1, 1 << 20, 1000, 32 << 20)
    assert missed == ["lsm/sm", "lse/sm"]
    # out of cache (>= 4 x LLC) and n >= 8: efficiency counts; n < 8 it does not
    _, _, missed = rows_script.verdicts(_medians(fast, peers, peers), "avx2", 1, 256 << 20, 1000, 32 << 20)
    assert missed == ["eff:sm", "eff:lsm", "eff:lse"]
    _, _, missed = rows_script.verdicts(_medians(fast, peers, peers), "avx2", 1, 256 << 20, 5, 32 << 20)
    assert missed == []


def test_rows_thread_verdicts(rows_script):
    med = {("probe", "read", 1): 2.0, ("probe", "read", 2): 1.0}
    for fn, (t1, t2) in {"softmax": (2.0, 1.1), "log_softmax": (2.0, 1.5), "logsumexp": (1.0, 1.04)}.items():
        med[("ours", "avx2", fn, 1)], med[("ours", "avx2", fn, 2)] = t1, t2
    cells, missed = rows_script.thread_verdicts(med, "avx2", 64 << 20, 2)
    assert cells["read"] == 2.0
    assert missed == ["vs-read:lsm", "slower:lse"]
    _, missed = rows_script.thread_verdicts(med, "avx2", 1 << 20, 2)  # small: only "never slower"
    assert missed == ["slower:lse"]


def test_rows_script_runs(tmp_path):
    if not os.path.exists(ROWS_SCRIPT):
        pytest.skip("bench/rows.py is not next to the tests (installed-wheel run)")
    json_path = tmp_path / "rows.json"
    proc = subprocess.run(
        [sys.executable, ROWS_SCRIPT, "--elements", "4Ki", "--row-lengths", "2,100", "--dtypes", "float32",
         "--repeats", "1", "--threads", "1,2", "--peers", "scipy", "--json", str(json_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "python bench/rows.py --json bench/results/rows.json" in out  # the regenerate command
    assert "2 threads / 1 thread" in out and "summary: targets met" in out and "verdict" in out
    with open(json_path) as f:
        doc = json.load(f)
    shapes = {(m["rows"], m["n"]) for m in doc["results"]["medians"]}
    assert shapes == {(2048, 2), (40, 100), (1, 4096)}
