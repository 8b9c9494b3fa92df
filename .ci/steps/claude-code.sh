#!/usr/bin/env bash
# CI step: the real Claude Code CLI (npm @anthropic-ai/claude-code, the version the fixtures were captured with)
# for tests/e2e/test_live_reference.py. Installed into a fixed prefix and found there by harness/live.py
# (search order: $CCBENCH_CLAUDE_BIN, PATH, then known node_modules locations); nothing is exported.
set -euo pipefail
VERSION="2.1.328"
PREFIX="${CCBENCH_NODE_PREFIX:-$HOME/.cache/ccbench-node}"
BINARY="$PREFIX/node_modules/@anthropic-ai/claude-code-linux-x64/claude"
start=$(date +%s)
if [ -x "$BINARY" ] && "$BINARY" --version 2>/dev/null | grep -q "$VERSION"; then
    echo "claude-code $VERSION already in $PREFIX"
elif [ -x /opt/ccbench-npm/node_modules/@anthropic-ai/claude-code-linux-x64/claude ] \
    && /opt/ccbench-npm/node_modules/@anthropic-ai/claude-code-linux-x64/claude --version 2>/dev/null | grep -q "$VERSION"; then
    echo "claude-code $VERSION already in /opt/ccbench-npm"
else
    if ! command -v npm >/dev/null; then
        echo "npm is missing: apt-get install -y nodejs npm" >&2
        exit 1
    fi
    mkdir -p "$PREFIX"
    npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error "@anthropic-ai/claude-code@$VERSION"
    "$BINARY" --version
fi
echo "claude-code step took $(( $(date +%s) - start )) s"
