# Shared by the benchmark scripts (`. scripts/bench-common.sh`): a scratch directory `$work`,
# background processes in `pids` killed on exit, and `free_port` for a loopback port.
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
