"""Serve a bench reference app (`floor_app` or `original_app`) with the Waitress options given as
JSON (the runner passes ours, so every server runs with the same settings)."""

import importlib
import json
import sys

from waitress import serve

if __name__ == "__main__":
    module, options = sys.argv[1], json.loads(sys.argv[2])
    serve(importlib.import_module(module).create_app(), **options)
