"""The installable package: `pip install '.[serve]'` in a clean venv serves an artifact with its console script."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.helpers import GOLDEN, ROOT, await_healthy, free_port, http_get, stop

pytestmark = pytest.mark.server  # what every test here needs (tests/conftest.py)

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pins(lock: Path) -> str:
    """The lock's `name==version` lines without their hashes: pip constraints that hold the install to them."""
    return "".join(line.split()[0] + "\n" for line in lock.read_text().splitlines() if "==" in line)


@pytest.fixture(scope="module")
def serve_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean venv with the package installed as a user does, `pip install '.[serve]'`, from a copy of the
    checkout (so no build files land in it), held to the serving lock's versions."""
    tmp = tmp_path_factory.mktemp("package")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "cryptopredict", src / "cryptopredict", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp / "constraints.txt").write_text(_pins(ROOT / "requirements-api.txt"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-c", str(tmp / "constraints.txt"),
         f"{src}[serve]"],
        cwd=tmp, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv


def test_the_serve_extra_installs_the_api_without_the_training_side(serve_venv: Path) -> None:
    """The serve extra brings Flask and Waitress and none of pandas, numpy, Prophet or alpaca-py."""
    python = str(serve_venv / "bin" / "python")
    for light in ("flask", "flask_cors", "waitress", "requests"):
        probe = subprocess.run([python, "-c", f"import {light}"], capture_output=True, timeout=60, check=False)
        assert probe.returncode == 0, f"{light} is missing from the serve extra"
    for heavy in ("pandas", "numpy", "prophet", "alpaca", "matplotlib"):
        probe = subprocess.run([python, "-c", f"import {heavy}"], capture_output=True, timeout=60, check=False)
        assert probe.returncode != 0, f"{heavy} came with the serve extra"


def test_the_console_script_serves_the_golden_artifact_with_its_page_assets(serve_venv: Path, tmp_path: Path) -> None:
    """cryptopredict-serve, run outside the checkout, answers /bitcoin as api.py does and serves the packaged
    Swagger UI and page templates."""
    port = free_port()
    proc = subprocess.Popen(
        [str(serve_venv / "bin" / "cryptopredict-serve"), "--artifact", str(GOLDEN), "--port", str(port),
         "--host", "127.0.0.1"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        assert await_healthy(proc, base, 60), "cryptopredict-serve did not answer /healthz"
        from tests.test_golden import GOLDEN_BITCOIN

        assert http_get(base + "/bitcoin?date=2025-03-01").json() == GOLDEN_BITCOIN
        assert http_get(base + "/docs").status == 200
        bundle = http_get(base + "/static/swagger-ui/swagger-ui-bundle.js")
        assert bundle.status == 200
        assert len(bundle.body) > 100_000
        assert http_get(base + "/").status == 200
    finally:
        stop(proc)


def test_the_console_scripts_and_extras_name_what_the_locks_hold() -> None:
    """Both console scripts point at the entry points train.py and api.py call; each extra names the packages
    of its lock's .in file."""
    scripts = PYPROJECT["project"]["scripts"]
    assert scripts["cryptopredict-train"] == "cryptopredict.training.cli:main"
    assert scripts["cryptopredict-serve"] == "cryptopredict.serving.cli:main"
    assert "from cryptopredict.training.cli import main" in (ROOT / "train.py").read_text()
    assert "from cryptopredict.serving.cli import main" in (ROOT / "api.py").read_text()
    extras = PYPROJECT["project"]["optional-dependencies"]

    def names(requirements: list[str]) -> set[str]:
        return {r.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip() for r in requirements}

    def lock_in(path: str) -> set[str]:
        lines = (ROOT / path).read_text().splitlines()
        return names([line for line in lines if line and not line.startswith(("#", "-r"))])

    assert names(extras["serve"]) == lock_in("requirements-api.in")
    assert names(extras["train"]) | names(extras["cluster"]) - {"cryptopredict"} == lock_in("requirements-train.in")
    assert names(extras["dev"]) - {"cryptopredict"} == lock_in("requirements-dev.in")


def test_the_license_file_is_the_mit_license_pyproject_and_the_image_name() -> None:
    """LICENSE holds the MIT text; pyproject's license and the image's label say MIT too."""
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text
    assert PYPROJECT["project"]["license"] == "MIT"
    assert 'org.opencontainers.image.licenses="MIT"' in (ROOT / "Dockerfile").read_text()
