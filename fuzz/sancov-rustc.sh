#!/bin/sh
# RUSTC_WRAPPER for building the fuzz targets with a stable toolchain in the workspace's own
# target directory (see README.md): libFuzzer's coverage instrumentation (the flags cargo-fuzz
# passes) is added to this project's crates and the targets only, so every dependency is the
# artifact the normal dev build already compiled.
rustc="$1"
shift
case " $* " in
*" --crate-name unet_"* | *"fuzz_targets/"*)
    exec "$rustc" "$@" -Cpasses=sancov-module \
        -Cllvm-args=-sanitizer-coverage-level=4 \
        -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
        -Cllvm-args=-sanitizer-coverage-pc-table \
        -Cllvm-args=-sanitizer-coverage-trace-compares \
        --cfg fuzzing
    ;;
esac
exec "$rustc" "$@"
