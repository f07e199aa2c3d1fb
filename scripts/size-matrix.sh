#!/usr/bin/env bash
# The stripped size of the board binary per feature set: minimal (`--no-default-features`), each
# optional feature alone on top of it, and the default build. See docs/embedded.md.
#
#   scripts/size-matrix.sh                      # aarch64-unknown-linux-musl, profile embedded
#   TARGET=x86_64-unknown-linux-musl scripts/size-matrix.sh
#   PROFILE=embedded-abort scripts/size-matrix.sh
#
# Builds through scripts/cross-build.sh (which installs what a target needs), so the five builds
# are the ones the README and CI make. Prints a Markdown table: bytes, and what each feature adds
# to the minimal build. Fails if the minimal build is over SIZE_BUDGET (default 1,000,000
# bytes: the brief's 1 MB).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=${TARGET:-aarch64-unknown-linux-musl}
PROFILE=${PROFILE:-embedded}
BUDGET=${SIZE_BUDGET:-1000000}
bin="${CARGO_TARGET_DIR:-target}/$TARGET/$PROFILE/chatnode"
export PROFILE

size_of() { # FEATURE-SET (minimal, a feature name, or default)
    case "$1" in
        minimal) MINIMAL=1 FEATURES= scripts/cross-build.sh "$TARGET" >&2 ;;
        default) MINIMAL=0 FEATURES= scripts/cross-build.sh "$TARGET" >&2 ;;
        *) MINIMAL=1 FEATURES="$1" scripts/cross-build.sh "$TARGET" >&2 ;;
    esac
    stat -c %s "$bin"
}

group() { # 1234567 -> 1,234,567 (without depending on an installed locale)
    sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta' <<<"$1"
}

minimal=$(size_of minimal)
rows=("| minimal (\`--no-default-features\`) | $(group "$minimal") | |")
for set in tls websocket history link default; do
    size=$(size_of "$set")
    label="+ \`$set\`"
    [ "$set" = default ] && label="default (history, tls, websocket, link)"
    rows+=("| $label | $(group "$size") | +$(group $((size - minimal))) |")
done
echo "$TARGET, profile $PROFILE, $(date -u '+%Y-%m-%d %H:%M UTC'), stripped bytes:"
echo
echo "| features | bytes | over minimal |"
echo "| --- | ---: | ---: |"
printf '%s\n' "${rows[@]}"
if [ "$minimal" -gt "$BUDGET" ]; then
    echo "minimal build: $minimal > $BUDGET bytes: OVER the budget by $((minimal - BUDGET))" >&2
    exit 1
fi
echo
echo "minimal build: $minimal <= $BUDGET bytes: within the budget"
