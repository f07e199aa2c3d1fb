#!/usr/bin/env bash
# Where one build spends more CPU per message than the other: `perf record` of each node during
# the message phase of one loadgen scenario, every function's samples divided by the messages
# delivered per second, and the two builds side by side, largest difference first. Also each
# node's connection-task polls (`STATS t`) per delivery. This is how docs/executor.md's decision
# 11 was found: the extra samples were in the *shared* code (`ConnectionFuture::poll`,
# `realloc`, `SendQueue::push_inner`), and `STATS t` showed why: more polls for the same
# deliveries.
#
#   scripts/perf-diff.sh                          # fanout1000, --threads 2, both builds
#   THREADS=1 SCENARIO=fanout100 scripts/perf-diff.sh
#   TOP=40 scripts/perf-diff.sh                   # more rows
#
# Needs release builds (docs/comparison.md, "The commands"), perf (root or
# perf_event_paranoid <= 1) and python3. The window is WINDOW seconds (default 1.5) once loadgen
# reports progress, so set-up (connecting, registering, joining) is left out; one run per build,
# so read differences of a few per cent as noise and repeat before trusting them.
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-2}
SCENARIO=${SCENARIO:-fanout1000}
WINDOW=${WINDOW:-1.5}
TOP=${TOP:-25}
OUT=${OUT:-target/perf-diff}
mkdir -p "$OUT"
case "$SCENARIO" in
    pairs) LOADGEN_ARGS=(pairs --clients 200 --messages 4000) ;;
    fanout1000) LOADGEN_ARGS=(fanout --clients 1000 --senders 1 --messages 12000 --window 100 --size 64) ;;
    fanout100) LOADGEN_ARGS=(fanout --clients 100 --senders 10 --messages 30000 --window 100 --size 64) ;;
    *) echo "SCENARIO: pairs, fanout1000 or fanout100" >&2; exit 2 ;;
esac
ulimit -n 20000 2>/dev/null || true

# STATS t needs an IRC operator: one with a throwaway password, for this run only.
config=$OUT/oper.toml
hash=$(printf 'perf-diff\nperf-diff\n' | target/release/chatnode --hash-password 2>/dev/null | tail -1)
printf '[[operator]]\nname = "perfdiff"\npassword_hash = "%s"\n' "$hash" > "$config"

# Connection-task polls so far, from STATS t.
conn_polls() {
    python3 - "$1" <<'EOF'
import re, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"NICK perfdiff\r\nUSER p 0 * :p\r\nOPER perfdiff perf-diff\r\nSTATS t\r\n")
buf = b""
while b" 219 " not in buf:
    data = s.recv(65536)
    if not data:
        break
    buf += data
m = re.search(rb"task conn: .*? polls (\d+)", buf)
print(m.group(1).decode() if m else "0")
EOF
}

# Profiles one build; writes OUT/BUILD.syms ("samples<TAB>symbol") and prints its figures.
profile() {
    local build=$1 log=$OUT/$1.log lg=$OUT/$1.loadgen
    target/release/$build --listen 127.0.0.1:0 --threads "$THREADS" --max-clients 10000 \
        --exempt 127.0.0.0/8 --history off --config "$config" 2>"$log" &
    local node=$! port=""
    for _ in $(seq 200); do
        port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" | head -1 | sed 's/.*://') || true
        [ -n "$port" ] && break
        sleep 0.05
    done
    [ -n "$port" ] || { echo "$build did not start: see $log" >&2; kill "$node"; exit 1; }
    target/release/examples/loadgen "${LOADGEN_ARGS[@]}" --server "127.0.0.1:$port" --json \
        --server-pid "$node" --duration 120 >"$lg.json" 2>"$lg" &
    local loadgen=$!
    # The message phase has begun when loadgen prints its progress line.
    for _ in $(seq 1500); do grep -qE 'delivered|round trips' "$lg" 2>/dev/null && break; sleep 0.02; done
    perf record -q -F 2000 -g -p "$node" -o "$OUT/$build.data" -- sleep "$WINDOW" >/dev/null 2>&1
    wait "$loadgen" || true
    local polls
    polls=$(conn_polls "$port")
    kill -INT "$node"; wait "$node" 2>/dev/null || true
    perf report -i "$OUT/$build.data" --no-children --sort sym -g none -q -n 2>/dev/null \
        | awk 'NF > 2 { n = $2; $1 = ""; $2 = ""; sub(/^ +/, ""); print n "\t" $0 }' > "$OUT/$build.syms"
    python3 - "$lg.json" "$polls" "$build" "$OUT/$build.rate" <<'EOF'
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
rate = d.get("delivered_per_s") or 2 * d.get("round_trips_per_s", 0)
open(sys.argv[4], "w").write(str(rate))
print(f"{sys.argv[3]}: {rate:,.0f} messages/s, server CPU {d['server_cpu_us_per_msg']} us/msg, "
      f"connection polls (whole run, set-up included) {int(sys.argv[2]):,}")
EOF
}

profile chatnode
profile chatnode-tokio
python3 - "$OUT" "$TOP" "$SCENARIO" "$THREADS" <<'EOF'
import sys
out, top = sys.argv[1], int(sys.argv[2])
def load(build):
    per = {}
    for line in open(f"{out}/{build}.syms"):
        n, sym = line.rstrip("\n").split("\t", 1)
        sym = sym.replace("chatnode-tokio", "chatnode")
        per[sym] = per.get(sym, 0) + int(n)
    rate = float(open(f"{out}/{build}.rate").read()) / 1e6
    return {k: v / rate for k, v in per.items()}
a, b = load("chatnode"), load("chatnode-tokio")
print(f"\nperf samples per million messages/s, {sys.argv[3]}, --threads {sys.argv[4]} "
      f"(2,000 samples a second per busy thread): smol {sum(a.values()):.0f}, Tokio {sum(b.values()):.0f}\n")
print("| smol | Tokio | smol - Tokio | function |\n| ---: | ---: | ---: | --- |")
rows = sorted(set(a) | set(b), key=lambda k: -(a.get(k, 0) - b.get(k, 0)))
for k in rows[:top] + rows[-max(top // 3, 1):]:
    print(f"| {a.get(k, 0):.1f} | {b.get(k, 0):.1f} | {a.get(k, 0) - b.get(k, 0):+.1f} | `{k[:90]}` |")
EOF
