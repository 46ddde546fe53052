#!/usr/bin/env bash
# `make run`: starts the release binary with its defaults (127.0.0.1:3456).
# When no claude CLI is configured or on PATH, the project's cached copy
# (.cache/e2e, installed by scripts/e2e/setup.sh) is used, and installed
# first if npm is available, so setting ANTHROPIC_API_KEY (or
# CLAUDE_CODE_OAUTH_TOKEN) is all Claude Code mode needs. Prints one line
# saying which CLI and which backends are ready, then execs the server.
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

cli="${CLAUDE_PATH:-$(command -v claude || true)}"
if [ -n "$cli" ] && [ -x "$cli" ]; then
  version=$("$cli" --version 2>/dev/null | head -n 1 || echo "version unknown")
  claude_state="ready"
  if [ -z "${ANTHROPIC_API_KEY:-}${CLAUDE_CODE_OAUTH_TOKEN:-}${ANTHROPIC_AUTH_TOKEN:-}" ] \
     && [ ! -d "${HOME:-/nonexistent}/.claude" ]; then
    claude_state="ready, but no credentials seen (set ANTHROPIC_API_KEY or run claude login)"
  fi
  cli_line="claude CLI $cli ($version): $claude_state"
else
  cli_line="claude CLI not found: Claude Code mode unavailable"
fi
if [ "${OPENAI_PASSTHROUGH_ENABLED:-true}" = "false" ]; then
  pass_line="passthrough disabled"
elif [ -n "${OPENAI_API_KEY:-}" ]; then
  pass_line="passthrough ready (server key)"
elif [ "${ALLOW_CLIENT_OPENAI_KEY:-true}" != "false" ]; then
  pass_line="passthrough ready (clients send X-OpenAI-API-Key)"
else
  pass_line="passthrough has no key"
fi
echo "claude-cli-api on ${HOST:-127.0.0.1}:${PORT:-3456}: $cli_line; $pass_line"

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
