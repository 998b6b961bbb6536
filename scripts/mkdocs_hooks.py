"""MkDocs hook: the OpenAPI reference page gets the document the app serves and the Swagger UI it vendors.

The document is asked of the app itself (built from the golden artifact the tests keep), the same
`GET /openapi.json` a client makes, so the site's reference cannot drift from the server.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "artifact"
STATIC = ROOT / "cryptopredict" / "serving" / "static"
# The vendored Swagger UI files the page loads, and the initialiser the server's /docs uses.
SWAGGER = ("swagger-ui.css", "swagger-ui-bundle.js", "LICENSE", "NOTICE")


def served_openapi() -> bytes:
    """The body of GET /openapi.json from an app serving the golden artifact (no live prices)."""
    from cryptopredict.serving import create_app

    app = create_app({"artifact_dir": str(GOLDEN), "live_prices": "off"})
    reply = app.test_client().get("/openapi.json")
    if reply.status_code != 200:
        msg = f"GET /openapi.json answered {reply.status_code}, expected 200"
        raise RuntimeError(msg)
    return reply.get_data()


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add openapi.json and the Swagger UI assets to the site, as files the build knows (links to them check)."""
    files.append(File.generated(config, "openapi.json", content=served_openapi()))
    for name in SWAGGER:
        files.append(File.generated(config, f"swagger-ui/{name}", abs_src_path=str(STATIC / "swagger-ui" / name)))
    files.append(File.generated(config, "swagger-ui/docs.js", abs_src_path=str(STATIC / "docs.js")))
    return files
