#!/usr/bin/env python3
"""Smoke test of a chatnode binary, possibly under an emulator.

    scripts/smoke_test.py [--runner qemu-aarch64-static] BINARY [EXTRA FLAGS...]

Starts BINARY on 127.0.0.1:0 (RUST_LOG=info), learns the port from its `listening on ADDR` log
line, connects two clients over loopback, registers both, joins them to #smoke, sends a channel
message from one and waits for it at the other, then sends SIGTERM and checks that both clients
get `ERROR :Server shutting down` and that the node exits 0. Then it starts the node again on the
same data dir (a temporary one) and, if the build has history (CHATHISTORY in ISUPPORT), reads the
message back with `CHATHISTORY LATEST #smoke * 10` before a second clean SIGTERM. Every wait has a
deadline; nothing sleeps to synchronise. Whatever it started is killed on the way out. Exit
status 0 = pass.
"""

import argparse
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time

# Emulated start-up of a release binary is well under a second here; generous for slow CI.
DEADLINE = float(os.environ.get("SMOKE_DEADLINE", "30"))


class Failure(Exception):
    pass


class LogReader:
    """Reads the node's stderr without blocking, remembering every line."""

    def __init__(self, pipe):
        self.pipe = pipe
        os.set_blocking(pipe.fileno(), False)
        self.buf = b""
        self.lines = []

    def pump(self):
        try:
            chunk = self.pipe.read()
        except BlockingIOError:
            chunk = None
        if chunk:
            self.buf += chunk
            *done, self.buf = self.buf.split(b"\n")
            for raw in done:
                line = raw.decode("utf-8", "replace")
                self.lines.append(line)
                print(f"  node| {line}", flush=True)
        return chunk == b""  # EOF

    def wait_for(self, pattern, proc, what):
        rx = re.compile(pattern)
        sel = selectors.DefaultSelector()
        sel.register(self.pipe, selectors.EVENT_READ)
        end = time.monotonic() + DEADLINE
        seen = 0
        while True:
            for line in self.lines[seen:]:
                m = rx.search(line)
                if m:
                    return m
            seen = len(self.lines)
            left = end - time.monotonic()
            if left <= 0:
                raise Failure(f"no {what} within {DEADLINE}s")
            sel.select(min(left, 0.5))
            eof = self.pump()
            if eof and proc.poll() is not None and not any(rx.search(l) for l in self.lines[seen:]):
                raise Failure(f"node exited ({proc.returncode}) before {what}")


class Client:
    def __init__(self, name, addr):
        self.name = name
        self.sock = socket.create_connection(addr, timeout=DEADLINE)
        self.buf = b""

    def send(self, line):
        print(f"  {self.name} > {line}", flush=True)
        self.sock.sendall(line.encode() + b"\r\n")

    def expect(self, pattern, what):
        """Reads lines until one matches `pattern` (regex), within the deadline."""
        rx = re.compile(pattern)
        end = time.monotonic() + DEADLINE
        while True:
            while b"\n" in self.buf:
                raw, self.buf = self.buf.split(b"\n", 1)
                line = raw.rstrip(b"\r").decode("utf-8", "replace")
                print(f"  {self.name} < {line}", flush=True)
                if line.startswith("PING "):
                    self.send("PONG " + line[5:])
                if rx.search(line):
                    return line
            left = end - time.monotonic()
            if left <= 0:
                raise Failure(f"{self.name}: no {what} within {DEADLINE}s")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                raise Failure(f"{self.name}: connection closed before {what}")
            self.buf += chunk

    def close(self):
        self.sock.close()


