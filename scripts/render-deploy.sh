#!/usr/bin/env bash
# Deploy IMAGE to the Render web service, wait until it is live, then smoke-test PUBLIC_URL
# (scripts/smoke-test.sh); with Render's API, roll back to the previous deploy if the smoke test fails.
#
# Environment: IMAGE, VERSION and GENERATION (required; GENERATION is the artifact generation
# this run trained, which /healthz must report: the previous deploy reports its own);
# RENDER_API_KEY + RENDER_SERVICE_ID (deploy through Render's API, wait for the deploy, roll back on
# a failed smoke test) or RENDER_DEPLOY_HOOK_URL (the service's deploy hook; no waiting beyond the
# smoke test's retries); PUBLIC_URL (the service's address, for the smoke test).
# Settings for tests and slow services: RENDER_API_URL (default Render's), RENDER_HTTP_TIMEOUT (s,
# per call, default 30), RENDER_POLL_TRIES / RENDER_POLL_WAIT (default 90 x 10 s), SMOKE_TRIES /
# SMOKE_WAIT. Render moves traffic to a new deploy only once its health check (/healthz) passes,
# so a deploy that never gets healthy leaves the old one serving.
# Never printed: the API key, the hook URL (its query holds a key) and the service id.
set -euo pipefail
: "${IMAGE:?}" "${VERSION:?}" "${GENERATION:?}"
api="${RENDER_API_URL:-https://api.render.com/v1}"
api="${api%/}"
timeout="${RENDER_HTTP_TIMEOUT:-30}"
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
error_title="Deploy failed"

# One call to Render's API: prints the body; on any failure, one line naming the call (never the
# key or the service id) and exit 1 (from the command substitution it runs in: set -e ends the
# script there). `what` names the call for people.
render() {
    local method="$1" path="$2" what="$3" body="${4:-}" status
    local args=(-sS --max-time "$timeout" -o "$work/body" -w '%{http_code}' -X "$method"
        -H "Accept: application/json" -H "Content-Type: application/json" -H @"$work/auth")
    [ -n "$body" ] && args+=(-d "$body")
    if ! status="$(curl "${args[@]}" "$api$path" 2>"$work/curl.err")"; then
        fail "Render API: $what: no answer ($(sed -e 's/^curl: //' "$work/curl.err" | head -n 1 | cut -c1-160))"
    fi
    case "$status" in
        2??) cat "$work/body" ;;
        401 | 403) fail "Render API: $what: HTTP $status: check the RENDER_API_KEY secret" ;;
        404) fail "Render API: $what: HTTP 404: check the RENDER_SERVICE_ID secret (the srv-… id)" ;;
        *) fail "Render API: $what: HTTP $status" ;;
    esac
}
# A field of the JSON on standard input (a path like 0.deploy.id); exit 1 with one line if absent.
field() {
    python3 -c '
import json, sys
try:
    value = json.load(sys.stdin)
    for key in sys.argv[1].split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
except Exception:
    sys.exit(1)
print(value if value is not None else "")
' "$1"
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The key goes to curl in a file, so it never appears in a process listing or an error.
printf 'Authorization: Bearer %s\n' "${RENDER_API_KEY:-}" >"$work/auth"

previous=""
if [ -n "${RENDER_API_KEY:-}" ] && [ -n "${RENDER_SERVICE_ID:-}" ]; then
    service="/services/$RENDER_SERVICE_ID"
    latest="$(render GET "$service/deploys?limit=1" "list the last deploy")"
    previous="$(field 0.deploy.id <<<"$latest" || true)"
    [ -n "$previous" ] && say "the service now runs deploy ${previous:0:4}…"
    body="$(IMAGE="$IMAGE" python3 -c 'import json,os; print(json.dumps({"imageUrl": os.environ["IMAGE"]}))')"
    started="$(render POST "$service/deploys" "start a deploy of $IMAGE" "$body")"
    deploy="$(field id <<<"$started")" || fail "Render API: start a deploy: the answer names no deploy id"
    say "deploy $deploy of $IMAGE started; waiting for it to go live"
    status=""
    for _ in $(seq 1 "${RENDER_POLL_TRIES:-90}"); do
        reply="$(render GET "$service/deploys/$deploy" "read deploy $deploy")"
        status="$(field status <<<"$reply")" || fail "Render API: read deploy $deploy: the answer has no status"
        case "$status" in
            live) say "deploy $deploy is live"; break ;;
            build_failed | update_failed | canceled | deactivated | pre_deploy_failed)
                fail "deploy $deploy ended as $status; the previous deploy keeps serving" ;;
        esac
        sleep "${RENDER_POLL_WAIT:-10}"
    done
    [ "$status" = live ] || fail "deploy $deploy not live after ${RENDER_POLL_TRIES:-90} checks (status ${status:-none})"
elif [ -n "${RENDER_DEPLOY_HOOK_URL:-}" ]; then
    # The hook URL's query holds a key: curl gets it from a file, and its errors name no URL.
    printf 'url = "%s"\n' "$RENDER_DEPLOY_HOOK_URL" >"$work/hook"
    if ! hook="$(curl -sS --max-time "$timeout" -o /dev/null -w '%{http_code}' -X POST -G \
        --data-urlencode "imgURL=$IMAGE" -K "$work/hook" 2>"$work/curl.err")"; then
        fail "the deploy hook gave no answer ($(sed -e 's/^curl: //' -e 's#https\?://[^ ]*#<hook>#g' "$work/curl.err" | head -n 1 | cut -c1-160))"
    fi
    case "$hook" in 2??) say "deploy hook called for $IMAGE" ;; *) fail "the deploy hook answered HTTP $hook: check the RENDER_DEPLOY_HOOK_URL secret" ;; esac
else
    fail "set RENDER_API_KEY and RENDER_SERVICE_ID, or RENDER_DEPLOY_HOOK_URL, as repository secrets"
fi

if bash "$here/smoke-test.sh"; then
    exit 0
fi
if [ -n "$previous" ]; then
    say "rolling back to deploy $previous"
    render POST "$service/rollback" "roll back to deploy $previous" "{\"deployId\": \"$previous\"}" >/dev/null
fi
exit 1
