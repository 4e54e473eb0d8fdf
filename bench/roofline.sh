#!/usr/bin/env bash
# The README's roofline table and plot: the default sweep (1 KiB up to
# max(4 x last-level cache, 256 MiB)) of softmax (every algorithm),
# log_softmax and logsumexp, float32, on the active kernel set.
#
#   bash bench/roofline.sh            # ~1 minute on a 2-core machine
#   bash bench/roofline.sh --isa all  # extra arguments go to simdsoftmax-bench
#
# Writes bench/results/roofline.{txt,json,csv,png,md}. Run it on an otherwise
# idle machine: the numbers are only as quiet as the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
out=bench/results
mkdir -p "$out"
"$py" -m simdsoftmax.bench \
  --json "$out/roofline.json" --csv "$out/roofline.csv" --plot "$out/roofline.png" "$@" \
  | tee "$out/roofline.txt"
"$py" bench/to_markdown.py "$out/roofline.json" > "$out/roofline.md"
echo "wrote $out/roofline.{txt,json,csv,png,md}" >&2
