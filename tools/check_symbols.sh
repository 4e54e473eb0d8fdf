#!/usr/bin/env bash
# Check that code compiled with AVX flags cannot leak into baseline code.
#
#   tools/check_symbols.sh [BUILD_TYPE...]     (default: Release Debug)
#
# The *_avx2.cpp / *_avx512.cpp / *_avx512bf16.cpp translation units are
# compiled with AVX flags.
# Any function they emit with external or weak linkage (an inline function or
# a template instantiation included from a shared header, a std:: helper the
# optimizer did not inline, ...) can be chosen by the linker for the calls of
# every other translation unit as well (one definition rule), and would then
# run AVX instructions on a CPU that has none. So every global or weak code
# symbol of those objects must be in the set's own namespace (ssm::avx2,
# ssm::avx512, ssm::avx512bf16), or be one of its entry points (ssm::kernels_<isa>,
# ssm::sample_kernels_<isa>, ssm::rows_kernels_<isa>, ssm::convert_<isa>,
# ssm::half_kernels_<isa>, ssm::gumbel_kernels_<isa>, and their local statics). Symbols with internal
# linkage (nm type t) cannot be shared and are not checked; neither is data.
#
# Each build type is configured with CMake directly into a temporary directory
# (no LTO: nm must see real object code) and only the AVX objects are built.
# SSM_CHECK_EXTRA_SOURCE=FILE.cpp also compiles FILE with AVX2 flags and checks
# it like a kernel object (used to see that the check fails on a leak).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
python=${PYTHON:-python3}
types=("$@")
[ ${#types[@]} -gt 0 ] || types=(Release Debug)

pybind11_dir=$("$python" -m pybind11 --cmakedir 2>/dev/null) || {
  echo "check_symbols.sh: needs pybind11 importable by $python (pip install pybind11)" >&2
  exit 2
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Mangled-name prefixes allowed in an object of kernel set $1: the ISA's
# namespace (functions, const member functions, local statics and their guard
# variables) and the entry points (and their local statics).
allowed_prefixes() {
  local isa=$1 ns entry
  ns="3ssm${#isa}${isa}"
  printf '%s\n' "_ZN${ns}" "_ZNK${ns}" "_ZZN${ns}" "_ZGVZN${ns}" "_ZTVN${ns}" "_ZTIN${ns}" "_ZTSN${ns}"
  # Entry points, one per kernel family: ssm::<family>_<isa>() and its statics.
  for entry in "kernels_${isa}" "gumbel_kernels_${isa}" "sample_kernels_${isa}" "rows_kernels_${isa}" \
               "convert_${isa}" "half_kernels_${isa}"; do
    printf '%s\n' "_ZN3ssm${#entry}${entry}E" "_ZZN3ssm${#entry}${entry}E" "_ZGVZN3ssm${#entry}${entry}E"
  done
}

# check_object OBJ ISA: print the leaking symbols; return 1 if there are any.
check_object() {
  local obj=$1 isa=$2 leaks
  # Global (T), weak (W, w: functions; V, v, u: objects are data and skipped)
  # and indirect (i) code symbols.
  leaks=$(nm --defined-only "$obj" | awk -v allowed="$(allowed_prefixes "$isa")" '
    BEGIN { n = split(allowed, prefix, "\n") }
    $2 ~ /^[TWwi]$/ {
      for (i = 1; i <= n; ++i) if (index($3, prefix[i]) == 1) next
      print $3
    }')
  if [ -n "$leaks" ]; then
    echo "  $obj: code outside namespace ssm::$isa:"
    echo "$leaks" | c++filt | sed 's/^/    /'
    return 1
  fi
  return 0
}

status=0
for type in "${types[@]}"; do
  build="$work/$type"
  echo "== $type"
  cmake -S "$repo" -B "$build" -G "Unix Makefiles" -DCMAKE_BUILD_TYPE="$type" \
    -DCMAKE_INTERPROCEDURAL_OPTIMIZATION=OFF -Dpybind11_DIR="$pybind11_dir" \
    -DPython_EXECUTABLE="$(command -v "$python")" >"$build.log" 2>&1 || {
    cat "$build.log" >&2
    exit 2
  }
  objects=()
  sources=(csrc/kernels/*_avx2.cpp csrc/kernels/*_avx512.cpp)
  # The AVX512_BF16 unit, where the compiler takes -mavx512bf16 (CMake then builds it).
  grep -q 'SSM_CXX_HAS_AVX512BF16:INTERNAL=1' "$build/CMakeCache.txt" && sources+=(csrc/kernels/*_avx512bf16.cpp)
  for src in "${sources[@]}"; do
    target="${src}.o"
    make -C "$build" "$target" >>"$build.log" 2>&1 || {
      tail -30 "$build.log" >&2
      exit 2
    }
    objects+=("$build/CMakeFiles/_core.dir/$target")
  done
  if [ -n "${SSM_CHECK_EXTRA_SOURCE:-}" ]; then
    flags=$(sed -n 's/^CXX_FLAGS = //p' "$build/CMakeFiles/_core.dir/flags.make")
    extra="$build/extra_avx2.o"
    # shellcheck disable=SC2086
    c++ $flags -I"$repo/csrc" -mavx2 -mfma -c "$SSM_CHECK_EXTRA_SOURCE" -o "$extra"
    objects+=("$extra")
  fi
  for obj in "${objects[@]}"; do
    case $obj in
      *avx512bf16*) isa=avx512bf16 ;;
      *avx512*) isa=avx512 ;;
      *) isa=avx2 ;;
    esac
    if check_object "$obj" "$isa"; then
      echo "  ok: $(basename "$obj") ($isa)"
    else
      status=1
    fi
  done
done
[ $status -eq 0 ] && echo "check_symbols.sh: no AVX-compiled code outside its ISA namespace" ||
  echo "check_symbols.sh: FAILED: AVX-compiled code with external linkage outside its ISA namespace" >&2
exit $status
