#!/usr/bin/env bash
# What `#[listener]` costs at compile time. Generates, in a temp dir, two small crates that depend
# on emitter by path: one with 200 `#[listener]` functions, one with the same 200 functions
# without the attribute; both define the same 20 events. Builds each once (its dependencies
# included, in one shared CARGO_TARGET_DIR so they are built once), then times a rebuild of the
# crate alone: touch its lib.rs, `cargo build`, best of 3.
#
#   bash bench/compile_time.sh                  # dev profile, what an edit-compile cycle pays
#   PROFILE=release bash bench/compile_time.sh
#
# Prints: compile_200_listeners_s=... compile_200_plain_fns_s=... ratio=...
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
profile="${PROFILE:-dev}"
listeners=200
events=20
rounds=3

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export CARGO_TARGET_DIR="$work/target"

# generate NAME ANNOTATE: a crate NAME; its functions carry `#[listener]` if ANNOTATE is 1.
generate() {
    local name="$1" annotate="$2" dir="$work/$1"
    mkdir -p "$dir/src"
    cat >"$dir/Cargo.toml" <<EOF
[package]
name = "$name"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
emitter = { path = "$root/emitter" }

# Not part of any enclosing workspace.
[workspace]
EOF
    # The workspace's lock file, so both crates build the very dependency versions it uses.
    cp "$root/Cargo.lock" "$dir/Cargo.lock"
    {
        if [ "$annotate" = 1 ]; then
            echo "use emitter::{listener, Event};"
        else
            echo "use emitter::Event;"
        fi
        echo
        for ((e = 0; e < events; e++)); do
            printf '#[derive(Event)]\npub struct Event%d {\n    pub id: u64,\n    pub email: String,\n}\n\n' "$e"
        done
        for ((l = 0; l < listeners; l++)); do
            if [ "$annotate" = 1 ]; then
                printf '#[listener(events = [Event%d])]\n' "$((l % events))"
            fi
            printf 'pub async fn listener_%d(id: u64, email: &str) {\n    std::hint::black_box((id, email));\n}\n\n' "$l"
        done
    } >"$dir/src/lib.rs"
}

# build NAME: builds the crate with the chosen profile.
build() {
    cargo build --quiet --profile "$profile" --manifest-path "$work/$1/Cargo.toml"
}

# rebuild NAME: touches the crate's lib.rs, rebuilds it, and prints how long that took, in seconds.
rebuild() {
    local start end
    touch "$work/$1/src/lib.rs"
    start="$(date +%s.%N)"
    build "$1"
    end="$(date +%s.%N)"
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }'
}

# min A B: the smaller number; A may be empty.
min() {
    if [ -z "$1" ] || awk -v a="$2" -v b="$1" 'BEGIN { exit !(a < b) }'; then echo "$2"; else echo "$1"; fi
}

generate listeners200 1
generate plain200 0
echo "# compile_time: $listeners functions over $events events, profile $profile, best of $rounds rebuilds after touching lib.rs" >&2
echo "# building dependencies once in $CARGO_TARGET_DIR" >&2
build listeners200
build plain200

# Alternating, so that a busy moment of the machine does not fall on one crate only.
with="" without=""
for ((r = 0; r < rounds; r++)); do
    with="$(min "$with" "$(rebuild listeners200)")"
    without="$(min "$without" "$(rebuild plain200)")"
done
ratio="$(awk -v a="$with" -v b="$without" 'BEGIN { printf "%.2f", a / b }')"
echo "compile_${listeners}_listeners_s=$with compile_${listeners}_plain_fns_s=$without ratio=$ratio"
