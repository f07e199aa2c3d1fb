#!/usr/bin/env python3
"""How long the node's polls take on a slow profile: the figures behind --slow-poll-ms's default.

    scripts/slow_poll_qemu.py BINARY CLIENTS MESSAGES [EXTRA FLAGS...]
    scripts/slow_poll_qemu.py target/aarch64-unknown-linux-musl/embedded/chatnode 100 20

Runs BINARY (under qemu-aarch64-static when it is an aarch64 binary) with --threads 1, an
operator, and loopback exempt from the flood limits; connects CLIENTS clients, joins them to one
channel, has each send MESSAGES messages, waits for all of them (PING fences), then asks STATS t
and prints each task kind's polls, slow polls and slowest poll, and the slow-poll log lines.
Bounded: every read ends at the node's close; the node is stopped at the end. See
docs/scheduling.md, "The default threshold".
"""
import os, re, socket, subprocess, sys, tempfile, time

binary, nclients, nmsgs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
runner = ["qemu-aarch64-static"] if "aarch64" in binary else []
threads = "1"
hashv = subprocess.run(runner + [binary, "--hash-password"], input=b"pw\n",
                       capture_output=True).stdout.decode().strip()
conf = os.path.join(tempfile.mkdtemp(prefix="slow-poll-"), "node.toml")
open(conf, "w").write(f'[[operator]]\nname = "admin"\npassword_hash = "{hashv}"\n')
cmd = runner + [binary, "--listen", "127.0.0.1:0", "--config", conf, "--threads", threads,
                "--exempt", "127.0.0.0/8"] + sys.argv[4:]
env = dict(os.environ, RUST_LOG="info", RUST_LOG_STYLE="never")
p = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
port=None; t0=time.time(); logs=[]
while port is None:
    line = p.stderr.readline().decode()
    logs.append(line)
    m = re.search(r"listening on 127.0.0.1:(\d+)", line)
    if m: port=int(m.group(1))
    if not line or time.time()-t0>60: sys.exit("the node did not start: " + "".join(logs))
import threading
def drain():
    for line in p.stderr:
        logs.append(line.decode())
threading.Thread(target=drain, daemon=True).start()
def conn(nick):
    s=socket.create_connection(("127.0.0.1",port)); f=s.makefile("rb")
    s.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
    while True:
        l=f.readline()
        if not l: sys.exit(f"{nick} closed during registration; log: {logs[-5:]}")
        if b" 376 " in l or b" 422 " in l: break
    return s,f
def until(f, pat):
    while True:
        l=f.readline()
        if not l: raise SystemExit("closed")
        if pat in l: return l
cs=[]
for i in range(nclients):
    s,f=conn(f"u{i}"); s.sendall(b"JOIN #m\r\n"); until(f,b" 366 "); cs.append((s,f))
for j in range(nmsgs):
    for i,(s,f) in enumerate(cs):
        s.sendall(f"PRIVMSG #m :message {j} from {i} with some text to carry\r\n".encode())
# fence
for s,f in cs:
    s.sendall(b"PING :fence\r\n")
for s,f in cs:
    until(f, b"PONG")
s,f=cs[0]
s.sendall(b"OPER admin pw\r\n"); until(f,b" 381 ")
s.sendall(b"STATS t\r\n")
while True:
    l=f.readline().decode()
    if " 219 " in l: break
    if " 249 " in l: print(l.split(":",2)[2].strip())
p.terminate(); p.wait(timeout=30)
time.sleep(0.2)
print("slow-poll warnings:", [l.strip()[25:] for l in logs if "slow poll" in l or "watchdog" in l])
