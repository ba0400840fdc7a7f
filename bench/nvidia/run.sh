#!/usr/bin/env bash
# Side-by-side benchmark: unet-poci vs NVIDIA's own local GPU verifier (nv-local-gpu-verifier
# 2.7.3) on the same H100 report and certificate chain, one verification at a time, both pinned
# to one CPU core. See README.md in this directory for what each timed path includes.
#
#   bench/nvidia/run.sh                 # venv in /tmp/nv-verifier-venv, core 0, 300 iterations
#   CORE=1 ITERATIONS=1000 VENV=/path bench/nvidia/run.sh
#
# Needs: python3 (3.8+) with venv and pip access to PyPI (first run only), cargo, and optionally
# taskset (util-linux) for pinning. Writes nvidia.json and comparison.json to $OUT (default: a
# temp dir) and prints the comparison.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/bench/nvidia"
VENV=${VENV:-/tmp/nv-verifier-venv}
CORE=${CORE:-0}
ITERATIONS=${ITERATIONS:-300}
VECTORS=${VECTORS:-$ROOT/crates/poci/tests/vectors}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${OUT:-$(mktemp -d -t unet-nvidia-bench-XXXXXX)}

pin() {
    if command -v taskset >/dev/null 2>&1; then taskset -c "$CORE" "$@"; else "$@"; fi
}

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "nv-local-gpu-verifier==2.7.3"

echo "== NVIDIA nv-local-gpu-verifier (core $CORE, $ITERATIONS iterations)" >&2
pin "$VENV/bin/python" "$HERE/bench_nvidia_verifier.py" --vectors "$VECTORS" \
    --iterations "$ITERATIONS" >"$OUT/nvidia.json"
cat "$OUT/nvidia.json" >&2

echo "== unet-poci (cargo bench -p unet-poci --bench nvidia_verify, core $CORE)" >&2
(cd "$ROOT" && cargo bench -p unet-poci --bench nvidia_verify --no-run >&2)
(cd "$ROOT" && pin cargo bench -p unet-poci --bench nvidia_verify -- verify_full_chain >&2)

python3 - "$TARGET/criterion/nvidia/verify_full_chain_root_included/new/estimates.json" \
    "$OUT/nvidia.json" <<'EOF' | tee "$OUT/comparison.json"
import json, sys
ours = json.load(open(sys.argv[1]))
nv = json.load(open(sys.argv[2]))
ours_ms = ours["median"]["point_estimate"] / 1e6
ours_mean_ms = ours["mean"]["point_estimate"] / 1e6
nv_ms = nv["median_ms"]
print(json.dumps({
    "unet_poci_median_ms": round(ours_ms, 3),
    "unet_poci_mean_ms": round(ours_mean_ms, 3),
    "unet_poci_verifications_per_second": round(1e3 / ours_ms, 1),
    "nvidia_median_ms": nv_ms,
    "nvidia_mean_ms": nv["mean_ms"],
    "nvidia_verifications_per_second": round(1e3 / nv_ms, 1),
    "speedup_median": round(nv_ms / ours_ms, 2),
}, indent=2))
EOF
echo "results in $OUT" >&2
