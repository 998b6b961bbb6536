#!/usr/bin/env bash
# Resolve the image tagged `production` (the champion) to its digest, for both builds of a run.
#
#   scripts/resolve-champion.sh IMAGE          e.g. ghcr.io/owner/repo:production (any case)
#
# Environment: FIRST_RUN ("true" only on a fork's first run, before anything was ever deployed:
# the workflow's manual input or the repository variable of that name); GITHUB_OUTPUT (where the
# outputs go; default standard output); REGISTRY_TLS_VERIFY (default true; false for a plain-HTTP
# registry, as the tests' local one). Registry credentials come from where skopeo reads them
# (docker/login-action's config.json).
#
# Outputs, as `name=value` lines:
#   image=<repository>@sha256:…   and  context=production=docker-image://<that>   (tag found), or
#   nothing at all                 (a first run: no champion to compare with).
# Decided, never guessed:
#   the tag resolves                          -> its digest
#   repository or tag absent                  -> a first run (the registry says so)
#   access denied (401/403, "denied")         -> a first run only with FIRST_RUN=true (GHCR may deny a
#                                                package that does not exist yet); otherwise an error
#   anything else (unreachable, a timeout, no skopeo, a malformed answer) -> an error, in one line
# An error exits 1 with `::error title=…::` and what to fix, so a broken runner can never skip the
# champion comparison by passing for a first run.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
error_title="Champion not resolved"
image="${1:?usage: resolve-champion.sh IMAGE (e.g. ghcr.io/owner/repo:production)}"
image="${image,,}" # registries want lower case; GitHub repository names may not be
out="${GITHUB_OUTPUT:-/dev/stdout}"

command -v skopeo >/dev/null || fail "skopeo is not installed on this runner: install it (apt-get install skopeo) to read the registry"

err="$(mktemp)"
raw="$(mktemp)"
trap 'rm -f "$err" "$raw"' EXIT
if skopeo inspect --tls-verify="${REGISTRY_TLS_VERIFY:-true}" --raw --retry-times 2 "docker://$image" >"$raw" 2>"$err"; then
    digest="$(skopeo manifest-digest "$raw" 2>>"$err")" || fail "could not compute the digest of $image: $(tail -n 1 "$err")"
    case "$digest" in sha256:[0-9a-f]*) ;; *) fail "unexpected digest '$digest' for $image" ;; esac
    pinned="${image%:*}@$digest"
    say "production is $pinned"
    {
        echo "image=$pinned"
        echo "context=production=docker-image://$pinned"
    } >>"$out"
    exit 0
fi
why="$(tr '\n' ' ' <"$err" | sed 's/  */ /g')"
shopt -s nocasematch
if [[ "$why" =~ manifest\ unknown|name\ unknown|repository\ name\ not\ known|MANIFEST_UNKNOWN|NAME_UNKNOWN|not\ found:\ manifest ]]; then
    say "no image tagged production in ${image%:*} yet: a first run, nothing to compare with"
    exit 0
fi
if [[ "$why" =~ denied|unauthorized|authentication\ required|status\ 401|status\ 403|forbidden ]]; then
    if [ "${FIRST_RUN:-}" = true ]; then
        say "the registry denied access to ${image%:*}; FIRST_RUN=true: taken as a first run (no package yet)"
        exit 0
    fi
    fail "the registry denied access to $image (${why:0:300}): check that the job may read packages (permissions: packages) and is logged in; on a fork's very first run, when no package exists yet, run the workflow with first_run ticked (or set the repository variable FIRST_RUN=true until the first deploy)"
fi
fail "cannot read $image from the registry (${why:0:300}): check the registry's address and the runner's network, then run again"
