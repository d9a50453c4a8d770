#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian 12 machine, as root: installs what the
# tests need, checks formatting and lints, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: a 32-bit libc for the i386 challenges, xinetd for side-by-side
# checks, and venv support for pwntools.
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq gcc gcc-multilib xinetd python3-venv >/dev/null
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
