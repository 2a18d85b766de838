#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: unit tests, integration tests, the
# compile-fail UI tests, the examples' tests and the README's code (doctests).
# Anything a test needs that a fresh machine lacks is installed here.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --all-features --locked "$@"
