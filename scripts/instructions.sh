#!/usr/bin/env bash
# User-space instructions per relayed direct message, counted with callgrind: a figure that does
# not move with the machine's noise (timed rounds here differ by up to 1.3x; this, between runs,
# by under 0.2 % for chatnode and 0.5 % for ngIRCd in the runs of 2 Dec).
#
#   scripts/instructions.sh                                  # target/release/chatnode
#   scripts/instructions.sh target/release/chatnode-tokio    # the Tokio build
#   scripts/instructions.sh ngircd                           # Debian's ngIRCd, as a reference
#   EXTRA="--task-stats off" scripts/instructions.sh         # extra flags for a chatnode build
#
# Needs valgrind (installed if missing, as root) and target/release/examples/loadgen. The node
# runs under `valgrind --tool=callgrind` twice, each time for `loadgen pairs --clients 20` with
# SHORT and then LONG round trips per pair (default 200 and 1,000); the difference of the two
# totals, divided by the messages between them, leaves out start-up, registration and shutdown.
# Only user space is counted: the kernel's share of a message (most of it, in `sendto` and
# `recvfrom`) is not. docs/executor.md, decision 20, has what the figures were and what cut them.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${1:-target/release/chatnode}
SHORT=${SHORT:-200}
LONG=${LONG:-1000}
CLIENTS=20
LOADGEN=target/release/examples/loadgen
OUT=$(mktemp -d /tmp/chatnode-instructions.XXXXXX)
chmod 777 "$OUT" # ngIRCd runs as nobody and writes its profile here
trap 'rm -rf "$OUT"' EXIT

if ! command -v valgrind >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "instructions: valgrind is missing (apt-get install valgrind)" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
[ -x "$LOADGEN" ] || { echo "instructions: build first: cargo build --release --examples" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Runs the server under callgrind for `loadgen pairs` with $1 round trips per pair; prints the
# instructions counted.
count() {
    local messages=$1 port pid
    port=$(free_port)
    local profile="$OUT/callgrind.$messages"
    if [ "$BIN" = ngircd ]; then
        # ngIRCd drops root for nobody, after which callgrind could not write its profile: start
        # it as nobody. The benchmark config, with this run's port and pid file.
        sed -e "s/^\([[:space:]]*Ports[[:space:]]*=\).*/\1 $port/" \
            -e "s#^\([[:space:]]*PidFile[[:space:]]*=\).*#\1 $OUT/ngircd.pid#" \
            examples/shared/ngircd-bench.conf >"$OUT/ngircd.conf"
        setpriv --reuid=65534 --regid=65534 --clear-groups \
            valgrind --tool=callgrind --callgrind-out-file="$profile" \
            /usr/sbin/ngircd --nodaemon --config "$OUT/ngircd.conf" >"$OUT/server.log" 2>&1 &
    else
        # shellcheck disable=SC2086 # EXTRA is a list of flags
        valgrind --tool=callgrind --callgrind-out-file="$profile" "$BIN" \
            --listen "127.0.0.1:$port" --threads 1 --history off --exempt 127.0.0.0/8 \
            ${EXTRA:-} >"$OUT/server.log" 2>&1 &
    fi
    pid=$!
    for _ in $(seq 400); do
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.05
    done
    "$LOADGEN" pairs --server "127.0.0.1:$port" --clients "$CLIENTS" --messages "$messages" \
        --duration 120 --json >"$OUT/loadgen.$messages.json" 2>/dev/null || {
        kill "$pid" 2>/dev/null || true
        echo "instructions: loadgen failed (server log: $OUT/server.log)" >&2
        exit 1
    }
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    grep -o '^summary: [0-9]*' "$profile" | awk '{print $2}'
}

short=$(count "$SHORT")
long=$(count "$LONG")
# Each of the CLIENTS/2 pairs relays two messages per round trip.
messages=$(((LONG - SHORT) * CLIENTS))
echo "$BIN: $short and $long instructions for $SHORT and $LONG round trips per pair;" \
    "$(((long - short) / messages)) per relayed message"
