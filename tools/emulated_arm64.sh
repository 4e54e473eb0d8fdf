#!/usr/bin/env bash
# Cross-build the extension for aarch64 and run the test suite under
# qemu-aarch64 user emulation with an aarch64 CPython, NumPy and SciPy:
#
#   tools/emulated_arm64.sh                 the emulated test subset (below)
#   tools/emulated_arm64.sh tests/x.py ...  these pytest arguments instead
#
# From a clean Debian/Ubuntu x86-64 machine, as root, it installs what it
# needs: the cross compiler (g++-aarch64-linux-gnu), qemu-user and cmake with
# apt-get; Debian's arm64 CPython (and its libraries, through the arm64
# multiarch package lists) unpacked with dpkg -x into a private root, never
# installed on the host; NumPy, SciPy, pytest, hypothesis and mpmath as
# manylinux aarch64 wheels from PyPI into that root; pybind11's headers from
# PyPI for the host. Then it builds with CMake and an aarch64 toolchain file
# (the aarch64 Python headers come from Debian's libpython3.X-dev:arm64) and
# runs pytest in the emulated interpreter, which must pick the neon kernels:
# every kernel test runs neon and scalar and compares them with the float64
# references and with each other bit for bit (the Gumbel noise and draws).
#
# Everything lives under build/arm64 (SIMDSOFTMAX_ARM64_DIR): a second run
# reuses the root and rebuilds incrementally. Emulated CPython runs ~10-20x
# slower than native, so the statistical, large-row and benchmark tests stay
# with the native runs (the same generic kernels, on x86 lane types).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=${SIMDSOFTMAX_ARM64_DIR:-$repo/build/arm64}
root=$work/sysroot
start=$SECONDS
stamp() { echo "emulated arm64: $1 ($((SECONDS - start)) s)"; }

if [ "$(uname -m)" != x86_64 ]; then
  echo "emulated_arm64.sh: x86-64 hosts only (on arm64, build and test natively); skipped"
  exit 0
fi
as_root() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "emulated_arm64.sh: needs $1 (Debian/Ubuntu, as root: this script installs it)" >&2
    exit 2
  fi
}

# --- host tools -----------------------------------------------------------
need=()
command -v aarch64-linux-gnu-g++ >/dev/null || need+=(g++-aarch64-linux-gnu)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
command -v cmake >/dev/null || need+=(cmake)
updated=0
if [ ${#need[@]} -gt 0 ]; then
  as_root "${need[*]}"
  apt-get update -qq
  updated=1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  stamp "installed ${need[*]}"
fi

# --- the aarch64 root: Debian's CPython, PyPI's wheels ----------------------
if [ ! -e "$root/.complete" ]; then
  as_root "Debian's arm64 packages"
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64  # package lists only: nothing arm64 is installed on the host
    updated=0
  fi
  [ "$updated" = 1 ] || apt-get update -qq
  # The CPython that Debian's python3-minimal names, e.g. python3.11.
  py=$(apt-cache depends python3-minimal:arm64 | sed -n 's/.*Depends: \(python3\.[0-9]*\)-minimal.*/\1/p' | head -n1)
  [ -n "$py" ] || { echo "emulated_arm64.sh: no arm64 python3-minimal in the package lists" >&2; exit 2; }
  # Its run-time closure (arm64 libraries only; the host's tools and
  # architecture-independent data are not needed), plus the headers.
  pkgs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
           --no-replaces --no-enhances "$py:arm64" 2>/dev/null |
         grep -E '^[a-z0-9][^ ]*:arm64$' | grep -vE '^(dpkg|tar|install-info|perl[a-z-]*):' | sort -u)
  rm -rf "$root" "$work/debs"
  mkdir -p "$root" "$work/debs"
  (cd "$work/debs" && apt-get download -qq $pkgs "lib$py-dev:arm64" "libstdc++6:arm64" 2>&1 |
                      grep -v "couldn't be accessed by user '_apt'" || true)
  for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$root"; done
  echo "$py" >"$root/.python"
  stamp "unpacked $(ls "$work"/debs/*.deb | wc -l) arm64 packages for $py"

  site=$root/usr/local/lib/$py/dist-packages  # on Debian's sys.path
  mkdir -p "$site"
  python3 -m pip install -q --disable-pip-version-check --no-compile --target "$site" \
    --platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64 --implementation cp \
    --python-version "${py#python}" --only-binary=:all: \
    "numpy>=1.23" "tqdm>=4.60" "pytest>=7" "scipy>=1.11" "mpmath>=1.3" "hypothesis==6.170.15" 2>&1 |
    grep -vE "^WARNING: (Location|Running pip as)|dependency resolver|requires .* but you have|^ERROR: pip's" || true
  [ -d "$site/numpy" ] || { echo "emulated_arm64.sh: installing the aarch64 wheels failed" >&2; exit 2; }
  # Byte-compile once: emulated compilation is slow, and PYTHONDONTWRITEBYTECODE
  # may be set. The host's CPython writes the same .pyc when it is the same
  # minor version; otherwise the emulated one does it.
  if python3 -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '${py#python}'.split('.'))))"; then
    python3 -m compileall -q -j 2 "$root/usr/lib/$py" "$site" >/dev/null 2>&1 || true
  else
    qemu-aarch64 -L "$root" "$root/usr/bin/$py" -m compileall -q "$root/usr/lib/$py" "$site" >/dev/null 2>&1 || true
  fi
  touch "$root/.complete"
  stamp "aarch64 $py root with NumPy and SciPy ready"
