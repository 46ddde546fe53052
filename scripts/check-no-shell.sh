#!/usr/bin/env bash
# Fails when Rust source builds a shell command line. Children are started
# from argument vectors only, so nothing a client sends can be read by a
# shell. Comment lines are skipped: docs may name what is forbidden.
#
# Usage: scripts/check-no-shell.sh [DIR ...]   (paths from the repo root;
# default: src)
set -euo pipefail

cd "$(dirname "$0")/.."
dirs=("$@")
if [ ${#dirs[@]} -eq 0 ]; then
    dirs=(src)
fi

shells='(/usr)?(/local)?(/bin/)?(sh|bash|dash|zsh|ksh|fish|csh|tcsh)'
patterns=(
    # Command::new("sh"), Command::new("/bin/bash"), ...
    "Command::new\(\s*\"${shells}\"\s*\)"
    # "sh -c ...", "bash -c ..." inside a string
    "\"${shells}\s+-c\b"
    # a bare "-c" argument: the shell's "run this string" flag
    "\"-c\""
    # a command taken from the user's $SHELL
    "env::var(_os)?\(\s*\"SHELL\"\s*\)"
)

status=0
for pattern in "${patterns[@]}"; do
    # -P for \s and \b; the second grep drops comment lines.
    if hits=$(grep -rnP --include='*.rs' "$pattern" "${dirs[@]}" \
        | grep -vP '^[^:]+:[0-9]+:\s*//'); then
        echo "check-no-shell: shell command line built in source (pattern: $pattern):" >&2
        echo "$hits" >&2
        status=1
    fi
done

if [ "$status" -eq 0 ]; then
    echo "check-no-shell: ok (${dirs[*]})"
fi
exit "$status"
