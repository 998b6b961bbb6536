"""Serve the forecast API: `python api.py --help`, or `waitress-serve --call api:create_app`."""

import sys

from flask import Flask

from cryptopredict.errors import ArtifactError
from cryptopredict.serving import create_app as _create_app
from cryptopredict.serving.cli import main, settle_heap


def create_app() -> Flask:
    """The WSGI app for `waitress-serve --call`; settings from the environment (ARTIFACT_DIR...)."""
    try:
        app = _create_app()
    except (ArtifactError, ValueError) as exc:
        raise SystemExit(f"api: cannot start: {exc}") from None
    settle_heap()
    return app


if __name__ == "__main__":
    sys.exit(main())
