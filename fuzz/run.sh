#!/bin/sh
# Runs one fuzz target built by the stable route (see README.md) for SECONDS, under nice -n 19,
# one job, from a working corpus seeded with fuzz/corpus/TARGET. The log and any crash
# (crash-*) land in $FUZZ_WORK/TARGET/.
# Usage: fuzz/run.sh TARGET SECONDS [libFuzzer flags...]
set -eu
target=$1
seconds=$2
shift 2
bin=${CARGO_TARGET_DIR:-target}/debug/$target
work=${FUZZ_WORK:-/tmp/unet-fuzz}/$target
mkdir -p "$work/corpus"
cp -n fuzz/corpus/"$target"/* "$work/corpus/" 2>/dev/null || true
# NVIDIA evidence (7.5 KB) and report (4.1 KB) seeds need room; others start at 4 KB.
len=4096
case $target in poci_evidence | nvidia_spdm) len=16384 ;; esac
log="$work/log.$(date +%H%M%S)"
nice -n 19 "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=60 \
    -rss_limit_mb=2048 -max_len=$len -artifact_prefix="$work/" "$@" "$work/corpus" >"$log" 2>&1 || true
grep -E "DONE|stat::number_of_executed_units|ERROR|panicked|SUMMARY" "$log" | head -20
