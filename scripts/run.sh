#!/usr/bin/env bash
# `make run`: starts the release binary with its defaults (127.0.0.1:3456).
# When no claude CLI is configured or on PATH, the project's cached copy
# (.cache/e2e, installed by scripts/e2e/setup.sh) is used, and installed
# first if npm is available, so setting ANTHROPIC_API_KEY (or
# CLAUDE_CODE_OAUTH_TOKEN) is all Claude Code mode needs. Prints the table
# of `claude-cli-api --check`, then execs the server.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$ROOT/target/x86_64-unknown-linux-gnu/release/claude-cli-api"
CACHED_CLI="$ROOT/.cache/e2e/node/node_modules/.bin/claude"

if [ -z "${CLAUDE_PATH:-}" ] && ! command -v claude >/dev/null 2>&1; then
  if [ ! -x "$CACHED_CLI" ] && command -v npm >/dev/null 2>&1; then
    echo "run: no claude CLI found; installing the pinned one under .cache/e2e" >&2
    bash "$ROOT/scripts/e2e/setup.sh" >/dev/null || echo "run: install failed; Claude Code mode stays off" >&2
  fi
  if [ -x "$CACHED_CLI" ]; then
    export CLAUDE_PATH="$CACHED_CLI"
  fi
fi

# What is ready and what is not, with the fix for each failure. The server
# starts whatever the check says: it decides for itself what it can serve.
"$BIN" --check || echo "run: the check found problems (above); starting anyway" >&2
echo

# glibc's malloc, as a server of many short-lived threads wants it: no
# per-thread caches of freed blocks and two arenas, so memory taken under
# load is reused instead of held per thread (under 64 connections: peak RSS
# about 8 MB instead of 12). glibc reads these only from the environment it
# starts with; values already set are kept. See docs/DEPLOYMENT.md.
case "${GLIBC_TUNABLES:-}" in
  *glibc.malloc.tcache_count*) ;;
  "") export GLIBC_TUNABLES=glibc.malloc.tcache_count=0 ;;
  *) export GLIBC_TUNABLES="$GLIBC_TUNABLES:glibc.malloc.tcache_count=0" ;;
esac
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec "$BIN"
