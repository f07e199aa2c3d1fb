#!/usr/bin/env bash
# Cross-builds chatnode for ARM boards, without Docker. See docs/embedded.md.
#
#   scripts/cross-build.sh [TARGET...]      default: aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf
#   PROFILE=embedded-abort scripts/cross-build.sh aarch64-unknown-linux-musl
#   FEATURES=tokio scripts/cross-build.sh ...          builds chatnode-tokio instead
#   MINIMAL=1 scripts/cross-build.sh ...                without default features (no history)
#
# The footprint budget for the stripped aarch64 musl binary is 1 MB, 1,000,000 bytes (docs/embedded.md): the
# script reports it, and fails on it only with SIZE_BUDGET_ENFORCE=1.
#
# - aarch64-unknown-linux-musl: fully static, linked by rust-lld (ships with rustup). The bundled
#   SQLite (feature `history`, on by default) is C: clang compiles it for aarch64 against
#   Debian's multiarch musl headers (musl-dev:arm64; the script adds the arm64 architecture to
#   dpkg if needed), llvm-ar archives it. No musl cross gcc is needed.
# - armv7-unknown-linux-gnueabihf: static glibc (+crt-static), linked by Debian's
#   gcc-arm-linux-gnueabihf (the armv7 musl target is not available to us), which also compiles
#   the bundled SQLite.
# - x86_64-unknown-linux-musl: static, rust-lld; used to measure the musl build natively.
# Linkers and flags live in .cargo/config.toml. On a fresh Debian machine (as root) this installs
# the rustup targets and the Debian packages it needs. Binaries land in
# ${CARGO_TARGET_DIR:-target}/TARGET/PROFILE/chatnode.
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=${PROFILE:-embedded}
FEATURES=${FEATURES:-}
if [ $# -eq 0 ]; then
    set -- aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf
fi

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "cross-build: please install: ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# C for aarch64 musl: clang --target=aarch64-linux-musl with only musl's headers (and clang's
# own), so no glibc header can slip in.
musl_c_for_aarch64() {
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "cross-build: as root: dpkg --add-architecture arm64 && apt-get update" >&2
            exit 1
        fi
        dpkg --add-architecture arm64
        apt-get update -qq
    fi
    apt_install clang llvm musl-dev:arm64
    local resource
    resource=$(clang -print-resource-dir)
    export CC_aarch64_unknown_linux_musl=clang
    export AR_aarch64_unknown_linux_musl=llvm-ar
    export CFLAGS_aarch64_unknown_linux_musl="--target=aarch64-linux-musl -nostdinc -isystem $resource/include -isystem /usr/include/aarch64-linux-musl"
}

installed_targets=$(rustup target list --installed)
for target in "$@"; do
    case "$target" in
        aarch64-unknown-linux-musl) musl_c_for_aarch64 ;;
        x86_64-unknown-linux-musl) apt_install musl-tools ;;
        armv7-unknown-linux-gnueabihf) apt_install gcc-arm-linux-gnueabihf libc6-dev-armhf-cross ;;
        *) echo "cross-build: unsupported target $target" >&2; exit 2 ;;
    esac
    grep -qx "$target" <<<"$installed_targets" || rustup target add "$target"
done

bin=chatnode
feature_args=()
if [ "${MINIMAL:-0}" = 1 ]; then
    feature_args+=(--no-default-features)
fi
if [ -n "$FEATURES" ]; then
    feature_args+=(--features "$FEATURES")
    case ",$FEATURES," in *,tokio,*) bin=chatnode-tokio ;; esac
fi
out_dir=${CARGO_TARGET_DIR:-target}
for target in "$@"; do
    echo "== $target ($PROFILE${FEATURES:+, features $FEATURES})"
    start=$(date +%s)
    cargo build --profile "$PROFILE" --target "$target" --bin "$bin" "${feature_args[@]}"
    dir=$PROFILE
    [ "$PROFILE" = dev ] && dir=debug
    path="$out_dir/$target/$dir/$bin"
    echo "$path: $(stat -c %s "$path") bytes, built in $(( $(date +%s) - start ))s"
    if command -v file >/dev/null 2>&1; then file -b "$path"; fi
    if [ "$target" = aarch64-unknown-linux-musl ]; then
        size=$(stat -c %s "$path")
        budget=${SIZE_BUDGET:-1000000}
        if [ "$size" -le "$budget" ]; then
            echo "size budget: $size <= $budget bytes: ok"
        else
            echo "size budget: $size > $budget bytes: OVER by $((size - budget)) (docs/embedded.md)" >&2
            [ "${SIZE_BUDGET_ENFORCE:-0}" = 1 ] && exit 1
        fi
    fi
done
