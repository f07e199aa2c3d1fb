#!/usr/bin/env python3
"""Bytes of memory per idle client over TCP, TLS and WebSocket, and TLS handshakes per second.

    scripts/measure_reach.py BINARY [--clients 500] [--threads 1]

Makes a self-signed ECDSA P-256 certificate (openssl CLI) in a temporary directory, starts BINARY
with a plain, a TLS and a WebSocket listener on 127.0.0.1 (loopback exempt from the per-address
limits), then opens N registered idle clients over each transport in turn (plain, TLS, ws) and
reads VmRSS after each step: the growth divided by N is the cost of one idle client of that
transport. Then four client threads make full TLS handshakes for 5 s: the rate, and the node's
CPU time per handshake.
Everything stops by itself.
"""

import argparse
import base64
import os
import re
import resource
import socket
import ssl
import subprocess
import sys
import tempfile
import time

DEADLINE = 60.0


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def read_until(sock, needles, deadline=DEADLINE):
    end = time.monotonic() + deadline
    buf = b""
    while time.monotonic() < end:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError(f"closed; got {buf[-300:]!r}")
        buf += chunk
        if any(n in buf for n in needles):
            return buf
    raise RuntimeError(f"timed out; got {buf[-300:]!r}")


def ws_frame(text):
    """One masked text frame (client to server), for a short payload."""
    data = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return bytes([0x81, 0x80 | len(data)]) + mask + masked


def open_plain(addr, nick):
    s = socket.create_connection(addr)
    s.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
    read_until(s, [b" 376 ", b" 422 "])
    return s


def open_tls(addr, nick, ctx):
    s = ctx.wrap_socket(socket.create_connection(addr), server_hostname="localhost")
    s.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
    read_until(s, [b" 376 ", b" 422 "])
    return s


def open_ws(addr, nick):
    s = socket.create_connection(addr)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET / HTTP/1.1\r\nHost: {addr[0]}:{addr[1]}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Protocol: text.ircv3.net\r\n\r\n").encode())
    read_until(s, [b"\r\n\r\n"])
    s.sendall(ws_frame(f"NICK {nick}") + ws_frame(f"USER {nick} 0 * :{nick}"))
    read_until(s, [b" 376 ", b" 422 "])
    return s


def cpu_seconds(pid):
    """The process's user + system CPU time, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def handshakes(pid, addr, ctx, seconds=5.0, threads=4):
    """Full TLS handshakes (no resumption) from `threads` client threads for `seconds`: the rate,
    and the node's own CPU time per handshake (the figure that carries over to a board)."""
    import threading
    counts = [0] * threads
    stop = time.monotonic() + seconds

    def run(k):
        while time.monotonic() < stop:
            with ctx.wrap_socket(socket.create_connection(addr), server_hostname="localhost"):
                counts[k] += 1

    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
    total = sum(counts)
    return (f"TLS handshakes ({threads} client threads, {wall:.1f} s, clients on the same cores): "
            f"{total / wall:.0f} per second; node CPU {cpu * 1e3 / max(total, 1):.2f} ms per handshake")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("binary")
    p.add_argument("--clients", type=int, default=500)
    p.add_argument("--threads", default="1")
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    work = tempfile.mkdtemp(prefix="chatnode-reach-")
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "2", "-keyout", key, "-out", cert, "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    log = open(os.path.join(work, "node.log"), "w+")
    node = subprocess.Popen(
        [args.binary, "--threads", args.threads, "--listen", "127.0.0.1:0", "--listen-tls", "127.0.0.1:0",
         "--listen-ws", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, "--exempt", "127.0.0.0/8",
         "--max-clients", str(args.clients * 4), "--history", "off", "--data-dir", work],
        stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "RUST_LOG": "warn,chatnode=info"})
    sockets = []
    try:
        end = time.monotonic() + DEADLINE
        addrs = []
        while len(addrs) < 3 and time.monotonic() < end:
            log.seek(0)
            addrs = re.findall(r"listening on (\S+)", log.read())
            time.sleep(0.05)
        (plain, tls, ws) = [(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])) for a in addrs[:3]]
        ctx = ssl.create_default_context(cafile=cert)
        time.sleep(0.5)
        before = rss_kb(node.pid)
        print(f"{os.path.basename(args.binary)}: idle RSS {before} KiB, {args.clients} clients per step")
        n = args.clients
        for name, opener in (("tcp", lambda i: open_plain(plain, f"p{i}")),
                             ("tls", lambda i: open_tls(tls, f"t{i}", ctx)),
                             ("ws", lambda i: open_ws(ws, f"w{i}"))):
            for i in range(n):
                sockets.append(opener(i))
            time.sleep(0.5)
            after = rss_kb(node.pid)
            print(f"  {name:4} +{after - before} KiB for {n} idle clients: {(after - before) * 1024 // n} bytes each")
            before = after
        print("  " + handshakes(node.pid, tls, ctx))
    finally:
        for s in sockets:
            s.close()
        node.terminate()
        node.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
