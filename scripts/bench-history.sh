#!/usr/bin/env bash
# What history costs the chat: loadgen's fanout N=100 S=10 against a node with --history on and
# --history off, alternating, ROUNDS times each, on one build; prints one line per run with
# msgs/s, p99, the node's threads (peak, sampled every 100 ms) and the records stored.
#
#   scripts/bench-history.sh [chatnode|chatnode-tokio]      (ROUNDS=3 THREADS=2 by default)
#
# Expects release builds: cargo build --release --all-features --bins --example loadgen
# Loopback only; every node is stopped with SIGTERM at the end of its run.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${1:-chatnode}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
MESSAGES=${MESSAGES:-10000}
node_bin=target/release/$BIN
loadgen=target/release/examples/loadgen
[ -x "$node_bin" ] && [ -x "$loadgen" ] || {
    echo "bench-history: build first: cargo build --release --all-features --bins --example loadgen" >&2
    exit 1
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run_one() {
    local history=$1 round=$2
    local dir="$work/$history-$round" log="$work/$history-$round.log"
    mkdir -p "$dir"
    "$node_bin" --listen 127.0.0.1:0 --threads "$THREADS" --max-clients 10000 \
        --exempt 127.0.0.0/8 --history "$history" --data-dir "$dir" 2>"$log" &
    local pid=$!
    local addr=""
    for _ in $(seq 100); do
        addr=$(grep -o 'listening on [0-9.:]*' "$log" | head -1 | cut -d' ' -f3 || true)
        [ -n "$addr" ] && break
        sleep 0.1
    done
    [ -n "$addr" ] || { echo "node did not start: $(cat "$log")" >&2; kill "$pid"; exit 1; }
    local peak=0
    (
        while kill -0 "$pid" 2>/dev/null; do
            n=$(ls "/proc/$pid/task" 2>/dev/null | wc -l)
            echo "$n"
            sleep 0.1
        done
    ) >"$work/threads-$history-$round" &
    local sampler=$!
    local out
    out=$("$loadgen" fanout --server "$addr" --clients 100 --senders 10 --messages "$MESSAGES" \
        --window 100 --size 64 --connect-concurrency 8 --server-pid "$pid" --json)
    kill -TERM "$pid"
    wait "$pid" || true
    wait "$sampler" 2>/dev/null || true
    peak=$(sort -n "$work/threads-$history-$round" | tail -1)
    local stored=0
    if [ "$history" = on ] && command -v python3 >/dev/null; then
        stored=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from history').fetchone()[0])" "$dir/history.sqlite3")
    fi
    python3 - "$BIN" "$history" "$round" "$peak" "$stored" "$out" <<'EOF'
import json, sys
bin_, history, rnd, peak, stored, out = sys.argv[1:]
r = json.loads(out)
def pick(*names):
    for n in names:
        if n in r:
            return r[n]
    return "?"
print(f"{bin_:<15} history={history:<3} round={rnd} delivered/s={pick('delivered_per_s')} "
      f"p99_us={pick('latency_p99_us')} lost={pick('lost')} cpu_us_per_msg={pick('server_cpu_us_per_msg')} threads_peak={peak} stored={stored}")
EOF
}

for round in $(seq "$ROUNDS"); do
    run_one off "$round"
    run_one on "$round"
done
