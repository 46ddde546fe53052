#!/usr/bin/env bash
# The end-to-end suite in one command: install the cached CLI and SDKs
# (scripts/e2e/setup.sh), build the static release binary, then run
# scripts/e2e/run_e2e.py with the venv's Python. Arguments are passed on to
# run_e2e.py (test name filters). With SERVER_BIN set, that binary is tested
# as it is; otherwise cargo brings the release build up to date first (a
# no-op when nothing changed), so the suite never runs a stale binary.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/e2e/setup.sh

TARGET=x86_64-unknown-linux-gnu
if [ -z "${SERVER_BIN:-}" ]; then
  RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --target "$TARGET"
  # Where cargo put it: a CARGO_TARGET_DIR of the caller's counts.
  export SERVER_BIN="${CARGO_TARGET_DIR:-target}/$TARGET/release/claude-cli-api"
fi

# The passthrough smoke test with the official SDK (its own fake upstream).
if [ "$#" -eq 0 ]; then
  .cache/e2e/venv/bin/python scripts/sdk-smoke.py
fi

exec .cache/e2e/venv/bin/python scripts/e2e/run_e2e.py "$@"
