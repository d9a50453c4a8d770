#!/usr/bin/env bash
# Serves the demo challenge (examples/) on 127.0.0.1 under its Kafel policy: builds
# kinetd and the challenge, writes a configuration from examples/ctf.xinetd, and runs
# `kinetd -dontfork` in the foreground until Ctrl-C.
#
# Usage: scripts/demo.sh [PORT]     (default: 31337, or the first free port above it)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

say() { printf '\033[1m%s\033[0m\n' "$*" >&2; }
die() { printf 'demo.sh: %s\n' "$*" >&2; exit 1; }

# A port is taken when something listens on it; /proc/net/tcp lists listeners (state 0A)
# without our having to connect, which would start a session of whatever listens there.
port_is_listening() {
    local hex
    hex=$(printf '%04X' "$1")
    grep -qsE "^ *[0-9]+: [0-9A-F]+:$hex [0-9A-F]+:0000 0A " /proc/net/tcp /proc/net/tcp6
}

# 1. Build kinetd and the challenge.
command -v cargo >/dev/null || die "cargo is needed to build kinetd (https://rustup.rs)"
if ! command -v gcc >/dev/null; then
    [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null || die "gcc is needed"
    say "installing gcc"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc >/dev/null
fi

say "building kinetd (cargo build --release)"
cargo build --release --locked -p kinetd
kinetd="${CARGO_TARGET_DIR:-$repo/target}/release/kinetd"
[[ -x $kinetd ]] || die "cargo did not produce $kinetd"

# The run directory must be readable by the user the challenge runs as (nobody), which a
# repository under /root is not.
run=$(mktemp -d /tmp/kinetd-demo.XXXXXX)
chmod 755 "$run"
trap 'rm -rf "$run"' EXIT

say "building the demo challenge (gcc examples/demo/guess.c)"
gcc -O2 -Wall -o "$run/guess" examples/demo/guess.c
echo "flag{kinetd_demo_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')}" >"$run/flag.txt"
cp examples/demo.policy examples/banner_fail "$run/"
chmod 644 "$run/flag.txt" "$run/demo.policy" "$run/banner_fail"

# 2. Pick the port.
port=${1:-31337}
while port_is_listening "$port"; do
    [[ -z ${1:-} ]] || die "port $port is already in use"
    port=$((port + 1))
done

# 3. Write the configuration: the example with this machine's paths and port, and each
# connection's START and EXIT lines sent to the terminal. kafel_rule and banner_fail stay
# relative: kinetd resolves them against the directory of the configuration file.
user=nobody
if [[ $(id -u) -ne 0 ]]; then
    user=$(id -un)
    say "not running as root: the challenge runs as $user instead of nobody"
fi
sed -e "s|^\( *server *=\).*|\1 $run/guess|" \
    -e "s|^\( *server_args *=\).*|\1 $run/flag.txt|" \
    -e "s|^\( *port *=\).*|\1 $port|" \
    -e "s|^\( *user *=\).*|\1 $user|" \
    -e "s|^\( *log_type *=\).*|\1 FILE /dev/stderr|" \
    examples/ctf.xinetd >"$run/ctf.xinetd"

# 4. Serve until Ctrl-C. kinetd runs as a background job so that this script can say how
# to connect once it listens; Ctrl-C reaches the script, which stops kinetd with SIGTERM.
say "starting: $kinetd -dontfork -f $run/ctf.xinetd"
"$kinetd" -dontfork -f "$run/ctf.xinetd" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' INT TERM

for _ in $(seq 100); do
    port_is_listening "$port" && break
    kill -0 "$pid" 2>/dev/null || { wait "$pid" || true; die "kinetd exited before it listened"; }
    sleep 0.1
done
port_is_listening "$port" || { kill -TERM "$pid"; die "kinetd did not listen on port $port"; }

if command -v nc >/dev/null; then
    client="nc 127.0.0.1 $port"
else
    client="python3 -c 'import socket,sys,threading;s=socket.create_connection((\"127.0.0.1\",$port));threading.Thread(target=lambda:([s.sendall(l) for l in sys.stdin.buffer],s.shutdown(1)),daemon=True).start();[sys.stdout.buffer.write(d) or sys.stdout.flush() for d in iter(lambda:s.recv(4096),b\"\")]'"
fi
say "
kinetd serves the demo challenge on 127.0.0.1:$port under examples/demo.policy.
Play it from another terminal:

    $client

Press Ctrl-C here to stop."

wait "$pid" || true
# A signal interrupts the first wait; the second collects kinetd's exit.
wait "$pid" 2>/dev/null || true
