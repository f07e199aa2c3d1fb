#!/usr/bin/env bash
# What the NATS link costs (docs/network.md): loadgen against
#   - one node, no link (the population on one node);
#   - three nodes linked through one nats-server, the same clients spread over them;
# alternating, ROUNDS times each, in one run; then the cross-node round trip (pairs, one client
# of each pair on node a and its peer on node b) and messages/s from a sender on node a to a
# receiver on node b. Prints one line per run, and the load average.
#
#   scripts/bench-link.sh          (ROUNDS=3 CLIENTS=60 MESSAGES=2000 by default)
#
# Needs nats-server on PATH and release builds:
#   cargo build --release --bin chatnode --example loadgen
# Loopback only; nats-server and every node are stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-60}
MESSAGES=${MESSAGES:-2000}
node_bin=target/release/chatnode
loadgen=target/release/examples/loadgen
[ -x "$node_bin" ] && [ -x "$loadgen" ] || {
    echo "bench-link: build first: cargo build --release --bin chatnode --example loadgen" >&2
    exit 1
}
command -v nats-server >/dev/null || { echo "bench-link: nats-server is not installed" >&2; exit 1; }
. scripts/bench-common.sh

wait_for() { # FILE TEXT: up to 10 s
    for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "bench-link: no '$2' in $1: $(cat "$1")" >&2; exit 1
}

nats_port=$(free_port)
nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$work/js" >/dev/null 2>"$work/nats.log" &
pids+=($!)
wait_for "$work/nats.log" "Server is ready"

# Starts node NAME (linked with `link`) and sets $addr to its address. Not in a `$(...)`: the
# node would hold the substitution's pipe open, and its pid would be lost to the cleanup.
start_node() { # NAME [link]
    local port; port=$(free_port)
    local args=(--listen "127.0.0.1:$port" --threads 1 --max-clients 10000 --exempt 127.0.0.0/8
                --history off --server-name "$1.bench")
    [ "${2:-}" = link ] && args+=(--link "nats://127.0.0.1:$nats_port" --network bench)
    "$node_bin" "${args[@]}" >/dev/null 2>"$work/$1.log" &
    pids+=($!)
    wait_for "$work/$1.log" "listening on"
    if [ "${2:-}" = link ]; then wait_for "$work/$1.log" "connected to NATS"; fi
    addr="127.0.0.1:$port"
}

start_node solo; solo=$addr
start_node a link; a=$addr
start_node b link; b=$addr
start_node c link; c=$addr

summary() { python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
keys = sys.argv[1].split(",")
print(" ".join(f"{k}={r.get(k)}" for k in keys))' "$1"; }

fan_keys=delivered_per_s,latency_p50_us,latency_p99_us,lost,server
for round in $(seq "$ROUNDS"); do
    echo -n "round $round one node:    "
    "$loadgen" fanout --server "$solo" --clients "$CLIENTS" --messages "$MESSAGES" \
        --prefix "s$round" --json | summary $fan_keys
    echo -n "round $round three nodes: "
    "$loadgen" fanout --server "$a" --server "$b" --server "$c" --clients "$CLIENTS" \
        --messages "$MESSAGES" --settle 1 --prefix "t$round" --json | summary $fan_keys
done
echo -n "cross-node round trips (pairs a<->b): "
"$loadgen" pairs --server "$a" --server "$b" --clients 20 --messages 500 --settle 1 \
    --prefix p --json | summary round_trips_per_s,rtt_p50_us,rtt_p99_us,server
echo -n "one node, same pairs:                  "
"$loadgen" pairs --server "$solo" --clients 20 --messages 500 --prefix q --json \
    | summary round_trips_per_s,rtt_p50_us,rtt_p99_us,server
echo -n "messages/s a -> b (1 sender, 1 receiver): "
"$loadgen" fanout --server "$a" --server "$b" --clients 2 --messages 20000 --window 500 \
    --settle 1 --prefix m --json | summary delivered_per_s,latency_p50_us,latency_p99_us,lost
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
