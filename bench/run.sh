#!/usr/bin/env bash
# Benchmarks kinetd beside Debian's xinetd and a bare accept loop, on 127.0.0.1, and
# prints a table (see bench/README.md). Run as root on Debian 12; takes a few minutes.
#
# Usage: bench/run.sh [bench.py options, e.g. --rounds 5 --seconds 2]
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $(id -u) -eq 0 ]] || { echo "bench/run.sh: run as root (services run as nobody)" >&2; exit 1; }
if ! command -v xinetd >/dev/null || ! command -v gcc >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc xinetd >/dev/null
fi
# The package starts xinetd with its stock services; the benchmark runs its own.
if command -v systemctl >/dev/null && systemctl is-active -q xinetd 2>/dev/null; then
    echo "bench/run.sh: note: a system xinetd is running; it is left alone" >&2
fi

cargo build --release --locked -p kinetd
kinetd="${CARGO_TARGET_DIR:-$PWD/target}/release/kinetd"

# Everything the servers execute lives in one directory that nobody may read.
work=$(mktemp -d /tmp/kinetd-bench.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

gcc -O2 -Wall -pthread -o "$work/load" bench/load.c
gcc -O2 -Wall -o "$work/bare" bench/bare.c
gcc -O2 -Wall -static -no-pie -nostdlib -fno-stack-protector -o "$work/nolibc" bench/nolibc.c
gcc -O2 -Wall -static -o "$work/glibc" bench/glibc.c
cp bench/bench.policy "$work/"
"$kinetd" policy compile --format raw -o "$work/bench.bpf" bench/bench.policy

python3 bench/bench.py --work "$work" --kinetd "$kinetd" "$@"
