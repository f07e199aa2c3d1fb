#!/usr/bin/env python3
"""Measures a chatnode binary's memory: idle RSS, and RSS with N idle registered clients.

    scripts/measure_rss.py BINARY [--clients 1000,5000] [--threads 1] [EXTRA FLAGS...]

Starts BINARY natively on 127.0.0.1:0 with `--threads 1`, `--exempt 127.0.0.0/8` (every client
comes from loopback) and `--max-clients` above the largest
N, reads VmRSS, VmHWM and Threads from /proc/PID/status once it logs `listening on`, then opens
clients in steps up to each N (NICK/USER, waiting for 376 or 422 on every one, so each is
registered) and reads them again. Prints one line per step and the bytes per connection.
Raises its own RLIMIT_NOFILE to the hard limit (the node inherits it).

RSS under qemu user emulation includes qemu itself and means nothing: measure a musl build with
the native x86_64-unknown-linux-musl target instead.
"""

import argparse
import os
import re
import resource
import socket
import subprocess
import sys
import time

DEADLINE = 60.0


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                out[key] = int(value.split()[0])
    return out


def wait_listening(proc, log_path):
    """Polls the node's log file for its `listening on` line, with a deadline."""
    end = time.monotonic() + DEADLINE
    delay = 0.005
    while time.monotonic() < end:
        with open(log_path, "rb") as f:
            m = re.search(rb"listening on 127\.0\.0\.1:(\d+)", f.read())
        if m:
            return int(m.group(1))
        if proc.poll() is not None:
            sys.exit("node exited: " + open(log_path, errors="replace").read())
        time.sleep(delay)  # polling interval, not synchronisation: the deadline bounds the wait
        delay = min(delay * 2, 0.1)
    sys.exit("node did not log 'listening on' in time")


def register(addr, start, count):
    """Opens `count` clients, registers each, returns the sockets once all are registered."""
    socks = []
    for i in range(start, start + count):
        s = socket.create_connection(addr, timeout=DEADLINE)
        nick = f"u{i}"
        s.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
        socks.append(s)
    for s in socks:
        buf = b""
        end = time.monotonic() + DEADLINE
        while not re.search(rb" (376|422) ", buf):
            if time.monotonic() > end:
                sys.exit("a client was not registered in time")
            chunk = s.recv(65536)
            if not chunk:
                sys.exit("a client was closed: " + buf.decode(errors="replace")[-300:])
            buf += chunk
    return socks


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("--clients", default="1000,5000")
    ap.add_argument("--threads", default="1")
    # Anything not known here is passed on to the node.
    args, node_flags = ap.parse_known_args()
    args.flags = node_flags
    steps = sorted(int(n) for n in args.clients.split(","))

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * steps[-1] + 100
    if hard != resource.RLIM_INFINITY and hard < need:
        sys.exit(f"RLIMIT_NOFILE hard limit {hard} < {need}; raise it (ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    cmd = [args.binary, "--listen", "127.0.0.1:0", "--threads", args.threads,
           "--max-clients", str(steps[-1] + 100),
           # All clients come from 127.0.0.1: exempt loopback from the per-address limits, as
           # examples/compare does.
           "--exempt", "127.0.0.0/8"] + args.flags
    # The log goes to a file, not a pipe: the node logs every connect, and a pipe nobody reads
    # would fill up and block it.
    log_path = f"/tmp/chatnode-measure-{os.getpid()}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=log, env=dict(os.environ, RUST_LOG="info"))
    socks = []
    try:
        port = wait_listening(proc, log_path)
        base = status(proc.pid)
        size = os.path.getsize(args.binary)
        print(f"binary: {args.binary} ({size} bytes); flags: {' '.join(cmd[1:])}")
        names = sorted(open(f"/proc/{proc.pid}/task/{t}/comm").read().strip()
                       for t in os.listdir(f"/proc/{proc.pid}/task"))
        print(f"idle: VmRSS {base['VmRSS']} KiB (RssAnon {base['RssAnon']} KiB, RssFile "
              f"{base['RssFile']} KiB), VmHWM {base['VmHWM']} KiB, threads {base['Threads']} "
              f"({', '.join(names)})")
        done = 0
        for n in steps:
            socks += register(("127.0.0.1", port), done, n - done)
            done = n
            st = status(proc.pid)
            per = (st["VmRSS"] - base["VmRSS"]) * 1024 / n
            print(f"{n} idle clients: VmRSS {st['VmRSS']} KiB, VmHWM {st['VmHWM']} KiB, "
                  f"threads {st['Threads']}, {per:.0f} bytes per connection")
    finally:
        for s in socks:
            s.close()
        proc.kill()
        proc.wait()
        log.close()
        os.unlink(log_path)


if __name__ == "__main__":
    main()
