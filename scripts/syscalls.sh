#!/usr/bin/env bash
# System calls per relayed message, on each build, counted with `strace -c -f` (or `perf stat`).
#
#   scripts/syscalls.sh                       # pairs, --threads 1, both builds
#   COUNTER=perf scripts/syscalls.sh          # count with perf's syscall tracepoints instead
#   THREADS=2 scripts/syscalls.sh             # --threads 2
#   SCENARIO=fanout1000 scripts/syscalls.sh   # one sender, 999 receivers
#   BUILDS="chatnode" ROUNDS=3 scripts/syscalls.sh
#
# Needs release builds (docs/comparison.md, "The commands"): target/release/chatnode,
# target/release/chatnode-tokio and target/release/examples/loadgen. Each round starts a node
# under `strace -c -f`, runs loadgen against it, stops it with SIGINT and divides every system
# call count of the node (all its threads) by the messages it relayed: 2 per round trip in
# `pairs` (one in, one out), one per delivery in `fanout`. strace slows every system call down a
# lot, so the node's *times* under strace mean nothing; the *counts* are what this measures.
# They move too, in fan-out: a node slowed by strace batches more lines per write (1 Dec 2026,
# fanout1000 at --threads 2: 0.75 against 0.52 `sendto` + `recvfrom` per delivery under strace,
# 1.09x Tokio's `sendto` without it). `COUNTER=perf` counts with `perf stat -e
# 'syscalls:sys_enter_*'` on the node's process (root or perf_event_paranoid <= 1, and tracefs),
# which costs the node far less; prefer it when perf is there.
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-1}
SCENARIO=${SCENARIO:-pairs}
COUNTER=${COUNTER:-strace}
ROUNDS=${ROUNDS:-1}
BUILDS=${BUILDS:-"chatnode chatnode-tokio"}
OUT=${OUT:-target/syscalls}
mkdir -p "$OUT"

# The counts include the set-up (connecting, registering, joining): a few dozen calls per
# client, spread over the messages. Under strace the message counts are small to keep a run
# short, so in fanout1000 the set-up weighs heavily (1,000 clients for 300 messages); under perf
# they are examples/compare's, and the set-up weighs little.
if [ "$COUNTER" = perf ]; then PAIRS_M=2000 FAN1000_M=5000 FAN100_M=10000; else PAIRS_M=300 FAN1000_M=300 FAN100_M=1000; fi
case "$SCENARIO" in
    pairs) LOADGEN_ARGS=(pairs --clients 200 --messages "$PAIRS_M") ;;
    fanout1000) LOADGEN_ARGS=(fanout --clients 1000 --senders 1 --messages "$FAN1000_M" --window 100 --size 64) ;;
    fanout100) LOADGEN_ARGS=(fanout --clients 100 --senders 10 --messages "$FAN100_M" --window 100 --size 64) ;;
    *) echo "SCENARIO: pairs, fanout1000 or fanout100" >&2; exit 2 ;;
esac
ulimit -n 20000 2>/dev/null || true

# Runs one build once; prints "build round messages file".
one_run() {
    local build=$1 round=$2 counts=$OUT/$1-t$THREADS-$SCENARIO-r$2.$COUNTER log=$OUT/$1.log
    # The same flags as examples/compare: loopback exempt from per-address limits and flood
    # control, and no message history (its SQLite reads and writes are not the I/O path's).
    local node_cmd=("target/release/$build" --listen 127.0.0.1:0 --threads "$THREADS"
        --max-clients 10000 --exempt 127.0.0.0/8 --history off)
    local tracer="" node="" port=""
    if [ "$COUNTER" = perf ]; then
        "${node_cmd[@]}" 2>"$log" &
        node=$!
    else
        strace -c -f -o "$counts" "${node_cmd[@]}" 2>"$log" &
        tracer=$!
    fi
    for _ in $(seq 200); do
        port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" | head -1 | cut -d: -f2 || true)
        [ -n "$port" ] && break
        sleep 0.1
    done
    if [ "$COUNTER" = perf ]; then
        # Counts every thread of the node, from here to the SIGINT below.
        perf stat -x, -e 'syscalls:sys_enter_*' -p "$node" -o "$counts" &
        tracer=$!
        sleep 1 # perf attaches its tracepoints before the load starts (not a sync point: the
                # setup phase that follows takes longer, and both builds get the same)
    else
        node=$(ps --ppid "$tracer" -o pid= | tr -d ' ')
    fi
    if [ -z "$port" ] || [ -z "$node" ]; then
        echo "$build did not start; see $log" >&2
        kill "$tracer" 2>/dev/null || true
        exit 1
    fi
    local report
    # A run that hits loadgen's deadline still relayed what it relayed: count that.
    report=$(target/release/examples/loadgen "${LOADGEN_ARGS[@]}" --server "127.0.0.1:$port" \
        --duration 300 --json || true)
    if [ "$COUNTER" = perf ]; then
        kill -INT "$tracer"
        wait "$tracer" || true
        kill -INT "$node"
        wait "$node" || true
    else
        kill -INT "$node"
        wait "$tracer" || true
    fi
    local messages
    messages=$(python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print(2 * r["round_trips"] if "round_trips" in r else r["delivered"])' "$report")
    echo "$build $round $messages $counts"
}

runs=()
for round in $(seq "$ROUNDS"); do
    for build in $BUILDS; do
        runs+=("$(one_run "$build" "$round")")
    done
done

python3 - "$THREADS" "$SCENARIO" "${runs[@]}" <<'EOF'
import statistics, sys
threads, scenario, runs = sys.argv[1], sys.argv[2], sys.argv[3:]
groups = {
    "epoll_ctl": ["epoll_ctl"],
    "epoll_wait / epoll_pwait": ["epoll_wait", "epoll_pwait", "epoll_pwait2"],
    "timerfd_settime": ["timerfd_settime"],
    "read (notifier, signal pipe)": ["read"],
    "write (notifier)": ["write"],
    "futex": ["futex"],
    "sendto + recvfrom": ["sendto", "recvfrom"],
    "writev / sendmsg": ["writev", "sendmsg"],
}
per_build = {}
for run in runs:
    build, _round, messages, path = run.split()
    counts = {}
    for line in open(path):
        if path.endswith(".perf"):
            # CSV: count,unit,event,...; event is syscalls:sys_enter_NAME
            f = line.strip().split(",")
            if len(f) >= 3 and f[0].isdigit() and f[2].startswith("syscalls:sys_enter_"):
                if int(f[0]):
                    counts[f[2][len("syscalls:sys_enter_"):]] = int(f[0])
            continue
        f = line.split()
        if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
            counts[f[-1]] = int(f[3])
    per_build.setdefault(build, []).append((int(messages), counts))
builds = list(per_build)
counter = "perf stat" if runs[0].endswith(".perf") else "strace -c -f"
print(f"system calls per relayed message, scenario {scenario}, --threads {threads}, "
      f"median of {len(per_build[builds[0]])} run(s), counted with {counter}\n")
print("| system call | " + " | ".join(builds) + " |")
print("| --- |" + " ---: |" * len(builds))
def row(name, calls):
    vals = []
    for b in builds:
        vals.append(statistics.median(sum(c.get(s, 0) for s in calls) / m for m, c in per_build[b]))
    print(f"| `{name}` | " + " | ".join(f"{v:.4f}" for v in vals) + " |")
for name, calls in groups.items():
    row(name, calls)
everything = sorted({s for b in builds for _, c in per_build[b] for s in c})
row("all system calls", everything)
print()
for b in builds:
    print(f"{b}: messages per run " + ", ".join(str(m) for m, _ in per_build[b]))
EOF
