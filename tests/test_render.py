"""scripts/render-deploy.sh through Render's API path, against a local stand-in of that API and the service.

The stand-in implements the calls the script makes (the last deploy, start a deploy of an image,
read its status, roll back) with Render's shapes, checks the bearer key, and can be told to fail,
hang, or report the deploy failed. It also plays the service: /healthz names the generation of
whatever deploy is live, so the smoke test sees exactly what Render would be serving.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.helpers import ROOT
from tests.render_stand_in import HOOK_KEY, KEY, SERVICE, RenderStandIn

IMAGE = "ghcr.io/acme/cryptopredict:1.4.2-20261204101500"
OLD_GENERATION, NEW_GENERATION = "gen-20261204T040000Z-aaaaaaaa", "gen-20261204T101500Z-bbbbbbbb"


@pytest.fixture
def stand_in() -> Iterator[RenderStandIn]:
    s = RenderStandIn(OLD_GENERATION).start()
    s.next_generation = NEW_GENERATION
    yield s
    s.close()


def deploy(stand_in: RenderStandIn, *, hook: bool = False, **env: str) -> subprocess.CompletedProcess[str]:
    """Run render-deploy.sh as the deploy job does, with the API (or the hook) and the service on the stand-in."""
    secrets = (
        {"RENDER_DEPLOY_HOOK_URL": f"{stand_in.url}/hook/{SERVICE}?key={HOOK_KEY}"}
        if hook
        else {"RENDER_API_KEY": KEY, "RENDER_SERVICE_ID": SERVICE}
    )
    return subprocess.run(
        ["/bin/bash", str(ROOT / "scripts" / "render-deploy.sh")],
        env={
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "IMAGE": IMAGE,
            "VERSION": "1.4.2",
            "GENERATION": NEW_GENERATION,
            "RENDER_API_URL": f"{stand_in.url}/v1",
            "PUBLIC_URL": stand_in.url,
            "RENDER_POLL_WAIT": "0",
            "RENDER_POLL_TRIES": "5",
            "RENDER_HTTP_TIMEOUT": "2",
            "SMOKE_TRIES": "2",
            "SMOKE_WAIT": "0",
            **secrets,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _no_secret_in(proc: subprocess.CompletedProcess[str]) -> None:
    printed = proc.stdout + proc.stderr
    for secret in (KEY, SERVICE, HOOK_KEY, "hook/"):
        assert secret not in printed, f"{secret!r} printed"


def test_the_api_path_deploys_the_image_waits_until_live_and_passes_the_smoke_test(stand_in: RenderStandIn) -> None:
    """Last deploy read, the run's image deployed by URL, status polled to live, the new generation served."""
    proc = deploy(stand_in)
    assert proc.returncode == 0, proc.stderr
    calls = [(m, p) for m, p, _ in stand_in.calls if p.startswith("/v1/")]
    assert calls[:2] == [
        ("GET", f"/v1/services/{SERVICE}/deploys?limit=1"),
        ("POST", f"/v1/services/{SERVICE}/deploys"),
    ]
    assert next(b for m, p, b in stand_in.calls if m == "POST") == {"imageUrl": IMAGE}
    assert ("GET", f"/v1/services/{SERVICE}/deploys/dep-1") in calls
    assert "passed: 1.4.2 generation " + NEW_GENERATION in proc.stderr
    _no_secret_in(proc)


@pytest.mark.parametrize(
    ("mode", "message", "rolled_back"),
    [
        ("fail", "Render API: start a deploy of " + IMAGE + ": HTTP 500", False),
        ("hang", "Render API: list the last deploy: no answer", False),
        ("bad-key", "HTTP 401: check the RENDER_API_KEY secret", False),
        ("deploy-failed", "deploy dep-1 ended as update_failed; the previous deploy keeps serving", False),
        ("never-live", "deploy dep-1 not live after 5 checks (status update_in_progress)", False),
        ("unhealthy", f"serving 1.4.2 {OLD_GENERATION} instead of 1.4.2 {NEW_GENERATION}", True),
    ],
)
def test_a_failing_render_fails_the_deploy_in_one_line_and_prints_no_secret(
    stand_in: RenderStandIn, mode: str, message: str, rolled_back: bool
) -> None:
    """Each misbehaviour: exit 1, one error line saying what happened; a failed smoke test rolls back."""
    stand_in.mode = mode
    proc = deploy(stand_in)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("::error")]
    assert len(errors) == 1, proc.stderr
    assert message in errors[0] or message in proc.stderr, proc.stderr
    rollback = [b for m, p, b in stand_in.calls if p.endswith("/rollback")]
    assert rollback == ([{"deployId": "dep-0"}] if rolled_back else [])
    _no_secret_in(proc)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("ok", None),
        ("fail", "the deploy hook answered HTTP 500"),
        # The hook was called, but the service still serves the previous deploy's generation.
        ("unhealthy", f"serving 1.4.2 {OLD_GENERATION} instead of 1.4.2 {NEW_GENERATION}"),
    ],
)
def test_the_deploy_hook_path_never_prints_the_hook_url(stand_in: RenderStandIn, mode: str, message: str) -> None:
    """The hook is called with the image; the smoke test decides; no part of the hook URL is ever printed."""
    stand_in.mode = mode
    proc = deploy(stand_in, hook=True)
    hooks = [p for m, p, _ in stand_in.calls if p.startswith("/hook")]
    assert len(hooks) == 1
    assert "imgurl=ghcr.io%2facme%2fcryptopredict%3a1.4.2-20261204101500" in hooks[0].lower()
    if message is None:
        assert proc.returncode == 0, proc.stderr
        assert f"passed: 1.4.2 generation {NEW_GENERATION} is serving" in proc.stderr
    else:
        assert proc.returncode == 1
        assert message in proc.stderr
    _no_secret_in(proc)


def test_an_unreachable_hook_says_so_without_its_url(stand_in: RenderStandIn) -> None:
    """Nothing listening at the hook: one line, and the URL (with its key) is not in it."""
    proc = deploy(stand_in, hook=True, RENDER_DEPLOY_HOOK_URL=f"http://127.0.0.1:9/deploy/{SERVICE}?key={HOOK_KEY}")
    assert proc.returncode == 1
    assert "the deploy hook gave no answer" in proc.stderr
    assert stand_in.calls == []
    _no_secret_in(proc)
