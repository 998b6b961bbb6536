"""`python -m cryptopredict.alerts --artifact DIR`: post the rules that fired in an artifact."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptopredict.artifact import read_artifact
from cryptopredict.errors import ArtifactError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cryptopredict.alerts",
        description="Post each watch rule that fired in the artifact to the webhook its webhook_env names.",
    )
    p.add_argument("--artifact", required=True, help="the deployed artifact's folder")
    p.add_argument(
        "--public-url",
        default=os.environ.get("PUBLIC_URL") or None,
        help="the service's page, linked from each message (env PUBLIC_URL)",
    )
    p.add_argument("--timeout", type=float, default=10.0, help="connect and read timeout per post, seconds (10)")
    p.add_argument(
        "--summary",
        default=os.environ.get("GITHUB_STEP_SUMMARY") or None,
        help="append the Markdown summary to this file, '-' for standard output (env GITHUB_STEP_SUMMARY); "
        "progress goes to standard error",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Post what fired; 0 when every fired rule was sent, 1 when a post failed or the rule file was refused."""
    from cryptopredict.alerts.deliver import deliver, summary

    args = _parser().parse_args(argv)
    if not (args.timeout > 0):
        print("alerts: error: --timeout must be a positive number of seconds", file=sys.stderr)
        return 2
    try:
        artifact = read_artifact(args.artifact)
    except ArtifactError as exc:
        print(f"alerts: error: {exc}", file=sys.stderr)
        return 1
    alerts, generation = artifact.alerts, artifact.manifest.generation
    if alerts is None:
        print(
            f"alerts: {args.artifact} holds no alert states (trained before alerts existed): nothing to post",
            file=sys.stderr,
        )
        return 0
    from cryptopredict.serving.anchor import artifact_anchor  # the API's own: one meaning of "the anchor"

    trained_at = artifact.manifest.trained
    anchors = {fc.symbol: artifact_anchor(fc, trained_at).to_json() for fc in artifact.forecasts.values()}
    deliveries = deliver(alerts, generation, os.environ, args.public_url, args.timeout, anchors=anchors)
    if alerts.error is not None:
        print(f"alerts: error: the rule file was refused: {alerts.error}", file=sys.stderr)
    for s in alerts.states:
        print(f"alerts: {s.rule.name}: {s.detail}", file=sys.stderr)
    for d in deliveries:
        print(
            f"alerts: {d.rule}: {'sent' if d.sent else 'NOT sent'} ({d.format} to {d.webhook_env}): {d.outcome}",
            file=sys.stderr,
        )
    text = summary(alerts, generation, deliveries)
    if args.summary == "-":
        sys.stdout.write(text)
    elif args.summary:
        try:
            with Path(args.summary).open("a", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            print(f"alerts: error: cannot write the summary to {args.summary}: {exc.strerror}", file=sys.stderr)
            return 1
    failed = alerts.error is not None or not all(d.sent for d in deliveries)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
