"""The wheel matrix: `cibuildwheel --print-build-identifiers` lists exactly the
wheels the project promises (pyproject.toml, [tool.cibuildwheel])."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
PYTHONS = ["cp310", "cp311", "cp312", "cp313", "cp314"]

EXPECTED = {
    "linux": [
        f"{py}-{libc}_{arch}"
        for libc in ("manylinux", "musllinux")
        for arch in ("x86_64", "aarch64")
        for py in PYTHONS
    ],
    # Two thin wheels, not universal2.
    "macos": [f"{py}-macosx_{arch}" for arch in ("x86_64", "arm64") for py in PYTHONS],
    "windows": [f"{py}-win_amd64" for py in PYTHONS],
}


@pytest.mark.skipif(
    importlib.util.find_spec("cibuildwheel") is None, reason="cibuildwheel is not installed (pip install cibuildwheel)"
)
@pytest.mark.skipif(not (PROJECT / "pyproject.toml").exists(), reason="no pyproject.toml beside the tests")
@pytest.mark.parametrize("platform", sorted(EXPECTED))
def test_build_identifiers(platform):
    # Only pyproject.toml decides: CIBW_* variables of an enclosing cibuildwheel run are dropped.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIBW_")}
    result = subprocess.run(
        [sys.executable, "-m", "cibuildwheel", "--print-build-identifiers", "--platform", platform, str(PROJECT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == sorted(EXPECTED[platform])
