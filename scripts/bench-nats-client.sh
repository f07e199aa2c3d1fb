#!/usr/bin/env bash
# Our NATS client (src/link/nats/) against async-nats (docs/network.md, "The client library
# for the smol build, and what it costs"). Builds the standalone crate bench/nats-client (not
# part of chatnode's build: it alone compiles async-nats), starts one nats-server on a free
# loopback port, and alternates the clients, ROUNDS times:
#   ours-smol        our client on our smol runtime (the default build's path)
#   async-nats       async-nats on the Tokio runtime chatnode-tokio builds
#   ours-tokio       our client on the Tokio build's runtime (what chatnode-tokio runs)
#   async-nats-smol  async-nats inside our smol executor with a Tokio runtime thread beside it
#                    (design option 1: what async-compat does)
# Tests: `publish` (MESSAGES messages of PAYLOAD bytes on one subject to a subscriber on another
# connection of the same process) and `rtt` (RTT request/reply round trips, one at a time).
# Each line: messages/s, process CPU time per message (getrusage: both ends are in the
# process), nats-server CPU time per message, latencies, threads. Then medians per client and
# ratios to ours-smol, and (SIZES=1) the size each client adds to a tiny binary.
#
#   scripts/bench-nats-client.sh     (ROUNDS=5 MESSAGES=200000 RTT=10000 PAYLOAD=100 THREADS=1 SIZES=1)
#   ROUNDS=0 SIZE_TARGET=aarch64-unknown-linux-musl scripts/bench-nats-client.sh   sizes for boards
#
# Needs nats-server on PATH (Debian: apt-get install nats-server). Loopback only; nats-server
# is stopped at the end. Builds run under `nice -n 19`; the runs do not.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
MESSAGES=${MESSAGES:-200000}
RTT=${RTT:-10000}
PAYLOAD=${PAYLOAD:-100}
THREADS=${THREADS:-1}
SIZES=${SIZES:-1}
CLIENTS=${CLIENTS:-ours-smol async-nats ours-tokio async-nats-smol}
crate=bench/nats-client
bin=$crate/target/release/nats-client-bench

command -v nats-server >/dev/null || { echo "bench-nats-client: nats-server is not installed" >&2; exit 1; }
(cd "$crate" && nice -n 19 cargo build --release --bin nats-client-bench)

. scripts/bench-common.sh

port=$(free_port)
nats-server -a 127.0.0.1 -p "$port" >/dev/null 2>"$work/nats.log" &
nats_pid=$!
pids+=("$nats_pid")
for _ in $(seq 100); do grep -q "Server is ready" "$work/nats.log" && break; sleep 0.1; done
grep -q "Server is ready" "$work/nats.log" || { echo "bench-nats-client: nats-server did not start" >&2; exit 1; }

echo "# $(date -u '+%F %T UTC') nats-server $(nats-server --version | cut -d' ' -f2) $(uname -m)"
echo "# ROUNDS=$ROUNDS MESSAGES=$MESSAGES RTT=$RTT PAYLOAD=$PAYLOAD THREADS=$THREADS"
echo "# load before: $(uptime)"
for round in $(seq "$ROUNDS"); do
    for test in publish rtt; do
        n=$MESSAGES; [ "$test" = rtt ] && n=$RTT
        for client in $CLIENTS; do
            echo "round=$round $("$bin" --client "$client" --test "$test" --addr "127.0.0.1:$port" \
                --messages "$n" --payload "$PAYLOAD" --threads "$THREADS" --server-pid "$nats_pid")"
        done
    done
done | tee "$work/runs.txt"
echo "# load after: $(uptime)"

python3 - "$work/runs.txt" <<'EOF'
import statistics, sys
runs = [dict(f.split("=", 1) for f in line.split()) for line in open(sys.argv[1])]
clients = list(dict.fromkeys(r["client"] for r in runs))
def med(test, client, key):
    vals = [float(r[key]) for r in runs if r["test"] == test and r["client"] == client and key in r]
    return statistics.median(vals) if vals else None
for test, keys in [("publish", ["msgs_per_s", "cpu_us_per_msg", "server_cpu_us_per_msg"]),
                   ("rtt", ["p50_us", "p99_us", "msgs_per_s", "cpu_us_per_msg", "server_cpu_us_per_msg"])]:
    print(f"\nmedians, {test} (ratio to ours-smol in parentheses):")
    for client in clients:
        cells = []
        for k in keys:
            v, base = med(test, client, k), med(test, "ours-smol", k)
            ratio = f" ({v / base:.2f}x)" if v is not None and base else ""
            cells.append(f"{k}={v:.3f}{ratio}" if v is not None else f"{k}=-")
        rs = [r for r in runs if r["test"] == test and r["client"] == client]
        lost = sum(int(r["lost"]) for r in rs)
        threads = max(int(r["threads_max"]) for r in rs)
        names = max(rs, key=lambda r: int(r["threads_max"]))["thread_names"]
        print(f"  {client:16} {' '.join(cells)} lost={lost} threads_max={threads} ({names})")
EOF

[ "$SIZES" = 1 ] || exit 0
# Sizes: tiny binaries (src/bin/size_*), the project's `embedded` profile (opt-level z, LTO,
# one codegen unit, stripped), for the host (x86_64) or SIZE_TARGET (aarch64-unknown-linux-musl:
# C through clang as scripts/cross-build.sh sets it up; run that script once first to install
# clang, llvm and musl-dev:arm64). Our client is built twice: without and with TLS to NATS
# (async-nats always carries its TLS).
target_args=(); out=$crate/target/embedded
if [ -n "${SIZE_TARGET:-}" ]; then
    target_args=(--target "$SIZE_TARGET"); out=$crate/target/$SIZE_TARGET/embedded
    if [ "$SIZE_TARGET" = aarch64-unknown-linux-musl ]; then
        resource=$(clang -print-resource-dir)
        export CC_aarch64_unknown_linux_musl=clang AR_aarch64_unknown_linux_musl=llvm-ar
        export CFLAGS_aarch64_unknown_linux_musl="--target=aarch64-linux-musl -nostdinc -isystem $resource/include -isystem /usr/include/aarch64-linux-musl"
    fi
fi
size() { stat -c %s "$out/$1"; }
(cd "$crate" && nice -n 19 cargo build --profile embedded "${target_args[@]}" --bin size_base_smol \
    --bin size_ours --bin size_base_tokio --bin size_async_nats)
base_smol=$(size size_base_smol); ours=$(size size_ours)
base_tokio=$(size size_base_tokio); theirs=$(size size_async_nats)
(cd "$crate" && nice -n 19 cargo build --profile embedded "${target_args[@]}" --features tls --bin size_ours)
ours_tls=$(size size_ours)
echo
echo "sizes (embedded profile, ${SIZE_TARGET:-$(uname -m)}, bytes):"
echo "  smol runtime + TCP, no NATS (size_base_smol):          $base_smol"
echo "  + our client (size_ours):                              $ours  (+$((ours - base_smol)))"
echo "  + our client with TLS to NATS (size_ours, --features tls): $ours_tls  (+$((ours_tls - base_smol)))"
echo "  Tokio current-thread + TCP, no NATS (size_base_tokio): $base_tokio"
echo "  + async-nats (size_async_nats):                        $theirs  (+$((theirs - base_tokio)))"
echo "  async-nats binary vs our client's (with TLS):          $((theirs - ours_tls))"