def start(args, data_dir):
    cmd = ([args.runner] if args.runner else []) + [args.binary, "--listen", "127.0.0.1:0", "--threads", "1"]
    cmd += ["--data-dir", data_dir] + args.flags
    env = dict(os.environ, RUST_LOG="info")
    print("starting:", " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    return proc, LogReader(proc.stderr)


def listening(log, proc, started):
    m = log.wait_for(r"listening on (127\.0\.0\.1):(\d+)", proc, "'listening on' log line")
    addr = (m.group(1), int(m.group(2)))
    print(f"node listening on {addr[0]}:{addr[1]} after {time.monotonic() - started:.2f}s", flush=True)
    return addr


def stop(proc, log, clients):
    print("sending SIGTERM", flush=True)
    proc.send_signal(signal.SIGTERM)
    for c in clients:
        c.expect(r"^ERROR :Server shutting down", "shutdown ERROR line")
    try:
        code = proc.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        raise Failure(f"node still running {DEADLINE}s after SIGTERM")
    log.pump()
    if code != 0:
        raise Failure(f"node exited with {code} after SIGTERM, expected 0")


def first_run(args, data_dir, started, clients):
    proc, log = start(args, data_dir)
    try:
        addr = listening(log, proc, started)
        alice, bob = Client("alice", addr), Client("bob", addr)
        clients += [alice, bob]
        for c in (alice, bob):
            c.send(f"NICK {c.name}")
            c.send(f"USER {c.name} 0 * :{c.name}")
        for c in (alice, bob):
            c.expect(r" 001 " + c.name + r" ", "welcome (001)")
            c.expect(r" (376|422) ", "end of MOTD (376 or 422)")
            c.send("JOIN #smoke")
            c.expect(r" 366 " + c.name + r" #smoke ", "end of NAMES for #smoke")
        # alice learns that bob joined, so both are in the channel before the message.
        alice.expect(r"^:bob!\S+ JOIN :?#smoke", "bob's JOIN")
        alice.send("PRIVMSG #smoke :hello from the board")
        bob.expect(r"^:alice!\S+ PRIVMSG #smoke :hello from the board$", "alice's channel message")
        stop(proc, log, (alice, bob))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def second_run(args, data_dir, started, clients):
    """Restarted on the same data dir: the message is still there (builds with history)."""
    proc, log = start(args, data_dir)
    try:
        addr = listening(log, proc, started)
        carol = Client("carol", addr)
        clients.append(carol)
        carol.send("NICK carol")
        carol.send("USER carol 0 * :carol")
        isupport = []
        while True:
            line = carol.expect(r" (005|376|422) ", "ISUPPORT and end of MOTD")
            if " 005 " not in line:
                break
            isupport.append(line)
        if not any(" CHATHISTORY=" in l for l in isupport):
            print("history: not in this build (no CHATHISTORY in ISUPPORT), skipped", flush=True)
        else:
            carol.send("JOIN #smoke")
            carol.expect(r" 366 carol #smoke ", "end of NAMES for #smoke")
            carol.send("CHATHISTORY LATEST #smoke * 10")
            carol.expect(r"BATCH \+\S+ chathistory #smoke", "the history batch")
            carol.expect(r":alice!\S+ PRIVMSG #smoke :hello from the board$", "the message, read back after a restart")
            carol.expect(r"BATCH -", "the end of the batch")
            print("history: the message survived the restart", flush=True)
        stop(proc, log, (carol,))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runner", help="emulator to run the binary with, e.g. qemu-aarch64-static")
    ap.add_argument("binary")
    # Anything not known here is passed on to the node.
    args, node_flags = ap.parse_known_args()
    args.flags = node_flags
    started = time.monotonic()
    clients = []
    try:
        with tempfile.TemporaryDirectory(prefix="chatnode-smoke-") as data_dir:
            first_run(args, data_dir, started, clients)
            second_run(args, data_dir, started, clients)
        what = f"{args.binary} under {args.runner}" if args.runner else args.binary
        print(f"PASS: {what}: message delivered, clean exit 0, restarted "
              f"({time.monotonic() - started:.2f}s in all)", flush=True)
        return 0
    except (Failure, OSError) as e:
        print(f"FAIL: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        for c in clients:
            c.close()


if __name__ == "__main__":
    sys.exit(main())