fi
py=$(cat "$root/.python")
pyv=${py#python}
emu="qemu-aarch64 -L $root"
pyexe=$root/usr/bin/$py

# --- cross build ------------------------------------------------------------
if [ ! -d "$work/host/pybind11" ]; then
  python3 -m pip install -q --disable-pip-version-check --target "$work/host" "pybind11>=2.12" 2>&1 |
    grep -vE "^WARNING: (Location|Running pip as)" || true
fi
mkdir -p "$work/build"
cat >"$work/toolchain.cmake" <<'EOF'
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
EOF
# FindPython needs an interpreter for its version checks: the host's stands in
# (only Development.Module is used); the headers are the aarch64 ones. Debian's
# pyconfig.h includes <aarch64-linux-gnu/python3.X/pyconfig.h>, hence the
# -isystem of the root's /usr/include.
version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n1)
cmake -S . -B "$work/build" -DCMAKE_TOOLCHAIN_FILE="$work/toolchain.cmake" -DCMAKE_BUILD_TYPE=Release \
  -Dpybind11_DIR="$work/host/pybind11/share/cmake/pybind11" -DPython_EXECUTABLE="$(command -v python3)" \
  -DPython_INCLUDE_DIR="$root/usr/include/$py" -DCMAKE_CXX_FLAGS="-isystem $root/usr/include" \
  -DSKBUILD_PROJECT_VERSION="$version" >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; exit 1; }
cmake --build "$work/build" -j 2 >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
grep -E "warning:" "$work/build.log" || true
site=$work/site
rm -rf "$site" && mkdir -p "$site"
cp -r python/simdsoftmax "$site/"
rm -rf "$site/simdsoftmax/__pycache__"
so=$(ls "$work"/build/_core*.so)
cp "$so" "$site/simdsoftmax/_core.cpython-${pyv/./}-aarch64-linux-gnu.so"
stamp "cross-built $(basename "$so") for aarch64"

# --- tests --------------------------------------------------------------------
export PYTHONPATH=$site
export OPENBLAS_NUM_THREADS=1  # NumPy's OpenBLAS threads only slow the emulation
export SIMDSOFTMAX_TEST_EMULATOR="$emu" SIMDSOFTMAX_TEST_EXPECT_ISA=neon
export SIMDSOFTMAX_FUZZ_SCALE=${SIMDSOFTMAX_FUZZ_SCALE:-0.05} SIMDSOFTMAX_TEST_HUGE=0
unset PYTHONDONTWRITEBYTECODE  # the tests' own .pyc, written once

$emu "$pyexe" - <<'EOF'
import simdsoftmax as ssm
assert ssm._core.cpu_info()["neon"], ssm._core.cpu_info()
assert ssm.available_isas() == ["neon", "scalar"] and ssm.isa() == "neon", (ssm.available_isas(), ssm.isa())
ssm.show_runtime()
EOF

if [ $# -gt 0 ]; then
  $emu "$pyexe" -m pytest -q -p no:cacheprovider "$@"
  stamp "done"
  exit 0
fi
# Three emulated interpreters at once (two cores), each into its own log,
# printed afterwards: the kernel, API and sampling tests split in two halves
# (every other test, SIMDSOFTMAX_TEST_SHARD in tests/conftest.py), and the
# short-row and half tests. The deselected tests are statistical (millions of
# draws), large-row or exhaustive-ulp ones.
# Two slow ones run in part: float64 sums of 2^18-2^20 equal terms (their
# software-quad references take minutes each) at the offsets +-1e6 only, the
# largest rounding of the reduction's constant, and the pruned top-k walk
# against the unpruned one for many keys in float32 only.
deselect="not large_rows and not one_ulp and not categorical and not standard_gumbel and not plackett_luce and not long_rows and not llm_row and not right_frequency"
deselect+=" and (not far_from_zero or 1000000) and (not pruned_topk_levels_any_key or float32)"
main_tests="tests/test_softmax.py tests/test_log_softmax.py tests/test_logsumexp.py tests/test_exp.py tests/test_dispatch.py tests/test_errors.py tests/test_noise_golden.py tests/test_gumbel.py tests/test_api.py tests/test_sample.py tests/test_topk.py"
groups=("$main_tests" "$main_tests" "tests/test_rows.py tests/test_half.py")
shards=("0/2" "1/2" "")
# The short-row kernels at every group and vector tail, and the half
# conversions; their rows past the short-row limit (the row kernels, tested
# by the first groups), the half driver's long-row blocks and the thread
# splits are generic baseline code and stay with the native runs (their
# longdouble references are a software quad on aarch64: minutes emulated).
select=("$deselect" "$deselect"
        "not 1000] and not 1024] and not 4096] and not 6553 and not 6963 and not 70000 and not for_any_thread_count and not threads_give")
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
pids=()
for i in "${!groups[@]}"; do
  # shellcheck disable=SC2086
  SIMDSOFTMAX_TEST_SHARD="${shards[$i]}" \
    $emu "$pyexe" -m pytest -q -p no:cacheprovider ${groups[$i]} -k "${select[$i]}" >"$logs/$i.log" 2>&1 &
  pids+=($!)
done
failed=0
for i in "${!groups[@]}"; do
  status=0
  wait "${pids[$i]}" || status=$?
  echo "== ${groups[$i]}${shards[$i]:+ (shard ${shards[$i]})}"
  cat "$logs/$i.log"
  [ "$status" = 0 ] || { echo "emulated arm64: FAILED (exit $status): ${groups[$i]}"; failed=1; }
done
[ "$failed" = 0 ]
stamp "all passed"
