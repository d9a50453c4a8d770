#!/usr/bin/env python3
"""Side-by-side benchmark of kinetd, Debian's xinetd and a bare accept loop.

Started by bench/run.sh, which builds what it needs into a work directory. Every server
listens on 127.0.0.1 only and serves the same two static services, one with no libc
(nolibc) and one built with static glibc (glibc). The targets take turns: each round
runs every (service, concurrency) cell against each target in an order rotated from
round to round, so that a noisy neighbour hurts them all alike. Only figures from the
same run may be compared.

Per cell: connections per second and latency p50/p99 (median over rounds), the server
process's own CPU time per connection (from /proc/PID/stat, children excluded) and its
resident set size. Then a burst of 256 simultaneous connections per target, reporting
the slowest connect and the slowest connection to finish.
"""
import argparse
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

SERVICES = ("nolibc", "glibc")
CLOCK_TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_listening(port):
    wanted = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[1] == wanted and fields[3] == "0A":
                return True
    return False


def cpu_us(pid):
    """User plus system time the process itself has used, in microseconds."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) * CLOCK_TICK_US


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Target:
    """One server under test: its process per service and the port of each service."""

    def __init__(self, name, procs, ports, log=None):
        self.name = name
        self.procs = procs  # service -> subprocess.Popen of the process to measure
        self.ports = ports  # service -> port
        self.log = log

    def pid(self, service):
        return self.procs[service].pid

    def wait_until_listening(self):
        deadline = time.monotonic() + 15
        for service, port in self.ports.items():
            while not is_listening(port):
                proc = self.procs[service]
                if proc.poll() is not None:
                    sys.exit(f"bench: {self.name} exited ({proc.returncode}) before listening")
                if time.monotonic() > deadline:
                    sys.exit(f"bench: {self.name} did not listen on port {port}")
                time.sleep(0.05)

    def stop(self):
        for proc in {id(p): p for p in self.procs.values()}.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def service_block(name, port, server, user, extra):
    lines = [
        f"service {name}",
        "{",
        "    disable        = no",
        "    type           = UNLISTED",
        "    socket_type    = stream",
        "    protocol       = tcp",
        "    wait           = no",
        f"    user           = {user}",
        f"    port           = {port}",
        "    bind           = 127.0.0.1",
        f"    server         = {server}",
        "    instances      = UNLIMITED",
        "    per_source     = UNLIMITED",
        # xinetd switches a service off above 50 connections/s unless told otherwise.
        "    cps            = 1000000 1",
        "    log_on_success = PID HOST EXIT DURATION",
        "    log_on_failure = HOST",
    ]
    lines += [f"    {line}" for line in extra]
    lines.append("}")
    return "\n".join(lines) + "\n"


def start_kinetd(args, work):
    ports = {service: free_port() for service in SERVICES}
    log = work / "kinetd-services.log"
    config = "".join(
        service_block(
            service,
            ports[service],
            work / service,
            "nobody",
            [f"log_type       = FILE {log}", f"kafel_rule     = {work / 'bench.policy'}"],
        )
        for service in SERVICES
    )
    (work / "kinetd.conf").write_text(config)
    proc = subprocess.Popen(
        [args.kinetd, "-dontfork", "-f", work / "kinetd.conf"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(work / "kinetd.stderr", "w"),
    )
    return Target("kinetd", {s: proc for s in SERVICES}, ports, log)


def start_xinetd(args, work):
    ports = {service: free_port() for service in SERVICES}
    log = work / "xinetd-services.log"
    config = "".join(
        service_block(service, ports[service], work / service, "nobody",
                      [f"log_type       = FILE {log}"])
        for service in SERVICES
    )
    (work / "xinetd.conf").write_text(config)

    # At start-up xinetd closes every descriptor below RLIMIT_NOFILE, one call each; keep
    # the limit modest so that it starts in milliseconds.
    def modest_nofile():
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    proc = subprocess.Popen(
        [args.xinetd, "-dontfork", "-stayalive", "-f", work / "xinetd.conf",
         "-filelog", work / "xinetd.log"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(work / "xinetd.stderr", "w"),
        preexec_fn=modest_nofile,
    )
    return Target("xinetd", {s: proc for s in SERVICES}, ports, log)


def start_bare(args, work, filtered=True):
    ports = {service: free_port() for service in SERVICES}
    nobody = 65534
    procs = {
        service: subprocess.Popen(
            [work / "bare", str(ports[service]), work / "bench.bpf" if filtered else "-",
             str(nobody), str(nobody), work / service],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(work / f"bare-{service}.stderr", "w"),
        )
        for service in SERVICES
    }
    return Target("bare" if filtered else "bare-nofilter", procs, ports)


def parse_fields(line):
    return {k: float(v) for k, v in (f.split("=", 1) for f in line.split())}


def run_load(work, port, concurrency, seconds, max_conns):
    out = subprocess.run(
        [work / "load", "run", str(port), str(concurrency), str(seconds), str(max_conns)],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    )
    return parse_fields(out.stdout)


def run_burst(work, port, count):
    out = subprocess.run(
        [work / "load", "burst", str(port), str(count)],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return parse_fields(out.stdout)


def measure(args, work, targets):
    cells = {}  # (service, concurrency, target) -> list of per-round results
    bursts = {}  # target -> list of burst results
    for rnd in range(args.rounds):
        order = targets[rnd % len(targets):] + targets[: rnd % len(targets)]
        print(f"round {rnd + 1}/{args.rounds}: order {', '.join(t.name for t in order)}",
              file=sys.stderr)
        for service in SERVICES:
            for concurrency in args.concurrency:
                for target in order:
                    pid = target.pid(service)
                    before = cpu_us(pid)
                    result = run_load(work, target.ports[service], concurrency,
                                      args.seconds, args.max_conns)
                    result["cpu_us"] = cpu_us(pid) - before
                    result["rss_kib"] = rss_kib(pid)
                    cells.setdefault((service, concurrency, target.name), []).append(result)
                    time.sleep(args.pause)
        for target in order:
            bursts.setdefault(target.name, []).append(
                run_burst(work, target.ports["nolibc"], args.burst))
            time.sleep(args.pause)
    return cells, bursts


def summarize(cells, key, service, concurrency, target):
    results = cells.get((service, concurrency, target), [])
    if key == "cpu_per_conn":
        conns = sum(r["conns"] for r in results)
        return sum(r["cpu_us"] for r in results) / conns if conns else float("nan")
    if key in ("errors", "conns"):
        return sum(r[key] for r in results)
    if key == "rss_kib":
        return max((r[key] for r in results), default=float("nan"))
    return statistics.median(r[key] for r in results) if results else float("nan")


def machine():
    """One line saying when and where the figures were taken."""
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} x "
            f"{model}, Linux {os.uname().release}")


def load_average():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def report(args, cells, bursts, names, header):
    print(header)
    print()
    print("| service | conc | server | conn/s | p50 ms | p99 ms | CPU µs/conn | RSS MiB | errors |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for service in SERVICES:
        for concurrency in args.concurrency:
            for name in names:
                s = lambda key: summarize(cells, key, service, concurrency, name)  # noqa: E731
                print(f"| {service} | {concurrency} | {name} | {s('rate'):,.0f} "
                      f"| {s('p50_us') / 1000:.2f} | {s('p99_us') / 1000:.2f} "
                      f"| {s('cpu_per_conn'):.0f} | {s('rss_kib') / 1024:.1f} "
                      f"| {s('errors'):.0f} |")
    print()
    print(f"Burst of {args.burst} simultaneous connections to nolibc (worst of "
          f"{args.rounds} rounds):")
    print()
    print("| server | slowest connect ms | median done ms | slowest done ms "
          "| refused | reset | unfinished |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in names:
        runs = bursts.get(name, [])
        print(f"| {name} | {max(r['max_connect_us'] for r in runs) / 1000:.1f} "
              f"| {statistics.median(r['p50_done_us'] for r in runs) / 1000:.1f} "
              f"| {max(r['max_done_us'] for r in runs) / 1000:.1f} "
              f"| {sum(r['refused'] for r in runs):.0f} | {sum(r['reset'] for r in runs):.0f} "
              f"| {sum(r['unfinished'] for r in runs):.0f} |")

    if "kinetd" not in names:
        return
    print()
    print("Targets:")

    def rate(service, concurrency, name):
        return summarize(cells, "rate", service, concurrency, name)

    def check(label, value, goal, higher_is_better=True):
        ok = value >= goal if higher_is_better else value <= goal
        print(f"- {label}: {value:.2f} (goal {'≥' if higher_is_better else '≤'} {goal}) "
              f"{'met' if ok else 'MISSED'}")

    if "xinetd" in names:
        check("nolibc, concurrency 8: kinetd / xinetd",
              rate("nolibc", 8, "kinetd") / rate("nolibc", 8, "xinetd"), 2.0)
    if "bare" in names:
        check("nolibc, concurrency 8: kinetd / bare loop",
              rate("nolibc", 8, "kinetd") / rate("nolibc", 8, "bare"), 0.9)
    if "xinetd" in names:
        check("glibc, concurrency 8: kinetd / xinetd",
              rate("glibc", 8, "kinetd") / rate("glibc", 8, "xinetd"), 1.4)
        for service in SERVICES:
            p99 = lambda name: summarize(cells, "p99_us", service, 64, name)  # noqa: E731
            check(f"{service}, concurrency 64: kinetd p99 / xinetd p99",
                  p99("kinetd") / p99("xinetd"), 1.0, higher_is_better=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True,
                        help="directory with load, bare, nolibc, glibc, bench.policy, bench.bpf")
    parser.add_argument("--kinetd", required=True)
    parser.add_argument("--xinetd", default="/usr/sbin/xinetd")
    parser.add_argument("--targets", default="kinetd,xinetd,bare",
                        help="any of kinetd, xinetd, bare, bare-nofilter (no seccomp filter)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each load run")
    parser.add_argument("--max-conns", type=int, default=100_000,
                        help="cap on connections in each load run")
    parser.add_argument("--concurrency", type=lambda s: [int(c) for c in s.split(",")],
                        default=[1, 8, 64])
    parser.add_argument("--burst", type=int, default=256)
    parser.add_argument("--pause", type=float, default=0.3,
                        help="seconds between runs, for exited sessions to be reaped")
    args = parser.parse_args()

    load_before = load_average()
    starters = {
        "kinetd": start_kinetd,
        "xinetd": start_xinetd,
        "bare": start_bare,
        "bare-nofilter": lambda args, work: start_bare(args, work, filtered=False),
    }
    names = args.targets.split(",")
    targets = []
    try:
        for name in names:
            targets.append(starters[name](args, args.work))
        for target in targets:
            target.wait_until_listening()
        cells, bursts = measure(args, args.work, targets)
    finally:
        for target in targets:
            target.stop()

    for target in targets:
        if target.log and target.log.exists():
            starts = target.log.read_text().count("START:")
            print(f"{target.name}: {starts} START lines in its service log", file=sys.stderr)
    header = (f"{machine()}; load average {load_before} before, {load_average()} after; "
              f"{args.rounds} rounds of {args.seconds:g} s per cell")
    report(args, cells, bursts, names, header)


if __name__ == "__main__":
    main()
