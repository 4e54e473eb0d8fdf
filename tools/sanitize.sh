#!/usr/bin/env bash
# Build the extension with AddressSanitizer + UndefinedBehaviorSanitizer
# (CMake option SIMDSOFTMAX_SANITIZE) into a fresh virtual environment and run
# the test suite under it.
#
#   tools/sanitize.sh [PYTEST ARGS...]     (default: -q tests, the whole suite)
#
# PYTEST ARGS are relative to the repository root, e.g. tests/test_fuzz_softmax.py -x.
# SANITIZE_WORKDIR=DIR keeps the venv and build there (reused by the next run).
# SANITIZE_SHARDS=N splits the tests over N processes run at the same time.
#
# Linux + GCC or Clang. Python itself is not instrumented, so the ASan runtime
# has to be loaded first (LD_PRELOAD) for its malloc interposition to see
# every allocation; the extension's own ASan/UBSan references then resolve to
# it. Leak detection is off: CPython keeps objects alive until exit by design.
# Any finding aborts the run (UBSan: -fno-sanitize-recover; ASan: always).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
python=${PYTHON:-python3}
work=${SANITIZE_WORKDIR:-$(mktemp -d)}
[ -n "${SANITIZE_WORKDIR:-}" ] || trap 'rm -rf "$work"' EXIT

cxx=${CXX:-c++}
libasan=$("$cxx" -print-file-name=libasan.so)
if [ ! -e "$libasan" ]; then
  echo "sanitize.sh: $cxx has no libasan.so ($libasan); install the compiler's ASan runtime" >&2
  exit 2
fi
# The C++ runtime is preloaded too: ASan looks up the real __cxa_throw when it
# starts, and python does not link libstdc++, so the first C++ exception (a
# ValueError from _core) would abort in ASan's interceptor instead.
libstdcxx=$("$cxx" -print-file-name=libstdc++.so.6)
preload="$libasan${libstdcxx:+ $libstdcxx}"

[ -x "$work/venv/bin/python" ] || "$python" -m venv "$work/venv"
# A private build directory: never mix sanitizer objects into build/ (the
# editable install's) or the other way round.
"$work/venv/bin/pip" install -q \
  -C cmake.define.SIMDSOFTMAX_SANITIZE=ON -C cmake.build-type=RelWithDebInfo -C build-dir="$work/build" \
  "$repo[test]"

export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# Python objects through malloc too, so ASan sees their bounds (not pymalloc's arenas).
export PYTHONMALLOC=malloc
# The > 2^31-element tests would need far more memory and time under ASan; skip them here.
export SIMDSOFTMAX_TEST_HUGE=0

# From the repository root: the package lives under python/, so `import
# simdsoftmax` still finds only the instrumented install (checked here).
cd "$repo"
LD_PRELOAD="$preload" "$work/venv/bin/python" -c '
import sys, simdsoftmax
assert simdsoftmax.__file__.startswith(sys.argv[1]), f"imported {simdsoftmax.__file__}, not the sanitized build"
print("sanitized build:", simdsoftmax._core.__file__)
' "$work/venv"
[ $# -gt 0 ] || set -- -q tests
# --capture=sys: pytest must not capture file descriptor 2, or a sanitizer's
# report (written there just before the process aborts) is lost with it.
run_tests() { LD_PRELOAD="$preload" "$work/venv/bin/python" -m pytest -p no:cacheprovider --capture=sys "$@"; }
shards=${SANITIZE_SHARDS:-1}
if [ "$shards" -le 1 ]; then
  run_tests "$@"
  exit 0
fi
# SANITIZE_SHARDS=N: N processes at once, each every N-th test
# (tests/conftest.py), each into its own log, printed afterwards.
logs=$(mktemp -d)
pids=()
for ((i = 0; i < shards; i++)); do
  SIMDSOFTMAX_TEST_SHARD="$i/$shards" run_tests "$@" >"$logs/$i.log" 2>&1 &
  pids+=($!)
done
failed=0
for ((i = 0; i < shards; i++)); do
  status=0
  wait "${pids[$i]}" || status=$?
  echo "== sanitizer shard $i/$shards"
  cat "$logs/$i.log"
  [ "$status" = 0 ] || { echo "sanitizers: shard $i/$shards FAILED (exit $status)"; failed=1; }
done
rm -rf "$logs"
[ "$failed" = 0 ]
