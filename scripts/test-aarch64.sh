#!/usr/bin/env bash
# Builds quantlab's tests for aarch64-unknown-linux-gnu and runs them under
# qemu-user, so the NEON kernels are executed, not just type-checked.
#
#   scripts/test-aarch64.sh [max|cortex-a53|all] [extra cargo test args...]
#
# `max` turns on every optional feature qemu knows (fp16, bf16, dotprod, i8mm,
# sve); `cortex-a53` is a plain ARMv8.0 core (no fp16/bf16/dotprod), which
# exercises the fallbacks. `all` (the default) runs both.
#
# Uses Debian's Rust (rustc-web, whose standard library exists for arm64)
# rather than rustup's, a separate target directory (the two cargos are
# different versions), and sets linker and runner through environment
# variables so plain x86-64 builds are untouched. Installs the Debian packages
# when missing (needs root). Timings under qemu say nothing about speed.
set -euo pipefail

cd "$(dirname "$0")/.."
which="${1:-all}"
shift || true

packages=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo dpkg --add-architecture arm64
    $sudo apt-get update
    $sudo apt-get install -y "${packages[@]}"
fi

export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target-aarch64}"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc

# qemu's -L prefix supplies the aarch64 dynamic loader, and libraries missing
# under it are read from the host's multiarch directories. The loader and
# libc.so.6 must come from one glibc build: with -L /usr/aarch64-linux-gnu the
# loader is the cross package's (libc6-arm64-cross) while libc.so.6 resolves to
# libc6:arm64's, a newer security update when that package is installed (it is
# a dependency of libstd-rust-web-dev:arm64); the pair then deadlocks in the
# first thread spawn. So take both from libc6:arm64 (-L /) when it is there.
if [ -e /lib/aarch64-linux-gnu/libc.so.6 ] && [ -e /lib/ld-linux-aarch64.so.1 ]; then
    prefix=/
else
    prefix=/usr/aarch64-linux-gnu
fi

case "$which" in
    all) cpus=(max cortex-a53) ;;
    max | cortex-a53) cpus=("$which") ;;
    *) cpus=("$which") ;; # any other qemu CPU model
esac

for cpu in "${cpus[@]}"; do
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -cpu $cpu -L $prefix"
    # For tests that run their own binary again (kernels.rs, QUANTLAB_KERNEL).
    export QUANTLAB_TEST_RUNNER="$CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER"
    echo "== aarch64 tests under qemu -cpu $cpu" >&2
    start=$(date +%s)
    /usr/bin/cargo test -p quantlab --target aarch64-unknown-linux-gnu "$@"
    # Which kernel path the library picks on this CPU model, and what it can run.
    /usr/bin/cargo test -p quantlab --target aarch64-unknown-linux-gnu --test kernels -- --nocapture --exact report_kernel_path 2>&1 \
        | grep -E '^kernel path' | sed "s/^/[cpu $cpu] /" >&2
    echo "== qemu -cpu $cpu: passed in $(($(date +%s) - start)) s" >&2
done
