#!/usr/bin/env bash
# Read what the Dockerfile's train stage left (its `report` target exported to DIR) and act on it:
# the champion, the gate's report and decision into the job summary (and a warning for each pair
# carried forward or left out); the trained generation into the step's outputs; and a refused or
# failed run into a failed step with the reason in one line.
#
#   scripts/train-verdict.sh DIR
#
# Environment: PRODUCTION_IMAGE (the champion's image, empty on a first run); GITHUB_STEP_SUMMARY
# and GITHUB_OUTPUT (set by GitHub Actions; default: standard output).
set -euo pipefail
dir="${1:?usage: train-verdict.sh DIR}"
summary="${GITHUB_STEP_SUMMARY:-/dev/stdout}"
outputs="${GITHUB_OUTPUT:-/dev/stdout}"

{
    if [ -n "${PRODUCTION_IMAGE:-}" ]; then
        echo "Champion: \`$PRODUCTION_IMAGE\` (the image tagged production), its artifact given to training as the baseline."
    else
        echo "Champion: none. No image is tagged \`production\` yet: this is a first run, nothing to compare with, and the track record starts with this model."
    fi
    echo
} >>"$summary"

status="$(cat "$dir/status" 2>/dev/null || echo missing)"
if [ "$status" = 0 ] && [ -f "$dir/manifest.json" ]; then
    cat "$dir/report.md" >>"$summary"
    # A warning on the run's page for each pair this run did not serve fresh: carried forward or left out.
    python3 - "$dir/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
carried = {meta["symbol"]: meta["carried"] for meta in m.get("symbols", {}).values() if meta.get("carried")}
for symbol, verdict in (m.get("gate") or {}).get("pairs", {}).items():
    if verdict == "carried":
        c = carried[symbol]
        print(f"::warning title={symbol} carried forward::model {c['model_version']}'s forecast "
              f"(trained {c['trained_at']}) is served again: {c['reason']}")
    elif verdict == "left out":
        print(f"::warning title={symbol} left out::not served: {m.get('skipped', {}).get(symbol, '')}")
PY
    generation="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["generation"])' "$dir/manifest.json")"
    echo "generation=$generation" >>"$outputs"
    exit 0
fi
[ -f "$dir/rejected-report.md" ] && cat "$dir/rejected-report.md" >>"$summary"
reason="$(grep '^train.py: error: ' "$dir/train.log" 2>/dev/null | tail -n 1 | sed 's/^train.py: error: //')"
[ -n "$reason" ] || reason="training ended with status $status and no reason in train.log"
{
    echo
    echo "**Not promoted: production is untouched.** $reason"
} >>"$summary"
# One line, shown on the run's page as the failure's title.
echo "::error title=Challenger not promoted::$reason"
exit 1
