"""The `api.py` command line: load the artifact, then serve it with Waitress."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from cryptopredict.errors import ArtifactError
from cryptopredict.serving import create_app
from cryptopredict.serving.config import ServeSettings

__all__ = ["main"]


def build_parser(defaults: ServeSettings) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="api.py", description="Serve the forecast artifact over HTTP.")
    p.add_argument("--artifact", help=f"artifact folder (env ARTIFACT_DIR, default {defaults.artifact_dir})")
    p.add_argument("--host", help=f"address to bind (env HOST, default {defaults.host})")
    p.add_argument("--port", type=int, help=f"port (env PORT, default {defaults.port})")
    p.add_argument("--threads", type=int, help=f"worker threads (env WEB_CONCURRENCY, default {defaults.threads})")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        defaults = ServeSettings.from_env()
    except ValueError as exc:
        print(f"api.py: error: {exc}", file=sys.stderr)
        return 2
    args = build_parser(defaults).parse_args(argv)
    overrides = {"artifact_dir": args.artifact, "host": args.host, "port": args.port, "threads": args.threads}
    try:
        app = create_app(overrides)
    except ArtifactError as exc:
        print(f"api.py: cannot start: {exc}", file=sys.stderr)
        return 1
    settings = app.extensions["cryptopredict"].settings
    model = app.extensions["cryptopredict"].artifact
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(
        f"serving {', '.join(model.forecasts)} (model {model.model_version}, trained {model.manifest['trained_at']}) "
        f"on http://{settings.host}:{settings.port}",
        file=sys.stderr,
        flush=True,
    )
    from waitress import serve

    serve(app, host=settings.host, port=settings.port, threads=settings.threads, ident="")
    return 0
