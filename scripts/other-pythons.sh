#!/usr/bin/env bash
# CI on the Python versions the whole suite did not run on: for each one installed, a fresh venv,
# `make run` to its first answer, then the fast lane (`make check`) in that venv.
#
# Usage: scripts/other-pythons.sh VERSION... (e.g. 3.12 3.13). A version is found as python3.X on
# PATH, else in pyenv's versions when pyenv is installed; one that is not installed is said in one
# line and skipped. Environment: TRAIN_FLAGS (extra train.py flags for make run; CI passes fewer
# backtest cutoffs), FIRST_ANSWER_WAIT (seconds, default 600), FAST (1, the default: run the fast
# lane after the first answer; 0: only the first answer). Prints how long each step took. Exit 1
# when a version installs, trains, serves or tests badly.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

find_python() {
    local v="$1" candidate
    for candidate in "$(command -v "python$v" || true)" \
        $(command -v pyenv >/dev/null && ls -d "$(pyenv root)/versions/$v".*/bin/"python$v" 2>/dev/null | sort -V | tail -n 1); do
        [ -n "$candidate" ] || continue
        if "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$v'.split('.'))))" 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

status=0
for v in "$@"; do
    if ! python="$(find_python "$v")"; then
        say "python$v is not installed: skipped"
        continue
    fi
    venv=".venv-$v"
    artifacts="artifacts-$v"
    rm -rf "$venv" "$artifacts"
    port="$(free_port)"
    log="$(mktemp)"
    start=$SECONDS
    setsid make --no-print-directory PYTHON="$python" VENV="$venv" ARTIFACTS="$artifacts" SERVE_PORT="$port" \
        TRAIN_FLAGS="${TRAIN_FLAGS:-}" run >"$log" 2>&1 &
    make_pid=$!
    answered=""
    while [ $((SECONDS - start)) -lt "${FIRST_ANSWER_WAIT:-600}" ] && kill -0 "$make_pid" 2>/dev/null; do
        if python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/bitcoin?date=2026-12-01', timeout=2).read()" 2>/dev/null; then
            answered=yes
            break
        fi
        sleep 1
    done
    elapsed=$((SECONDS - start))
    kill -- -"$make_pid" 2>/dev/null || true
    wait "$make_pid" 2>/dev/null || true
    if [ -z "$answered" ]; then
        tail -n 30 "$log" >&2
        say "error: Python $v ($python): make run gave no answer within ${elapsed} s"
        status=1
        continue
    fi
    say "Python $v: fresh venv, make run answered /bitcoin in ${elapsed} s"
    if [ "${FAST:-1}" = 1 ]; then
        start=$SECONDS
        if make --no-print-directory PYTHON="$python" VENV="$venv" check >"$log" 2>&1; then
            say "Python $v: make check passed in $((SECONDS - start)) s ($(grep -Eo '[0-9]+ passed' "$log" | tail -n 1); the dev lock's install included)"
        else
            tail -n 40 "$log" >&2
            say "error: Python $v: make check failed"
            status=1
        fi
    fi
    rm -f "$log"
done
exit "$status"
