"""Choosing the kernel set: SIMDSOFTMAX_ISA at import (in fresh interpreters),
use_isa as setter and context manager, the thread setting, and show_runtime."""

import os
import shlex
import subprocess
import sys

import pytest

import simdsoftmax as ssm
from simdsoftmax import _runtime

KNOWN_ISAS = ["avx512", "avx2", "neon", "scalar"]

# Under CPU emulation (tools/emulated_cpus.sh) this process runs inside
# qemu-user, which does not follow exec: a child must be started under the
# same emulator, or it would run on the real CPU and pick that CPU's kernels.
EMULATOR = shlex.split(os.environ.get("SIMDSOFTMAX_TEST_EMULATOR", ""))


def run_python(code, **env):
    """Run `code` in a fresh interpreter with extra environment variables."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SIMDSOFTMAX_")}
    full_env.update(env)
    return subprocess.run(
        [*EMULATOR, sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=120
    )


# --------------------------------------------------------------------------
# SIMDSOFTMAX_ISA


@pytest.mark.parametrize("name", ssm.available_isas())
def test_env_forces_each_available_set(name):
    code = (
        "import simdsoftmax as ssm\n"
        "print(ssm.isa())\n"
        "print(round(float(ssm.softmax([1.0, 2.0, 3.0]).sum()), 6))\n"
    )
    result = run_python(code, SIMDSOFTMAX_ISA=name)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [name, "1.0"]


def test_env_is_case_insensitive():
    result = run_python("import simdsoftmax as ssm; print(ssm.isa())", SIMDSOFTMAX_ISA=" Scalar ")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "scalar"


@pytest.mark.parametrize("value", ["", "  "])
def test_empty_env_means_best(value):
    result = run_python("import simdsoftmax as ssm; print(ssm.isa())", SIMDSOFTMAX_ISA=value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ssm.available_isas()[0]


def test_env_unknown_name_fails_at_import():
    result = run_python("import simdsoftmax", SIMDSOFTMAX_ISA="nonsense")
    assert result.returncode != 0
    assert "ValueError" in result.stderr
    assert "SIMDSOFTMAX_ISA" in result.stderr and "nonsense" in result.stderr
    assert "unknown" in result.stderr


@pytest.mark.skipif(
    set(KNOWN_ISAS) <= set(ssm.available_isas()), reason="every kernel set runs on this machine"
)
def test_env_unsupported_name_fails_at_import():
    name = next(n for n in KNOWN_ISAS if n not in ssm.available_isas())
    result = run_python("import simdsoftmax", SIMDSOFTMAX_ISA=name)
    assert result.returncode != 0
    assert "SIMDSOFTMAX_ISA" in result.stderr and "not supported" in result.stderr


def test_env_unsupported_name_message(monkeypatch):
    # The unsupported path on any machine: pretend this CPU only runs scalar code.
    monkeypatch.setattr(_runtime, "available_isas", lambda: ["scalar"])
    monkeypatch.setenv("SIMDSOFTMAX_ISA", "avx2")
    before = ssm.isa()
    with pytest.raises(ValueError, match=r"SIMDSOFTMAX_ISA='avx2'.*not supported.*'scalar'"):
        _runtime._apply_environment()
    assert ssm.isa() == before


# --------------------------------------------------------------------------
# use_isa


@pytest.fixture
def restore_isa():
    before = ssm.isa()
    yield before
    _runtime._core.set_isa(before)  # not use_isa: a test may have patched its checks


@pytest.mark.skipif(
    not os.environ.get("SIMDSOFTMAX_TEST_EXPECT_ISA"),
    reason="only under CPU emulation (tools/emulated_cpus.sh sets SIMDSOFTMAX_TEST_EXPECT_ISA)",
)
def test_emulated_cpu_picks_the_expected_set():
    expected = os.environ["SIMDSOFTMAX_TEST_EXPECT_ISA"]
    assert ssm.available_isas()[0] == expected
    assert ssm.isa() == expected


def test_available_isas():
    names = ssm.available_isas()
    assert names[-1] == "scalar"
    assert set(names) <= set(KNOWN_ISAS)
    assert names == [n for n in KNOWN_ISAS if n in names]  # best first
    assert ssm.isa() in names


@pytest.mark.parametrize("name", ssm.available_isas())
def test_use_isa_as_setter(restore_isa, name):
    ssm.use_isa(name)
    assert ssm.isa() == name
    ssm.softmax([1.0, 2.0])


@pytest.mark.parametrize("name", ssm.available_isas())
def test_use_isa_as_context_manager(restore_isa, name):
    with ssm.use_isa(name) as active:
        assert active == name
        assert ssm.isa() == name
    assert ssm.isa() == restore_isa


def test_use_isa_restores_after_exception(restore_isa):
    with pytest.raises(KeyError):
        with ssm.use_isa("scalar"):
            assert ssm.isa() == "scalar"
            raise KeyError("boom")
    assert ssm.isa() == restore_isa


def test_use_isa_nests(restore_isa):
    names = ssm.available_isas()
    with ssm.use_isa("scalar"):
        with ssm.use_isa(names[0]):
            assert ssm.isa() == names[0]
        assert ssm.isa() == "scalar"
    assert ssm.isa() == restore_isa


def test_use_isa_setter_then_context_manager(restore_isa):
    ssm.use_isa("scalar")
    with ssm.use_isa(ssm.available_isas()[0]):
        pass
    assert ssm.isa() == "scalar"  # the with-block restores what the setter chose


def test_use_isa_unknown_name(restore_isa):
    with pytest.raises(ValueError, match="name='nonsense'.*unknown") as info:
        ssm.use_isa("nonsense")
    for name in ssm.available_isas():
        assert repr(name) in str(info.value)
    assert ssm.isa() == restore_isa


def test_use_isa_unsupported_name(monkeypatch, restore_isa):
    monkeypatch.setattr(_runtime, "available_isas", lambda: ["scalar"])
    with pytest.raises(ValueError, match=r"name='avx512'.*not supported.*'scalar'"):
        ssm.use_isa("avx512")
    assert ssm.isa() == restore_isa


def test_use_isa_not_a_string():
    with pytest.raises(TypeError, match="name"):
        ssm.use_isa(None)


def test_use_isa_in_a_fresh_process():
    code = (
        "import simdsoftmax as ssm\n"
        "best = ssm.isa()\n"
        "ssm.use_isa('scalar')\n"
        "assert ssm.isa() == 'scalar'\n"
        "try:\n"
        "    with ssm.use_isa(best):\n"
        "        assert ssm.isa() == best\n"
        "        raise RuntimeError\n"
        "except RuntimeError:\n"
        "    pass\n"
        "print(ssm.isa())\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "scalar"


# --------------------------------------------------------------------------
# Threads


def test_num_threads_roundtrip():
    before = ssm.get_num_threads()
    try:
        ssm.set_num_threads(1)
        assert ssm.get_num_threads() == 1
        ssm.set_num_threads(3)
        assert ssm.get_num_threads() == 3
    finally:
        ssm.set_num_threads(before)


@pytest.mark.parametrize("n", [0, -1, 1.5, "2", True, None])
def test_set_num_threads_rejects(n):
    before = ssm.get_num_threads()
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        ssm.set_num_threads(n)
    assert ssm.get_num_threads() == before


def test_num_threads_default():
    result = run_python("import simdsoftmax as ssm; print(ssm.get_num_threads())")
    assert result.returncode == 0, result.stderr
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert int(result.stdout) == expected


def test_num_threads_env():
    result = run_python("import simdsoftmax as ssm; print(ssm.get_num_threads())", SIMDSOFTMAX_NUM_THREADS="3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"


@pytest.mark.parametrize("value", ["0", "many"])
def test_num_threads_env_invalid(value):
    result = run_python("import simdsoftmax", SIMDSOFTMAX_NUM_THREADS=value)
    assert result.returncode != 0
    assert "SIMDSOFTMAX_NUM_THREADS" in result.stderr


# --------------------------------------------------------------------------
# show_runtime


def test_show_runtime_prints(capsys):
    assert ssm.show_runtime() is None
    printed = capsys.readouterr().out
    assert f"active kernel set:     {ssm.isa()}" in printed
    assert f"simdsoftmax {ssm.__version__}" in printed
    for name in ssm.available_isas():
        assert name in printed


def test_show_runtime_as_dict(capsys):
    info = ssm.show_runtime(as_dict=True)
    assert capsys.readouterr().out == ""
    assert info["kernel_sets"]["active"] == ssm.isa()
    assert info["kernel_sets"]["supported"] == ssm.available_isas()
    assert info["num_threads"] == ssm.get_num_threads()
    assert info["simdsoftmax"] == ssm.__version__
    assert set(info) >= {"numpy", "python", "platform", "cpu"}
    assert {"vendor", "brand", "features", "missing"} <= set(info["cpu"])


def test_show_runtime_reports_forced_set():
    result = run_python("import simdsoftmax as ssm; ssm.show_runtime()", SIMDSOFTMAX_ISA="scalar")
    assert result.returncode == 0, result.stderr
    assert "active kernel set:     scalar  (forced by SIMDSOFTMAX_ISA=scalar)" in result.stdout


def test_show_runtime_follows_use_isa(capsys, restore_isa):
    with ssm.use_isa("scalar"):
        ssm.show_runtime()
    assert "active kernel set:     scalar" in capsys.readouterr().out
