#!/usr/bin/env bash
# What history costs the chat: loadgen's fanout N=100 S=10 against each build with --history off
# and --history on (a fresh data dir per run), alternating build and setting in every round, so
# both sides of each ratio are measured in one run under the same load. One line per run, then
# the medians per build and setting, the on/off ratios, and the load average before and after.
#
#   scripts/bench-history.sh [BUILD...]      (default: chatnode chatnode-tokio)
#   ROUNDS=3 THREADS=2 MESSAGES=5000 scripts/bench-history.sh
#
# Expects release builds: cargo build --release --all-features --bins --example loadgen
# Figures per run: delivered/s, p99 latency, the node's CPU per delivered message (loadgen reads
# /proc/PID/stat), its peak thread count (sampled every 100 ms), and the records stored.
# Loopback only; every node is stopped with SIGTERM at the end of its run.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILDS=("$@")
[ ${#BUILDS[@]} -gt 0 ] || BUILDS=(chatnode chatnode-tokio)
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
MESSAGES=${MESSAGES:-5000}
loadgen=target/release/examples/loadgen
for b in "${BUILDS[@]}"; do
    [ -x "target/release/$b" ] || {
        echo "bench-history: build first: cargo build --release --all-features --bins --example loadgen" >&2
        exit 1
    }
done
[ -x "$loadgen" ] || { echo "bench-history: no $loadgen" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
results="$work/results.jsonl"

run_one() {
    local bin=$1 history=$2 round=$3
    local dir="$work/$bin-$history-$round" log="$work/$bin-$history-$round.log"
    mkdir -p "$dir"
    "target/release/$bin" --listen 127.0.0.1:0 --threads "$THREADS" --max-clients 10000 \
        --exempt 127.0.0.0/8 --history "$history" --data-dir "$dir" 2>"$log" &
    local pid=$!
    local addr=""
    for _ in $(seq 100); do
        addr=$(grep -o 'listening on [0-9.:]*' "$log" | head -1 | cut -d' ' -f3 || true)
        [ -n "$addr" ] && break
        sleep 0.1
    done
    [ -n "$addr" ] || { echo "node did not start: $(cat "$log")" >&2; kill "$pid"; exit 1; }
    (
        while kill -0 "$pid" 2>/dev/null; do
            ls "/proc/$pid/task" 2>/dev/null | wc -l
            sleep 0.1
        done
    ) >"$work/threads-$bin-$history-$round" &
    local sampler=$!
    local out
    out=$("$loadgen" fanout --server "$addr" --clients 100 --senders 10 --messages "$MESSAGES" \
        --window 100 --size 64 --connect-concurrency 8 --server-pid "$pid" --json \
        2>"$work/loadgen.err") || out=""
    kill -TERM "$pid"
    wait "$pid" || true
    wait "$sampler" 2>/dev/null || true
    local peak
    peak=$(sort -n "$work/threads-$bin-$history-$round" | tail -1)
    local stored=0
    if [ "$history" = on ]; then
        stored=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from history').fetchone()[0])" "$dir/history.sqlite3")
    fi
    if [ -z "$out" ]; then
        # A failed run (on a loaded machine a loadgen client can fall behind and be dropped
        # for SendQ): said, left out of the medians.
        echo "$bin history=$history round=$round: loadgen failed: $(tail -2 "$work/loadgen.err")"
        return
    fi
    python3 - "$bin" "$history" "$round" "$peak" "$stored" "$out" >>"$results" <<'EOF'
import json, sys
bin_, history, rnd, peak, stored, out = sys.argv[1:]
r = json.loads(out)
print(json.dumps({"build": bin_, "history": history, "round": int(rnd), "threads_peak": int(peak),
                  "stored": int(stored), "delivered_per_s": r.get("delivered_per_s"),
                  "p99_us": r.get("latency_p99_us"), "lost": r.get("lost"),
                  "cpu_us_per_msg": r.get("server_cpu_us_per_msg")}))
EOF
    tail -1 "$results"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
    # Rotate which build and which setting go first, so neither always runs first.
    if [ $((round % 2)) -eq 1 ]; then order=(off on); else order=(on off); fi
    for bin in "${BUILDS[@]}"; do
        for history in "${order[@]}"; do
            run_one "$bin" "$history" "$round"
        done
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = lambda xs: statistics.median(xs) if xs else float("nan")
print()
print("| build | history | delivered/s (median) | p99 µs | CPU µs per delivered message | peak threads | stored | lost |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
summary = {}
for b in dict.fromkeys(r["build"] for r in rows):
    for h in ("off", "on"):
        rs = [r for r in rows if r["build"] == b and r["history"] == h]
        if not rs:
            continue
        s = {k: med([r[k] for r in rs if r[k] is not None])
             for k in ("delivered_per_s", "p99_us", "cpu_us_per_msg", "threads_peak", "stored")}
        s["lost"] = sum(r["lost"] or 0 for r in rs)
        summary[(b, h)] = s
        print(f"| {b} | {h} | {s['delivered_per_s']:,.0f} | {s['p99_us']:,.0f} | "
              f"{s['cpu_us_per_msg']:.3f} | {s['threads_peak']:.0f} | {s['stored']:,.0f} | {s['lost']} |")
print()
for b in dict.fromkeys(r["build"] for r in rows):
    off, on = summary.get((b, "off")), summary.get((b, "on"))
    if off and on:
        print(f"{b}: history on/off delivered/s {on['delivered_per_s'] / off['delivered_per_s']:.3f}, "
              f"CPU per delivered message {on['cpu_us_per_msg'] / off['cpu_us_per_msg']:.3f} "
              f"(+{(on['cpu_us_per_msg'] - off['cpu_us_per_msg']) * 100:.1f} µs per stored message, "
              f"100 deliveries each)")
EOF
