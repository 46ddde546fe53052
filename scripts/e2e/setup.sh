#!/usr/bin/env bash
# Installs what the end-to-end suite needs into .cache/e2e/ (git-ignored),
# once: the real Claude Code CLI and the Node `openai` package (npm), and a
# Python venv with the `openai`, `openai-agents` (the Agents SDK, `agents`),
# `langchain-openai`, `langchain-core` (its tools, for `bind_tools`) and
# `anthropic` (the Messages API's own SDK) packages (pip). Pinned versions;
# a cache that already holds them is reused as it is, and the venv is
# brought to the pins when one changed. Prints the CLI's path and version.
set -euo pipefail

CLAUDE_CODE_VERSION=2.1.331
OPENAI_NPM_VERSION=6.49.0
OPENAI_PY_VERSION=3.57.0
LANGCHAIN_OPENAI_VERSION=1.7.4
# The newest openai-agents that installs beside openai==$OPENAI_PY_VERSION, and
# the langchain-core that langchain-openai brings (pinned since the suite
# imports its tools directly).
OPENAI_AGENTS_VERSION=0.24.0
LANGCHAIN_CORE_VERSION=1.8.3
# The newest anthropic SDK that installs beside the OpenAI pins.
ANTHROPIC_PY_VERSION=2.14.0
# The client matrix (issue 28): coding agents and frameworks on their
# defaults. Node: Codex CLI, the Vercel AI SDK with its OpenAI and Anthropic
# providers, Anthropic's TypeScript SDK. Python: pydantic-ai (slim, with its
# OpenAI and Anthropic models) and LangChain's ChatAnthropic.
CODEX_VERSION=0.171.0
AI_SDK_VERSION=7.0.185
AI_SDK_OPENAI_VERSION=4.0.126
AI_SDK_ANTHROPIC_VERSION=4.0.112
ANTHROPIC_TS_VERSION=1.17.0
PYDANTIC_AI_VERSION=2.78.0
LANGCHAIN_ANTHROPIC_VERSION=1.7.10

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE="$ROOT/.cache/e2e"
NODE_DIR="$CACHE/node"
VENV="$CACHE/venv"
CLI="$NODE_DIR/node_modules/.bin/claude"

for tool in node npm python3; do
  command -v "$tool" >/dev/null || { echo "setup.sh: $tool is not installed" >&2; exit 1; }
done

# The version an installed npm package reports, or nothing.
npm_version() {
  local manifest="$NODE_DIR/node_modules/$1/package.json"
  [ -f "$manifest" ] && node -e 'process.stdout.write(require(process.argv[1]).version)' "$manifest" || true
}

if [ "$(npm_version @anthropic-ai/claude-code)" != "$CLAUDE_CODE_VERSION" ] \
   || [ "$(npm_version openai)" != "$OPENAI_NPM_VERSION" ] \
   || [ "$(npm_version @openai/codex)" != "$CODEX_VERSION" ] \
   || [ "$(npm_version ai)" != "$AI_SDK_VERSION" ] \
   || [ "$(npm_version @ai-sdk/openai)" != "$AI_SDK_OPENAI_VERSION" ] \
   || [ "$(npm_version @ai-sdk/anthropic)" != "$AI_SDK_ANTHROPIC_VERSION" ] \
   || [ "$(npm_version @anthropic-ai/sdk)" != "$ANTHROPIC_TS_VERSION" ] \
   || ! "$CLI" --version 2>/dev/null | grep -q "^$CLAUDE_CODE_VERSION "; then
  echo "setup.sh: installing @anthropic-ai/claude-code@$CLAUDE_CODE_VERSION, openai@$OPENAI_NPM_VERSION" \
       "and the client matrix's Node packages (npm)" >&2
  mkdir -p "$NODE_DIR"
  [ -f "$NODE_DIR/package.json" ] || echo '{"name":"e2e-deps","private":true}' > "$NODE_DIR/package.json"
  (cd "$NODE_DIR" && npm install --no-audit --no-fund --save-exact --loglevel=error \
      "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" "openai@$OPENAI_NPM_VERSION" \
      "@openai/codex@$CODEX_VERSION" "ai@$AI_SDK_VERSION" "@ai-sdk/openai@$AI_SDK_OPENAI_VERSION" \
      "@ai-sdk/anthropic@$AI_SDK_ANTHROPIC_VERSION" "@anthropic-ai/sdk@$ANTHROPIC_TS_VERSION")
fi

# The version pip has installed of a package in the venv, or nothing.
py_version() {
  "$VENV/bin/python" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$1" 2>/dev/null || true
}

if [ "$(py_version openai)" != "$OPENAI_PY_VERSION" ] \
   || [ "$(py_version openai-agents)" != "$OPENAI_AGENTS_VERSION" ] \
   || [ "$(py_version langchain-openai)" != "$LANGCHAIN_OPENAI_VERSION" ] \
   || [ "$(py_version langchain-core)" != "$LANGCHAIN_CORE_VERSION" ] \
   || [ "$(py_version anthropic)" != "$ANTHROPIC_PY_VERSION" ] \
   || [ "$(py_version pydantic-ai-slim)" != "$PYDANTIC_AI_VERSION" ] \
   || [ "$(py_version langchain-anthropic)" != "$LANGCHAIN_ANTHROPIC_VERSION" ]; then
  echo "setup.sh: installing openai==$OPENAI_PY_VERSION," \
       "openai-agents==$OPENAI_AGENTS_VERSION, langchain-openai==$LANGCHAIN_OPENAI_VERSION," \
       "langchain-core==$LANGCHAIN_CORE_VERSION and anthropic==$ANTHROPIC_PY_VERSION" \
       "into the venv (pip)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
      "openai==$OPENAI_PY_VERSION" "openai-agents==$OPENAI_AGENTS_VERSION" \
      "langchain-openai==$LANGCHAIN_OPENAI_VERSION" "langchain-core==$LANGCHAIN_CORE_VERSION" \
      "anthropic==$ANTHROPIC_PY_VERSION" \
      "pydantic-ai-slim[openai,anthropic]==$PYDANTIC_AI_VERSION" \
      "langchain-anthropic==$LANGCHAIN_ANTHROPIC_VERSION"
fi

echo "claude CLI: $(readlink -f "$CLI") ($("$CLI" --version))"
echo "python: $VENV/bin/python (openai $(py_version openai), openai-agents" \
     "$(py_version openai-agents), langchain-openai $(py_version langchain-openai)," \
     "langchain-core $(py_version langchain-core), anthropic $(py_version anthropic))"
echo "node: $(command -v node) $(node --version) (openai $(npm_version openai))"
