#!/usr/bin/env bash
# The image's own smoke test, on the runner, before the deploy: run IMAGE, and /healthz must report
# VERSION and GENERATION (this run's training) and /bitcoin must answer, as scripts/smoke-test.sh
# checks the deployed service. The scheduled retrain runs it instead of the image tests of the
# whole suite. Exit 0 when both checks pass, else 1 with one line saying what was served instead.
#
# Usage: scripts/smoke-image.sh IMAGE. Environment: VERSION, GENERATION; SMOKE_PORT (default 18080).
set -euo pipefail
: "${1:?usage: smoke-image.sh IMAGE}" "${VERSION:?}" "${GENERATION:?}"
here="$(dirname "$0")"
port="${SMOKE_PORT:-18080}"
cid="$(docker run --detach --publish "127.0.0.1:$port:8080" "$1")"
trap 'docker rm --force "$cid" >/dev/null 2>&1 || true' EXIT
PUBLIC_URL="http://127.0.0.1:$port" SMOKE_TRIES="${SMOKE_TRIES:-30}" SMOKE_WAIT="${SMOKE_WAIT:-2}" \
    bash "$here/smoke-test.sh"
