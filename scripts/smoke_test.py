#!/usr/bin/env python3
"""Smoke test of a chatnode binary, possibly under an emulator.

    scripts/smoke_test.py [--runner qemu-aarch64-static] BINARY [EXTRA FLAGS...]

Starts BINARY on 127.0.0.1:0 (RUST_LOG=info), learns the port from its `listening on ADDR` log
line, connects two clients over loopback, registers both, joins them to #smoke, sends a channel
message from one and waits for it at the other, then sends SIGTERM and checks that both clients
get `ERROR :Server shutting down` and that the node exits 0. Then it starts the node again on the
same data dir (a temporary one) and, if the build has history (CHATHISTORY in ISUPPORT), reads the
message back with `CHATHISTORY LATEST #smoke * 10` before a second clean SIGTERM.

With `--reach` (builds with the `tls` and `websocket` features) a third run adds a TLS and a
WebSocket listener, with a self-signed certificate made by the openssl CLI (ECDSA P-256, or RSA
with SMOKE_TLS_KEY=rsa:2048): a TLS client, a WebSocket client (text.ircv3.net) and a plain
client chat in one channel, WHOIS shows 671 for the TLS client only, and then SMOKE_HANDSHAKES
(default 20) full TLS handshakes are made one after another and timed: wall time per handshake
and the node's CPU time per handshake (under qemu, the emulator's CPU time: what emulating the
board's crypto costs on this machine, an upper bound for a real board).

Every wait has a deadline; nothing sleeps to synchronise. Whatever it started is killed on the
way out. Exit status 0 = pass.
"""

import argparse
import base64
import os
import re
import selectors
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

# Emulated start-up of a release binary is well under a second here; generous for slow CI.
DEADLINE = float(os.environ.get("SMOKE_DEADLINE", "30"))
# The reach run reports polls longer than this (a handshake runs in one poll of its task).
SLOW_POLL_MS = 20


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
    """A line client over plain TCP, or over TLS when given an SSL context."""

    def __init__(self, name, addr, tls=None):
        self.name = name
        self.sock = socket.create_connection(addr, timeout=DEADLINE)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""

    def send(self, line):
        print(f"  {self.name} > {line}", flush=True)
        self.sock.sendall(line.encode() + b"\r\n")

    def recv(self):
        return self.sock.recv(4096)

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
                chunk = self.recv()
            except socket.timeout:
                continue
            if not chunk:
                raise Failure(f"{self.name}: connection closed before {what}")
            self.buf += chunk

    def close(self):
        self.sock.close()


class WsClient(Client):
    """IRC over WebSocket (text.ircv3.net): one message per line, masked as RFC 6455 asks."""

    def __init__(self, name, addr):
        super().__init__(name, addr)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET / HTTP/1.1\r\nHost: {addr[0]}:{addr[1]}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Protocol: text.ircv3.net\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise Failure(f"{name}: closed during the WebSocket handshake: {head!r}")
            head += chunk
        head, self.frames = head.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0].decode()
        if " 101 " not in status or b"text.ircv3.net" not in head:
            raise Failure(f"{name}: WebSocket handshake refused: {head.decode(errors='replace')}")
        print(f"  {name}: {status}, subprotocol text.ircv3.net", flush=True)

    def send(self, line):
        print(f"  {self.name} > {line}", flush=True)
        data, mask = line.encode(), os.urandom(4)
        size = bytes([0x80 | len(data)]) if len(data) < 126 else bytes([0x80 | 126]) + len(data).to_bytes(2, "big")
        self.sock.sendall(bytes([0x81]) + size + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self):
        """The next whole frames' payloads as lines (CRLF added); b"" when closed."""
        while True:
            out = b""
            while len(self.frames) >= 2:
                opcode, size, at = self.frames[0] & 0x0F, self.frames[1] & 0x7F, 2
                if size == 126:
                    size, at = int.from_bytes(self.frames[2:4], "big"), 4
                elif size == 127:
                    size, at = int.from_bytes(self.frames[2:10], "big"), 10
                if len(self.frames) < at + size:
                    break
                payload, self.frames = self.frames[at:at + size], self.frames[at + size:]
                if opcode == 8:
                    return out or b""
                if opcode in (1, 2):
                    if payload.endswith(b"\n"):
                        raise Failure(f"{self.name}: a WebSocket message carries a line ending: {payload!r}")
                    out += payload + b"\r\n"
            if out:
                return out
            chunk = self.sock.recv(4096)
            if not chunk:
                return b""
            self.frames += chunk


def start(args, data_dir, extra=()):
    cmd = ([args.runner] if args.runner else []) + [args.binary, "--listen", "127.0.0.1:0", "--threads", "1"]
    cmd += ["--data-dir", data_dir] + list(extra) + args.flags
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
        # History comes in a batch only to a client that asked for batches (without the cap a
        # client gets the bare lines); a build without history refuses the pair (NAK).
        carol.send("CAP REQ :batch draft/chathistory")
        carol.send("NICK carol")
        carol.send("USER carol 0 * :carol")
        carol.expect(r" CAP \S+ (ACK|NAK) ", "the answer to CAP REQ")
        carol.send("CAP END")
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


