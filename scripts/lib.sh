# Sourced by the workflow's scripts: one way to say a line and one way to fail.
# The script sets `error_title` (the title of its `::error` line) before it fails; lines are
# prefixed with the script's own name. Both go to standard error, so they show even from inside a
# command substitution (the runner reads workflow commands on both streams).
me="${0##*/}"
me="${me%.sh}"
say() { printf '%s: %s\n' "$me" "$*" >&2; }
fail() {
    printf '::error title=%s::%s\n' "${error_title:-$me failed}" "$*" >&2
    say "error: $*"
    exit 1
}
