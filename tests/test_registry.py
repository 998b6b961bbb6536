"""The workflow's registry steps against a real registry on 127.0.0.1: finding the champion, tagging production.

Debian's docker-registry (distribution v2) stands in for GHCR, skopeo is the client the scripts use
(as on GitHub's runners), and buildah makes the small images pushed to it.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT, Registry, free_port, local_registry, require_tool

pytestmark = [pytest.mark.image, pytest.mark.server]  # what every test here needs (tests/conftest.py)

SKOPEO = require_tool("skopeo")
OWNER_REPO = "acme/cryptopredict"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with local_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


def push_tiny_image(registry: Registry, ref: str, note: str, tmp_path: Path) -> str:
    """A one-file image written as an OCI layout here (no image store, so no lock shared with the
    image build running beside the suite), pushed as `ref` with skopeo; the digest the registry gives."""
    layout = tmp_path / f"layout-{note}"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes, media_type: str) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("note")
        info.size = len(note)
        tar.addfile(info, io.BytesIO(note.encode()))
    diff_id = f"sha256:{hashlib.sha256(raw.getvalue()).hexdigest()}"
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": blob(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"),
        "layers": [blob(gzip.compress(raw.getvalue(), mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip")],
    }
    index = {"schemaVersion": 2, "manifests": [blob(json.dumps(manifest).encode(), manifest["mediaType"])]}
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    subprocess.run(
        [SKOPEO, "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}", f"docker://{registry.host}/{ref}"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return registry_digest(registry, ref)


def registry_digest(registry: Registry, ref: str) -> str:
    """The digest the registry itself gives for `ref`'s manifest (the sha256 of its bytes)."""
    raw = subprocess.run(
        [SKOPEO, "inspect", "--tls-verify=false", "--raw", f"docker://{registry.host}/{ref}"],
        capture_output=True,
        check=True,
        env={**os.environ, **registry.env},
    ).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def resolve(image: str, env: dict[str, str], tmp_path: Path, path: str | None = None) -> tuple[int, str, str]:
    """Run scripts/resolve-champion.sh as the workflow does; (exit status, its outputs, what it printed)."""
    outputs = tmp_path / "outputs"
    outputs.write_text("")
    proc = subprocess.run(
        ["/bin/bash", str(ROOT / "scripts" / "resolve-champion.sh"), image],
        env={"PATH": path or os.environ["PATH"], "HOME": str(tmp_path), "GITHUB_OUTPUT": str(outputs), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.returncode, outputs.read_text(), proc.stdout + proc.stderr


def test_a_production_tag_resolves_to_the_digest_the_registry_gives(registry: Registry, tmp_path: Path) -> None:
    """Tag present: image= pinned by digest and the named build context, as both builds need them."""
    digest = push_tiny_image(registry, f"{OWNER_REPO}:production", "champion", tmp_path)
    # Any case: GitHub repository names may have capitals, registries want lower case.
    status, outputs, printed = resolve(f"{registry.host}/ACME/cryptopredict:production", registry.env, tmp_path)
    assert status == 0, printed
    pinned = f"{registry.host}/{OWNER_REPO}@{digest}"
    assert outputs.splitlines() == [f"image={pinned}", f"context=production=docker-image://{pinned}"]


@pytest.mark.parametrize(
    ("ref", "why"),
    [(f"{OWNER_REPO}-tagless:production", "tag absent"), ("nobody/never-pushed:production", "repository absent")],
)
def test_an_absent_tag_or_repository_is_a_first_run(registry: Registry, tmp_path: Path, ref: str, why: str) -> None:
    """The registry says the manifest or the repository is unknown: a first run, no outputs, said so."""
    if why == "tag absent":
        push_tiny_image(registry, f"{OWNER_REPO}-tagless:1.0.0-20261204000000", "other-tag", tmp_path)
    status, outputs, printed = resolve(f"{registry.host}/{ref}", registry.env, tmp_path)
    assert status == 0, printed
    assert outputs == ""
    assert "a first run" in printed


def test_a_registry_that_is_down_fails_in_one_line(tmp_path: Path) -> None:
    """Nothing listening: an error that says to check the address and network, never a first run."""
    status, outputs, printed = resolve(f"127.0.0.1:{free_port()}/{OWNER_REPO}:production", {}, tmp_path)
    assert status == 1
    assert outputs == ""
    errors = [line for line in printed.splitlines() if line.startswith("::error")]
    assert len(errors) == 1
    assert "cannot read" in errors[0]
    assert "first run" not in printed.replace("first_run", "")


def test_a_missing_skopeo_fails_instead_of_passing_for_a_first_run(registry: Registry, tmp_path: Path) -> None:
    """The old step's grep matched the shell's `command not found`: now a missing tool is an error naming it."""
    empty = tmp_path / "bin"
    empty.mkdir()
    for tool in ("bash", "dirname", "mktemp", "rm", "tr", "sed", "tail", "cat"):
        (empty / tool).symlink_to(shutil.which(tool))  # type: ignore[arg-type]
    status, outputs, printed = resolve(f"{registry.host}/{OWNER_REPO}:production", registry.env, tmp_path, str(empty))
    assert status == 1
    assert outputs == ""
    assert "skopeo is not installed" in printed


class _Denying:
    """A registry front that denies every read, as GHCR may for a package that does not exist yet."""

    def __init__(self, status: int) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(
                    {"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]}
                )
                self.send_response(200 if self.path == "/v2/" and status == 403 else status)
                self.send_header("Content-Type", "application/json")
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="registry"')
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            do_HEAD = do_GET

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize("first_run", ["", "true"])
def test_a_denied_read_is_a_first_run_only_when_nothing_was_ever_deployed(
    tmp_path: Path, status: int, first_run: str
) -> None:
    """401/403: with FIRST_RUN=true a first run; otherwise an error saying what to check and how to start a fork."""
    front = _Denying(status)
    try:
        env = {"REGISTRY_TLS_VERIFY": "false", "FIRST_RUN": first_run}
        code, outputs, printed = resolve(f"{front.host}/{OWNER_REPO}:production", env, tmp_path)
    finally:
        front.close()
    assert outputs == ""
    if first_run:
        assert code == 0, printed
        assert "FIRST_RUN=true: taken as a first run" in printed
    else:
        assert code == 1
        errors = [line for line in printed.splitlines() if line.startswith("::error")]
        assert len(errors) == 1
        assert "denied" in errors[0]
        assert "first_run" in errors[0]


def test_tagging_production_moves_the_tag_to_the_deployed_digest_and_nothing_else(
    registry: Registry, tmp_path: Path
) -> None:
    """tag-production.sh: production names the deployed image's digest; the image's own tag is unchanged."""
    old = push_tiny_image(registry, f"{OWNER_REPO}-tagging:production", "old", tmp_path)
    new = push_tiny_image(registry, f"{OWNER_REPO}-tagging:1.1.0-20261204120000", "new", tmp_path)
    assert old != new
    proc = subprocess.run(
        [
            "/bin/bash",
            str(ROOT / "scripts" / "tag-production.sh"),
            f"{registry.host}/{OWNER_REPO}-tagging:1.1.0-20261204120000",
            f"{registry.host}/{OWNER_REPO}-tagging:production",
        ],
        env={**os.environ, **registry.env, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == new
    assert registry_digest(registry, f"{OWNER_REPO}-tagging:production") == new
    assert registry_digest(registry, f"{OWNER_REPO}-tagging:1.1.0-20261204120000") == new