def make_certificate(work):
    """A self-signed certificate for localhost (openssl CLI): ECDSA P-256 unless SMOKE_TLS_KEY."""
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    kind = os.environ.get("SMOKE_TLS_KEY", "ec")
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if kind == "ec" else ["-newkey", kind]
    subprocess.run(["openssl", "req", "-x509", *new_key, "-nodes", "-days", "2", "-keyout", key, "-out", cert,
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key, ("ECDSA P-256" if kind == "ec" else kind.upper())


def cpu_seconds(pid):
    """User + system CPU time of process `pid` (the emulator, under qemu), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_handshakes(proc, addr, ctx, count):
    """`count` full TLS handshakes, one after another (no session resumption): per handshake,
    the wall time seen by the client and the node's CPU time."""
    cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
    for _ in range(count):
        with ctx.wrap_socket(socket.create_connection(addr, timeout=DEADLINE), server_hostname="localhost") as s:
            s.do_handshake()
    wall, cpu = time.monotonic() - t0, cpu_seconds(proc.pid) - cpu0
    return wall * 1e3 / count, cpu * 1e3 / count


def reach_run(args, data_dir, started, clients):
    """TLS and WebSocket clients against the node, then timed TLS handshakes."""
    cert, key, key_kind = make_certificate(data_dir)
    extra = ["--slow-poll-ms", str(SLOW_POLL_MS), "--listen-tls", "127.0.0.1:0", "--listen-ws", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key,
             "--history", "off", "--exempt", "127.0.0.0/8"]
    proc, log = start(args, data_dir, extra)
    try:
        plain_addr = listening(log, proc, started)
        tls_m = log.wait_for(r"listening on (127\.0\.0\.1):(\d+) \(tls\)", proc, "the TLS listener")
        ws_m = log.wait_for(r"listening on (127\.0\.0\.1):(\d+) \(ws\)", proc, "the WebSocket listener")
        tls_addr, ws_addr = (tls_m.group(1), int(tls_m.group(2))), (ws_m.group(1), int(ws_m.group(2)))
        ctx = ssl.create_default_context(cafile=cert)
        secure = Client("secure", tls_addr, tls=ctx)
        clients.append(secure)
        print(f"  secure: {secure.sock.version()}, {secure.sock.cipher()[0]}", flush=True)
        web = WsClient("web", ws_addr)
        clients.append(web)
        plain = Client("plain", plain_addr)
        clients.append(plain)
        for c in (secure, web, plain):
            c.send(f"NICK {c.name}")
            c.send(f"USER {c.name} 0 * :{c.name}")
            c.expect(r" 001 " + c.name + r" ", "welcome (001)")
            c.expect(r" (376|422) ", "end of MOTD (376 or 422)")
            c.send("JOIN #reach")
            c.expect(r" 366 " + c.name + r" #reach ", "end of NAMES for #reach")
        secure.expect(r"^:plain!\S+ JOIN :?#reach", "plain's JOIN")
        secure.send("PRIVMSG #reach :over tls")
        web.expect(r"^:secure!\S+ PRIVMSG #reach :over tls$", "the TLS client's message, over WebSocket")
        plain.expect(r"^:secure!\S+ PRIVMSG #reach :over tls$", "the TLS client's message, over TCP")
        web.send("PRIVMSG #reach :over websocket")
        secure.expect(r"^:web!\S+ PRIVMSG #reach :over websocket$", "the WebSocket client's message, over TLS")
        plain.expect(r"^:web!\S+ PRIVMSG #reach :over websocket$", "the WebSocket client's message, over TCP")
        plain.send("WHOIS secure")
        plain.expect(r" 671 plain secure ", "671 (secure connection) for the TLS client")
        count = int(os.environ.get("SMOKE_HANDSHAKES", "20"))
        wall_ms, cpu_ms = time_handshakes(proc, tls_addr, ctx, count)
        where = f"under {args.runner}" if args.runner else "natively"
        print(f"TLS handshakes {where} ({key_kind}, {count} in a row): {wall_ms:.1f} ms wall, "
              f"node CPU {cpu_ms:.1f} ms per handshake", flush=True)
        stop(proc, log, (secure, web, plain))
        slow = [l for l in log.lines if "slow poll" in l or "watchdog:" in l]
        print(f"slow-poll warnings during the run (threshold {SLOW_POLL_MS} ms): {len(slow)}", flush=True)
        for line in slow:
            print(f"  {line}", flush=True)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runner", help="emulator to run the binary with, e.g. qemu-aarch64-static")
    ap.add_argument("--reach", action="store_true",
                    help="also test a TLS and a WebSocket client, and time TLS handshakes")
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
            if args.reach:
                reach_run(args, data_dir, started, clients)
        what = f"{args.binary} under {args.runner}" if args.runner else args.binary
        reach = ", TLS and WebSocket clients chatted" if args.reach else ""
        print(f"PASS: {what}: message delivered, clean exit 0, restarted{reach} "
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
