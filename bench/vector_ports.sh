#!/usr/bin/env bash
# The core's 512-bit operation throughput by kind (bench/vector_ports.cpp):
# the ceiling behind the lower bound on gumbel_softmax's cost in
# docs/design.md ("What gumbel_softmax costs"). Needs g++ and an AVX-512 CPU; ~5 s.
#
#   bash bench/vector_ports.sh
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"${CXX:-g++}" -O2 -std=c++17 -mavx512f -mavx512dq -o "$tmp/vector_ports" vector_ports.cpp
"$tmp/vector_ports"
