#!/usr/bin/env bash
# The README's peer comparison: simdsoftmax (auto and two-pass) against NumPy
# (textbook max/exp/sum/divide), SciPy (scipy.special) and PyTorch (threads
# matched) on the same inputs, over the default size sweep, float32.
# Peers that are not installed are left out with a note; install them with
#   pip install scipy torch
#
#   bash bench/compare_peers.sh       # ~1-2 minutes on a 2-core machine
#
# Writes bench/results/peers.{txt,json,csv,png,md}; peers.md shows four sizes
# (L1, L2, L3 and DRAM on the machine in the README); edit --sizes below for
# a machine with other caches.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
out=bench/results
mkdir -p "$out"
"$py" -m simdsoftmax.bench --compare numpy,scipy,torch --algorithms auto,two-pass \
  --json "$out/peers.json" --csv "$out/peers.csv" --plot "$out/peers.png" "$@" \
  | tee "$out/peers.txt"
"$py" bench/to_markdown.py --peers --sizes 16KiB,256KiB,4MiB,256MiB "$out/peers.json" > "$out/peers.md"
echo "wrote $out/peers.{txt,json,csv,png,md}" >&2
