#!/usr/bin/env bash
# Emulated smoke test of the cross-built node: runs it under qemu user-mode emulation (called
# directly, no binfmt needed), connects two clients over loopback, exchanges a channel message,
# sends SIGTERM and checks the clean exit (scripts/smoke_test.py does the talking). Then, unless
# MINIMAL=1 (a build without the default features), a TLS and a WebSocket client chat with a
# plain one, and TLS handshakes are timed under the emulator (`--reach`).
#
#   scripts/qemu-smoke.sh [TARGET...]    default: aarch64-unknown-linux-musl
#   MINIMAL=1 scripts/qemu-smoke.sh ...  the binary of MINIMAL=1 scripts/cross-build.sh
#
# Expects the binary from scripts/cross-build.sh (same PROFILE, default embedded, and
# CARGO_TARGET_DIR). Installs qemu-user-static (python3, and openssl for the test certificate) on
# a fresh Debian machine (as root).
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=${PROFILE:-embedded}
out_dir=${CARGO_TARGET_DIR:-target}
[ $# -eq 0 ] && set -- aarch64-unknown-linux-musl

missing=()
command -v qemu-aarch64-static >/dev/null 2>&1 || missing+=(qemu-user-static)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "qemu-smoke: please install ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for target in "$@"; do
    case "$target" in
        aarch64-*) runner=qemu-aarch64-static ;;
        armv7-*) runner=qemu-arm-static ;;
        x86_64-*) runner= ;;
        *) echo "qemu-smoke: unsupported target $target" >&2; exit 2 ;;
    esac
    bin="$out_dir/$target/$PROFILE/chatnode"
    [ -x "$bin" ] || { echo "qemu-smoke: $bin missing; run scripts/cross-build.sh $target" >&2; exit 1; }
    reach=--reach
    [ "${MINIMAL:-0}" = 1 ] && reach=
    echo "== smoke test: $target ($PROFILE) ${runner:+under $runner}"
    python3 scripts/smoke_test.py ${runner:+--runner "$runner"} $reach "$bin"
done
