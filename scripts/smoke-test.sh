#!/usr/bin/env bash
# The deploy's smoke test: PUBLIC_URL must serve this run's model, and answer the public contract.
#
# Environment: PUBLIC_URL (the service's address; unset: the test is skipped, said in one line),
# VERSION and GENERATION (what /healthz must report: the generation is unique to the training run,
# so a service still serving the previous deploy fails), SMOKE_TRIES / SMOKE_WAIT (default 60 x 10 s:
# a new deploy may take minutes to take the traffic). Exit 0 when both checks pass, else 1 with one
# line saying what was served instead.
set -euo pipefail
: "${VERSION:?}" "${GENERATION:?}"
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
error_title="Smoke test failed"
if [ -z "${PUBLIC_URL:-}" ]; then
    say "no PUBLIC_URL variable: smoke test skipped (set it to your service's address)"
    exit 0
fi
url="${PUBLIC_URL%/}"
say "$url: /healthz must report $VERSION generation $GENERATION, /bitcoin must answer"
served=""
for _ in $(seq 1 "${SMOKE_TRIES:-60}"); do
    served="$(curl -fsS --max-time 10 "$url/healthz" 2>/dev/null \
        | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["model_version"], d.get("generation"))' \
        2>/dev/null || true)"
    [ "$served" = "$VERSION $GENERATION" ] && break
    sleep "${SMOKE_WAIT:-10}"
done
if [ "$served" != "$VERSION $GENERATION" ]; then
    fail "$url is serving ${served:-nothing} instead of $VERSION $GENERATION"
fi
today="$(date -u +%Y-%m-%d)"
if ! curl -fsS --max-time 10 "$url/bitcoin?date=$today" 2>/dev/null \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["prediction"] > 0, d' 2>/dev/null; then
    fail "$url/bitcoin?date=$today gave no forecast"
fi
say "passed: $VERSION generation $GENERATION is serving"
