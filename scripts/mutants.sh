#!/usr/bin/env bash
# Runs cargo-mutants shards over src/broker and src/proto with the fast test targets, one shard
# after another, on a snapshot of HEAD (docs/testing.md, "Mutation testing"). Not part of CI.
#
#   scripts/mutants.sh broker:0 broker:2 proto:0      # shards: broker K of 32, proto K of 8
#   SNAP=/tmp/mut/b scripts/mutants.sh broker:1 ...   # a second job: its own snapshot and target
#   scripts/mutants-score.py                          # the score of the finished shards
#   scripts/mutants.sh names:survivors.txt            # re-check listed mutants (one name per
#                                                     # line, as cargo-mutants prints them)
#
# Each shard's results go to $OUT/<kind>-<K>/mutants.out (cargo-mutants' own layout) and a
# finished shard gets a `done` file, so running the same command again skips it. The snapshot
# is HEAD at the start, extracted with fresh file times (cargo must see the files as new), and
# re-extracted with a baseline run whenever HEAD has moved since. Stop between shards: a killed
# cargo-mutants leaves its mutation in the snapshot (the next run re-extracts only if HEAD
# moved; delete $SNAP/.rev to force it).
set -euo pipefail
cd "$(dirname "$0")/.."
SNAP=${SNAP:-/tmp/mut/a}
OUT=${OUT:-/tmp/mut/out}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$SNAP.target}
export CARGO_PROFILE_DEV_DEBUG=0 CARGO_PROFILE_TEST_DEBUG=0
# mold links the five test binaries of every mutant in a fraction of ld's time (apt install mold).
if command -v mold >/dev/null; then export RUSTFLAGS="-C link-arg=-fuse-ld=mold"; fi
FAST=(-C=--lib -C=--test=broker_commands -C=--test=harness -C=--test=moderation -C=--test=fuzz_slice)
repo=$PWD
mkdir -p "$SNAP" "$OUT"
for spec in "$@"; do
    kind=${spec%%:*} k=${spec##*:} out=$OUT/${spec/:/-}
    # A names file is a path: its results go by the file's own name.
    [ "$kind" = names ] && out=$OUT/recheck-$(basename "${spec#names:}" .txt)
    [ -e "$out/done" ] && continue
    rev=$(git -C "$repo" rev-parse --short HEAD)
    base=--baseline=skip
    if [ "$rev" != "$(cat "$SNAP/.rev" 2>/dev/null)" ]; then
        rm -rf "$SNAP/src" "$SNAP/tests" "$SNAP/examples"
        git -C "$repo" archive HEAD | tar -x -m -C "$SNAP"
        echo "$rev" > "$SNAP/.rev"
        base=--baseline=run
    fi
    echo "$rev" > "$out.rev"
    echo "$(date -u +%T) $spec at $rev" >&2
    case $kind in
        broker) (cd "$SNAP" && nice -n 19 cargo mutants --in-place "${FAST[@]}" -o "$out" \
                    -f 'src/broker/**' -e src/broker/harness.rs -e src/broker/invariants.rs \
                    --shard "$k/32" --sharding round-robin --timeout 60 --build-timeout 600 $base \
                    -- -- --skip capacity_bounded_under_flood > "$out.log" 2>&1) || true ;;
        proto) (cd "$SNAP" && nice -n 19 cargo mutants --in-place "${FAST[@]}" -o "$out" \
                    -f 'src/proto/**' --shard "$k/8" --sharding round-robin --timeout 90 \
                    --build-timeout 600 $base > "$out.log" 2>&1) || true ;;
        names)
            # Names carry line numbers: map each onto the snapshot's own list by file and
            # description, nearest line first, so a name from an older tree still finds its mutant.
            file=${spec#names:}
            [ -r "$file" ] || file=$repo/$file
            (cd "$SNAP" && cargo mutants --list -f 'src/broker/**' -f 'src/proto/**' \
                -e src/broker/harness.rs -e src/broker/invariants.rs) > "$out.list"
            mapfile -t res < <(python3 "$repo/scripts/mutants-score.py" --map "$file" "$out.list")
            args=()
            for re in "${res[@]}"; do args+=(-F "$re"); done
            echo "$rev" > "$out.rev"
            (cd "$SNAP" && nice -n 19 cargo mutants --in-place "${FAST[@]}" -o "$out" \
                -f 'src/broker/**' -f 'src/proto/**' "${args[@]}" --timeout 90 \
                --build-timeout 600 $base > "$out.log" 2>&1) || true
            grep -q "mutants tested" "$out.log" && touch "$out/done"
            continue ;;
        *) echo "unknown shard $spec (broker:K, proto:K or names:FILE)" >&2; exit 2 ;;
    esac
    # cargo-mutants exits non-zero when it finds survivors; a finished shard says so in its log.
    if grep -q "mutants tested" "$out.log"; then touch "$out/done"; else
        echo "$spec did not finish: see $out.log" >&2; exit 1
    fi
done
