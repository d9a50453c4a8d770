#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian 12 machine, as root: installs what the
# tests need, checks formatting and lints, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: gcc-multilib to build the i386 exploit challenge, xinetd for
# side-by-side checks, and venv support for pwntools.
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq gcc gcc-multilib xinetd python3-venv >/dev/null
fi

# pwntools, for the exploit tests (crates/kinetd/tests/exploit_*.rs), in a virtualenv of
# the repository's own so that the system's Python stays untouched. Checking the import
# first keeps a second run fast.
if ! .venv/bin/python3 -c 'import pwnlib.tubes.remote, pwnlib.elf' >/dev/null 2>&1; then
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check \
        -r crates/kinetd/tests/exploit/requirements.txt
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

# The last lines cargo prints belong to whichever test binary ran last (often the empty
# doc tests), so the suite's totals are added up and printed as the closing line.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { passed += $4; failed += $6; ignored += $8 }
     END { printf "\ntests: %d passed, %d failed, %d skipped\n", passed, failed, ignored }' "$log"
exit "$status"
