#!/usr/bin/env bash
# SciPy's own special/tests/test_logsumexp.py under SCIPY_ARRAY_API=1, run
# once as shipped and once with only its import of softmax / log_softmax /
# logsumexp swapped to simdsoftmax; compares the passed cases per array
# backend (numpy, torch, dask.array, array_api_strict, jax.numpy: whichever
# are installed). Fails if simdsoftmax passes fewer cases than SciPy on any
# backend.
#
# Usage: tools/scipy_array_api_tests.sh [extra pytest args]
# SCIPY_ARRAY_API='["numpy","torch"]' selects backends (default 1: all installed).
# Needs: scipy, pytest, simdsoftmax installed in the running python.
set -euo pipefail

PYTHON=${PYTHON:-python}
# The tests run from a temporary folder: a relative interpreter path (such as
# .ci/run's .venv/bin/python) is made absolute first, keeping the venv's own
# bin/ (not the interpreter the symlink points at).
case $PYTHON in */*) PYTHON="$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")" ;; esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

src=$("$PYTHON" -c 'import os, scipy.special; print(os.path.join(os.path.dirname(scipy.special.__file__), "tests", "test_logsumexp.py"))')
for side in scipy simdsoftmax; do
  mkdir -p "$work/$side"
  cp "$src" "$work/$side/test_logsumexp.py"
  # SciPy's fixtures (xp, devices, the xp markers) come from its conftest.
  printf 'from scipy.conftest import *  # noqa: F401,F403\n' > "$work/$side/conftest.py"
done
# make_xp_test_case looks each tested function up in SciPy's capabilities
# table (which backends to skip or xfail, which to run lazily: JAX under
# jax.jit, Dask without compute); simdsoftmax's functions get the entries of
# the SciPy functions they replace, so both sides run under the same marks.
cat >> "$work/simdsoftmax/conftest.py" <<'PY'
import scipy.special
from scipy._lib._array_api import xp_capabilities_table as _table

import simdsoftmax

for _name in ("softmax", "log_softmax", "logsumexp"):
    _table.setdefault(getattr(simdsoftmax, _name), _table[getattr(scipy.special, _name)])
PY
sed -i 's/^from scipy\.special import log_softmax, logsumexp, softmax$/from simdsoftmax import log_softmax, logsumexp, softmax/' \
  "$work/simdsoftmax/test_logsumexp.py"
if ! grep -q '^from simdsoftmax import log_softmax, logsumexp, softmax$' "$work/simdsoftmax/test_logsumexp.py"; then
  echo "scipy_array_api_tests: the import line of $src changed; update the sed above" >&2
  exit 2
fi

count() {  # side -> "backend passed" lines
  local side=$1
  shift
  (cd "$work/$side" && SCIPY_ARRAY_API=${SCIPY_ARRAY_API:-1} "$PYTHON" -m pytest -q -rN -p no:cacheprovider -o addopts="" \
      --junitxml="$work/$side.xml" test_logsumexp.py "$@" >"$work/$side.log" 2>&1) || true
  "$PYTHON" - "$work/$side.xml" <<'PY'
import collections, re, sys
import xml.etree.ElementTree as ET
passed = collections.Counter()
for case in ET.parse(sys.argv[1]).iter("testcase"):
    if any(child.tag in ("failure", "error", "skipped") for child in case):
        continue
    m = re.search(r"\b(numpy|torch|dask\.array|array_api_strict|jax\.numpy|cupy)\b", case.get("name", ""))
    passed[m.group(1) if m else "no-backend"] += 1
for backend, n in sorted(passed.items()):
    print(backend, n)
PY
}

count scipy "$@" > "$work/scipy.counts"
count simdsoftmax "$@" > "$work/simdsoftmax.counts"

status=0
printf '%-18s %8s %12s\n' backend scipy simdsoftmax
for backend in $(cut -d' ' -f1 "$work/scipy.counts" "$work/simdsoftmax.counts" | sort -u); do
  s=$(awk -v b="$backend" '$1 == b {print $2}' "$work/scipy.counts"); s=${s:-0}
  o=$(awk -v b="$backend" '$1 == b {print $2}' "$work/simdsoftmax.counts"); o=${o:-0}
  mark=""
  if [ "$o" -lt "$s" ]; then mark="  <- fewer"; status=1; fi
  printf '%-18s %8d %12d%s\n' "$backend" "$s" "$o" "$mark"
done
if [ "$status" -ne 0 ]; then
  echo "--- simdsoftmax failures (last lines of the log) ---"
  grep -E '^(FAILED|ERROR)' "$work/simdsoftmax.log" | head -40 || true
  tail -3 "$work/simdsoftmax.log"
fi
exit $status
