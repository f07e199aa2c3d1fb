#!/usr/bin/env python3
"""Fanout and pairs over TLS against plain TCP, on one or more builds, in one run.

    scripts/bench_tls.py --loadgen target/release/examples/loadgen \\
        target/release/chatnode target/release/chatnode-tokio [--rounds 3] [--messages 1000]

For each binary: makes a self-signed ECDSA P-256 certificate (openssl CLI), starts the node with
a plain and a TLS listener on 127.0.0.1 (loopback exempt from the per-address limits and flood
control, history off), then runs examples/loadgen against it, alternating the transport within
each round (tcp, tls, then tls, tcp in the next round, so a load change on this shared machine
hits both sides alike):

- fanout: N=100 clients, S=10 senders, M messages each (`--clients 100 --senders 10`);
- pairs: 100 clients in 50 direct-message ping-pong pairs, M round trips each.

It prints each run's figures, then per build and scenario the medians and the TLS/TCP ratios:
deliveries (or round trips) per second, p50 latency (RTT for pairs), and the node's CPU time
per delivered message (`server_cpu_us_per_msg`, from /proc: the figure that depends least on
the load generator sharing the cores). The load average is printed before and after.
Everything stops by itself; any lost message or failed run makes the exit status 1.
"""

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

DEADLINE = 60.0


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def make_certificate(work):
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "2", "-keyout", key, "-out", cert, "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    return cert, key


class Node:
    def __init__(self, binary, work, cert, key, threads):
        self.log = open(os.path.join(work, f"{os.path.basename(binary)}.log"), "w+")
        args = [binary, "--listen", "127.0.0.1:0", "--listen-tls", "127.0.0.1:0", "--tls-cert", cert,
                "--tls-key", key, "--exempt", "127.0.0.0/8", "--history", "off", "--max-clients", "1000",
                "--data-dir", work]
        if threads:
            args += ["--threads", threads]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.log,
                                     env={**os.environ, "RUST_LOG": "warn,chatnode=info"})
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            self.log.seek(0)
            text = self.log.read()
            plain = re.search(r"listening on (127\.0\.0\.1:\d+)\n", text)
            tls = re.search(r"listening on (127\.0\.0\.1:\d+) \(tls\)", text)
            if plain and tls:
                self.plain, self.tls = plain.group(1), tls.group(1)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{binary} did not start:\n{text}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


SCENARIOS = {
    # name: (loadgen arguments, rate key, latency key)
    "fanout": (["fanout", "--clients", "100", "--senders", "10"], "delivered_per_s", "latency_p50_us"),
    "pairs": (["pairs", "--clients", "100"], "round_trips_per_s", "rtt_p50_us"),
}


def run_loadgen(args, node, scenario, transport, cert):
    lg_args, _, _ = SCENARIOS[scenario]
    server = node.tls if transport == "tls" else node.plain
    cmd = [args.loadgen, *lg_args, "--messages", str(args.messages), "--server", server,
           "--server-pid", str(node.proc.pid), "--duration", str(args.duration), "--json",
           "--prefix", f"{transport}{scenario[0]}"]
    if transport == "tls":
        cmd += ["--tls", cert]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 30)
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "{}"
    result = json.loads(line)
    result["ok"] = out.returncode == 0
    if out.returncode != 0:
        print(f"    loadgen failed ({out.returncode}): {out.stderr.strip()[-500:]}", flush=True)
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("binaries", nargs="+")
    p.add_argument("--loadgen", default="target/release/examples/loadgen")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--messages", type=int, default=1000)
    p.add_argument("--duration", type=int, default=120, help="loadgen's --duration per run")
    p.add_argument("--threads", help="the node's --threads (default: its own)")
    p.add_argument("--scenarios", default="fanout,pairs")
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    scenarios = args.scenarios.split(",")
    print(f"load average before: {load_average()} ({os.cpu_count()} cores)", flush=True)
    results = {}  # (build, scenario, transport) -> [result]
    all_ok = True
    with tempfile.TemporaryDirectory(prefix="chatnode-bench-tls-") as work:
        cert, key = make_certificate(work)
        for rnd in range(args.rounds):
            order = ["tcp", "tls"] if rnd % 2 == 0 else ["tls", "tcp"]
            for binary in args.binaries:
                build = os.path.basename(binary)
                node = Node(binary, work, cert, key, args.threads)
                try:
                    for scenario in scenarios:
                        for transport in order:
                            r = run_loadgen(args, node, scenario, transport, cert)
                            _, rate_key, lat_key = SCENARIOS[scenario]
                            print(f"round {rnd + 1} {build:15} {scenario:6} {transport}: "
                                  f"{r.get(rate_key) or 0:>9,.0f}/s  p50 {r.get(lat_key) or 0:>7,.0f} us  "
                                  f"node {r.get('server_cpu_us_per_msg') or 0:.2f} us CPU/msg  "
                                  f"loadgen CPU {r.get('loadgen_cpu_pct') or 0:.0f}%  "
                                  f"(load {load_average()})", flush=True)
                            all_ok &= r["ok"]
                            results.setdefault((build, scenario, transport), []).append(r)
                finally:
                    node.stop()
    print(f"load average after: {load_average()}", flush=True)
    print("\nmedians over the rounds, and TLS/TCP:")
    print(f"{'build':15} {'scenario':8} {'metric':22} {'tcp':>10} {'tls':>10} {'tls/tcp':>8}")
    for binary in args.binaries:
        build = os.path.basename(binary)
        for scenario in scenarios:
            _, rate_key, lat_key = SCENARIOS[scenario]
            for key in (rate_key, lat_key, "server_cpu_us_per_msg"):
                med = {}
                for transport in ("tcp", "tls"):
                    vals = [r[key] for r in results.get((build, scenario, transport), []) if r.get(key) is not None]
                    med[transport] = statistics.median(vals) if vals else float("nan")
                ratio = med["tls"] / med["tcp"] if med["tcp"] else float("nan")
                print(f"{build:15} {scenario:8} {key:22} {med['tcp']:>10,.2f} {med['tls']:>10,.2f} {ratio:>8.2f}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
