#!/usr/bin/env bash
# Run a representative part of the test suite on older x86-64 CPUs, emulated
# in user mode by qemu, against an installed simdsoftmax:
#
#   tools/emulated_cpus.sh [PYTHON]     (default: python3; give a venv's python)
#
#   qemu -cpu        CPUID says                       the dispatcher must pick
#   Haswell          AVX2+FMA, no AVX-512             avx2
#   Nehalem          SSE4.2, no AVX                   scalar
#   Haswell,-xsave   AVX2+FMA but no OSXSAVE: the     scalar  (CPUID alone is not
#                    OS enables no AVX state (XCR0)           enough; XGETBV decides)
#
# An illegal instruction anywhere (a kernel set chosen wrongly, or AVX code
# leaking into baseline code) kills the interpreter with SIGILL and fails.
# x86-64 Linux hosts only. Installs qemu-user from the distribution when run as
# root without it. A few minutes on 2 cores: emulated CPython is ~10x slower,
# so the statistical, large-row and benchmark tests are left to native runs
# (which exercise the same avx2 and scalar kernels on the real CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(command -v "${1:-python3}")  # qemu needs a path, it does not search PATH

if [ "$(uname -m)" != x86_64 ]; then
  echo "emulated_cpus.sh: x86-64 hosts only; skipped"
  exit 0
fi
if ! command -v qemu-x86_64 >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -qq qemu-user >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq qemu-user >/dev/null; }
  else
    echo "emulated_cpus.sh: needs qemu-x86_64 (Debian/Ubuntu: apt-get install qemu-user)" >&2
    exit 2
  fi
fi

# The emulated part: every kernel entry point at every vector tail, the API,
# dispatch (its child interpreters run emulated too), errors, threads and a
# slice of the fuzz examples.
subset=(tests/test_dispatch.py tests/test_softmax.py tests/test_log_softmax.py tests/test_logsumexp.py
        tests/test_exp.py tests/test_stores_and_probes.py tests/test_api.py tests/test_gumbel.py
        tests/test_errors.py tests/test_concurrency.py tests/test_fuzz_softmax.py tests/test_fuzz_logsumexp.py
        tests/test_fuzz_gumbel.py)
# Left to the native runs: statistical tests (millions of draws), rows of
# hundreds of thousands of elements (hours under emulation), and three that
# took two thirds of the emulated time while adding no code path to what the
# rest of the subset runs here: float64 sums of 2^18-2^20 equal terms (an
# AVX-512 rounding case; longdouble references of a million elements), the
# pruned top-k walk against the unpruned one for many keys and temperatures
# (the pruned walk also runs in test_topk_identical_across_isas_pruning_and_
# chunkings and the Gumbel fuzz tests), and the two thread-pool races of
# test_concurrency.py (baseline code, the same natively).
deselect="not large_rows and not long_rows and not one_ulp and not categorical and not standard_gumbel and not plackett_luce and not right_frequency"
deselect+=" and not far_from_zero and not pruned_topk_levels_any_key"
deselect+=" and not switching_isa_and_threads_while_calls_run and not threads_give_the_serial_results"

run_model() {
  local model=$1 expected=$2 features=$3
  local emu="qemu-x86_64 -cpu $model"
  echo "== $emu: expecting kernel set '$expected'"
  (
    # NumPy's bundled OpenBLAS picks its own kernels from CPUID and mistakes
    # qemu's Nehalem for a Haswell (SIGILL in its AVX2 code, before ours
    # runs); name its core so the crash is not blamed on us.
    export OPENBLAS_CORETYPE=$([ "$expected" = avx2 ] && echo Haswell || echo Nehalem)
    export SIMDSOFTMAX_TEST_EMULATOR="$emu" SIMDSOFTMAX_TEST_EXPECT_ISA="$expected"
    export SIMDSOFTMAX_FUZZ_SCALE=0.05 SIMDSOFTMAX_TEST_HUGE=0
    # Each model runs the kernel tests on the set it must pick only: the
    # scalar set is the Nehalem run's.
    export SIMDSOFTMAX_TEST_ISAS="$expected"
    # qemu warns on stderr about host-only CPUID bits (TSX, PCID...) at every start.
    exec 2> >(grep -v "TCG doesn't support requested feature" >&2)
    $emu "$python" - "$expected" "$features" <<'EOF'
import sys
import simdsoftmax as ssm
expected, features = sys.argv[1], sys.argv[2]
info = ssm._core.cpu_info()
for item in features.split():
    name, want = item.lstrip("!"), not item.startswith("!")
    assert info[name] == want, f"emulated CPU: {name} is {info[name]}, expected {want}"
assert ssm.available_isas()[0] == expected and ssm.isa() == expected, (ssm.available_isas(), ssm.isa())
ssm.show_runtime()
EOF
    if [ "$model" = "Haswell,-xsave" ]; then
      # only the gate itself (the scalar kernels were just exercised on Nehalem)
      $emu "$python" -m pytest -q -p no:cacheprovider tests/test_dispatch.py -k "emulated or available or use_isa"
    else
      $emu "$python" -m pytest -q -p no:cacheprovider "${subset[@]}" -k "$deselect"
    fi
  )
}

# The three models run at the same time (each emulated interpreter keeps about one
# core busy; CI has two), each into its own log, printed in order afterwards.
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
models=("Haswell|avx2|avx avx2 fma os_saves_ymm !avx512f !os_saves_zmm"
        "Nehalem|scalar|sse2 sse41 !avx !avx2 !fma !os_saves_ymm"
        "Haswell,-xsave|scalar|avx avx2 fma !os_saves_ymm !os_saves_zmm")
pids=()
for i in "${!models[@]}"; do
  IFS='|' read -r model expected features <<<"${models[$i]}"
  run_model "$model" "$expected" "$features" >"$logs/$i.log" 2>&1 &
  pids+=($!)
done
failed=0
for i in "${!models[@]}"; do
  status=0
  wait "${pids[$i]}" || status=$?
  cat "$logs/$i.log"
  if [ "$status" != 0 ]; then
    echo "emulated CPUs: ${models[$i]%%|*} FAILED (exit $status)"
    failed=1
  fi
done
[ "$failed" = 0 ]
echo "emulated CPUs: all passed"
