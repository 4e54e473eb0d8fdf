"""The promises the repository makes about itself: the README opens with the
two fresh-machine commands, and CI runs the README's test command verbatim."""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    not (ROOT / "CMakeLists.txt").exists(), reason="tests run outside a source checkout (e.g. against a wheel)"
)


def readme_commands():
    text = (ROOT / "README.md").read_text()
    head = text[: text.index("## ")]  # everything before the first section
    return re.findall(r"```bash\n(.+?)\n```", head)


def test_ci_runs_the_readme_test_command():
    bench, test = readme_commands()
    assert "simdsoftmax-bench" in bench and "pip install ." in bench
    assert "pytest" in test
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in ci_lines


def test_no_native_tuning_in_the_default_build():
    cmake = (ROOT / "CMakeLists.txt").read_text()
    for line in cmake.splitlines():
        if "-march=native" in line and not line.lstrip().startswith("#"):
            assert "opt-in" in line or "option(" in line, line
