#!/usr/bin/env bash
# Tag the image this run deployed as `production`: the next run's champion. Called only after the
# deploy's smoke test passed, so a refused or broken challenger never becomes production.
#
#   scripts/tag-production.sh IMAGE PRODUCTION     e.g. ghcr.io/o/r:1.4.2-20261204101500 ghcr.io/o/r:production
#
# A registry-side copy of the whole image index (every platform), digests unchanged, with skopeo;
# registry credentials from where skopeo reads them (docker/login-action's config.json).
# REGISTRY_TLS_VERIFY=false talks plain HTTP (the tests' local registry).
# Prints the digest `production` now names.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
error_title="Not tagged production"
src="${1:?usage: tag-production.sh IMAGE PRODUCTION}"
dst="${2:?usage: tag-production.sh IMAGE PRODUCTION}"
src="${src,,}"
dst="${dst,,}"
command -v skopeo >/dev/null || fail "skopeo is not installed on this runner: install it (apt-get install skopeo)"
err="$(mktemp)"
raw="$(mktemp)"
trap 'rm -f "$err" "$raw"' EXIT
tls="${REGISTRY_TLS_VERIFY:-true}"
skopeo copy --all --preserve-digests --retry-times 2 --src-tls-verify="$tls" --dest-tls-verify="$tls" \
    "docker://$src" "docker://$dst" >/dev/null 2>"$err" \
    || fail "could not copy $src to $dst: $(tail -n 1 "$err" | cut -c1-300)"
digest_of() {
    skopeo inspect --tls-verify="$tls" --raw "docker://$1" >"$raw" 2>"$err" \
        || fail "could not read $1: $(tail -n 1 "$err" | cut -c1-300)"
    skopeo manifest-digest "$raw"
}
digest="$(digest_of "$dst")"
wanted="$(digest_of "$src")"
[ "$digest" = "$wanted" ] || fail "$dst names $digest after the copy, not $src's $wanted"
say "$dst now names $digest"
echo "$digest"
