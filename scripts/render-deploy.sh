#!/usr/bin/env bash
# Deploy IMAGE to the Render web service, wait until it is live, then smoke-test PUBLIC_URL.
#
# Environment: IMAGE, VERSION and GENERATION (required; GENERATION is the artifact generation
# this run trained, which /healthz must report: the previous deploy reports its own); RENDER_API_KEY + RENDER_SERVICE_ID (deploy through
# Render's API, wait for the deploy, roll back on a failed smoke test) or RENDER_DEPLOY_HOOK_URL
# (the service's deploy hook; no waiting beyond the smoke test's retries); PUBLIC_URL (the
# service's address, for the smoke test). Render moves traffic to a new deploy only once its
# health check (/healthz) passes, so a deploy that never gets healthy leaves the old one serving.
set -euo pipefail
: "${IMAGE:?}" "${VERSION:?}" "${GENERATION:?}"
api="https://api.render.com/v1"
say() { printf 'render-deploy: %s\n' "$*" >&2; }
auth=(-H "Authorization: Bearer ${RENDER_API_KEY:-}" -H "Accept: application/json")

previous=""
if [ -n "${RENDER_API_KEY:-}" ] && [ -n "${RENDER_SERVICE_ID:-}" ]; then
    previous="$(curl -fsS "${auth[@]}" "$api/services/$RENDER_SERVICE_ID/deploys?limit=1" \
        | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[0]["deploy"]["id"] if d else "")')"
    body="$(python3 -c 'import json,os; print(json.dumps({"imageUrl": os.environ["IMAGE"]}))')"
    deploy="$(curl -fsS "${auth[@]}" -H "Content-Type: application/json" -X POST -d "$body" \
        "$api/services/$RENDER_SERVICE_ID/deploys" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
    say "deploy $deploy of $IMAGE started; waiting for it to go live"
    for _ in $(seq 1 90); do
        status="$(curl -fsS "${auth[@]}" "$api/services/$RENDER_SERVICE_ID/deploys/$deploy" \
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')"
        case "$status" in
            live) say "deploy $deploy is live"; break ;;
            build_failed | update_failed | canceled | deactivated | pre_deploy_failed)
                say "error: deploy $deploy ended as $status; the previous deploy keeps serving"; exit 1 ;;
        esac
        sleep 10
    done
    [ "$status" = live ] || { say "error: deploy $deploy not live after 15 minutes (status $status)"; exit 1; }
elif [ -n "${RENDER_DEPLOY_HOOK_URL:-}" ]; then
    curl -fsS -X POST --get --data-urlencode "imgURL=$IMAGE" "$RENDER_DEPLOY_HOOK_URL" >/dev/null
    say "deploy hook called for $IMAGE"
else
    say "error: set RENDER_API_KEY and RENDER_SERVICE_ID, or RENDER_DEPLOY_HOOK_URL, as repository secrets"
    exit 1
fi

[ -n "${PUBLIC_URL:-}" ] || { say "no PUBLIC_URL variable: smoke test skipped"; exit 0; }
say "smoke test of $PUBLIC_URL: /healthz must report $VERSION generation $GENERATION, /bitcoin must answer"
ok=""
for _ in $(seq 1 "${SMOKE_TRIES:-60}"); do
    served="$(curl -fsS --max-time 10 "$PUBLIC_URL/healthz" 2>/dev/null \
        | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["model_version"], d.get("generation"))' \
        2>/dev/null || true)"
    if [ "$served" = "$VERSION $GENERATION" ]; then ok=1; break; fi
    sleep "${SMOKE_WAIT:-10}"
done
today="$(date -u +%Y-%m-%d)"
if [ -n "$ok" ] && curl -fsS --max-time 10 "$PUBLIC_URL/bitcoin?date=$today" \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["prediction"] > 0, d'; then
    say "smoke test passed: $VERSION generation $GENERATION is serving"
    exit 0
fi
say "error: smoke test failed (serving ${served:-nothing} instead of $VERSION $GENERATION)"
if [ -n "$previous" ]; then
    say "rolling back to deploy $previous"
    curl -fsS "${auth[@]}" -H "Content-Type: application/json" -X POST \
        -d "{\"deployId\": \"$previous\"}" "$api/services/$RENDER_SERVICE_ID/rollback" >/dev/null
fi
exit 1
