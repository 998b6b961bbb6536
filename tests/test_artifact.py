"""The artifact contract: verified on load, refused with one line when bad, written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from cryptopredict.artifact import MANIFEST_NAME, read_artifact, write_artifact
from cryptopredict.errors import ArtifactError
from tests.helpers import run_cli


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _manifest(path: Path) -> dict:
    return json.loads((path / MANIFEST_NAME).read_text())


def _gen_file(path: Path, name: str) -> Path:
    return path / _manifest(path)["generation"] / name


def _tamper(path: Path) -> None:
    f = _gen_file(path, "BTC-USD.json")
    data = f.read_bytes().replace(b'"yhat":[', b'"yhat":[1', 1)
    f.write_bytes(data)


def _corrupt_manifest(path: Path) -> None:
    (path / MANIFEST_NAME).write_text('{"schema_version": 1, "generation": ')


def _future_schema(path: Path) -> None:
    m = _manifest(path)
    m["schema_version"] = 99
    (path / MANIFEST_NAME).write_text(json.dumps(m))


def _schema_one(path: Path) -> None:
    m = _manifest(path)
    m["schema_version"] = 1
    (path / MANIFEST_NAME).write_text(json.dumps(m))


def _crossing_quantiles(path: Path) -> None:
    """Swap the 10% and 90% columns of one grid, and re-sign it so only the content check can catch it."""
    f = _gen_file(path, "BTC-USD.json")
    payload = json.loads(f.read_bytes())
    q = payload["served"]["quantiles"]
    levels = payload["served"]["levels"]
    lo, hi = levels.index(0.1), levels.index(0.9)
    q[lo], q[hi] = q[hi], q[lo]
    data = json.dumps(payload).encode()
    f.write_bytes(data)
    m = _manifest(path)
    m["files"]["BTC-USD.json"] = hashlib.sha256(data).hexdigest()
    (path / MANIFEST_NAME).write_text(json.dumps(m))


def _drop_grid(path: Path) -> None:
    _gen_file(path, "ETH-USD.json").unlink()


def _missing(path: Path) -> None:
    shutil.rmtree(path)


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (_missing, "not found"),
        (_corrupt_manifest, "not valid JSON"),
        (_tamper, "checksum mismatch"),
        (_future_schema, "unknown artifact schema version 99"),
        (_schema_one, "schema version 1 predates the served forecast"),
        (_crossing_quantiles, "served quantiles at point 0 are not positive, finite and ascending"),
        (_drop_grid, "incomplete artifact"),
    ],
)
def test_server_refuses_a_bad_artifact_in_one_line(artifact_dir: Path, tmp_path: Path, damage, says: str) -> None:
    """A missing, corrupt, tampered or unknown-version artifact stops api.py with a one-line reason."""
    bad = _copy(artifact_dir, tmp_path / "art")
    damage(bad)
    proc = run_cli("api.py", "--artifact", str(bad), "--port", "1", timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert says in lines[0]
    assert lines[0].startswith("api.py: cannot start:")


def test_api_check_verifies_the_artifact_and_exits_without_serving(artifact_dir: Path, tmp_path: Path) -> None:
    """`api.py --check` (the image build's guard): 0 and one line on a sound artifact, 1 on a tampered ledger."""
    ok = run_cli("api.py", "--artifact", str(artifact_dir), "--check", timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr.strip().startswith(f"api.py: artifact {artifact_dir} verified: model test-1.0.0, gen-")
    bad = _copy(artifact_dir, tmp_path / "art")
    manifest = json.loads((bad / MANIFEST_NAME).read_text())
    ledger = bad / manifest["generation"] / "ledger.json"
    ledger.write_bytes(ledger.read_bytes() + b" ")
    proc = run_cli("api.py", "--artifact", str(bad), "--check", timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("api.py: cannot start: checksum mismatch for ")
    assert "ledger.json" in proc.stderr


def test_waitress_serve_entry_refuses_a_bad_artifact(tmp_path: Path) -> None:
    """`waitress-serve --call api:create_app` on a missing artifact exits non-zero with one line, no traceback."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "waitress", "--port=1", "--call", "api:create_app"],
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "ARTIFACT_DIR": str(tmp_path / "nothing")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "not found" in proc.stderr.strip().splitlines()[-1]


def test_same_data_gives_the_same_grid(artifact_dir: Path, tmp_path: Path) -> None:
    """Training twice on the same data writes byte-identical forecast grids (seeded uncertainty)."""
    from cryptopredict.training.config import TrainConfig
    from cryptopredict.training.pipeline import run
    from cryptopredict.training.sources.csv import CsvSource
    from tests.conftest import SLICE_START
    from tests.helpers import DATA

    config = TrainConfig(
        source=CsvSource(str(DATA)),
        symbols=("BTC/USD", "ETH/USD"),
        start=SLICE_START,
        out=str(tmp_path),
        model_version="test-1.0.0",
    )
    run(config, log=lambda _line: None)
    first, second = _manifest(artifact_dir)["files"], _manifest(tmp_path)["files"]
    assert first["BTC-USD.json"] == second["BTC-USD.json"]
    assert first["ETH-USD.json"] == second["ETH-USD.json"]


def test_a_failed_write_leaves_the_previous_artifact(artifact_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """If the commit step fails, the old manifest and generation still load and no half generation stays."""
    art = _copy(artifact_dir, tmp_path / "art")
    before = _manifest(art)
    payload = json.loads(_gen_file(art, "BTC-USD.json").read_text())

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        write_artifact(art, {"model_version": "x", "trained_at": "t", "timeframe": "1Day"}, {"BTC-USD": payload})
    monkeypatch.undo()
    assert _manifest(art) == before
    assert read_artifact(art).model_version == "test-1.0.0"
    assert sorted(p.name for p in art.iterdir() if p.name.startswith("gen-")) == [before["generation"]]
    assert not [p for p in art.iterdir() if p.name.startswith(".manifest-")]


def test_writer_refuses_non_finite_values(artifact_dir: Path, tmp_path: Path) -> None:
    """A grid holding NaN is refused before anything is written."""
    payload = json.loads(_gen_file(artifact_dir, "BTC-USD.json").read_text())
    payload["yhat"][3] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        write_artifact(tmp_path / "out", {"model_version": "x"}, {"BTC-USD": payload})
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_old_generations_are_pruned_but_the_previous_one_kept(artifact_dir: Path, tmp_path: Path) -> None:
    """After several writes only the current and the previous generation remain on disk."""
    art = _copy(artifact_dir, tmp_path / "art")
    payload = json.loads(_gen_file(art, "BTC-USD.json").read_text())
    meta = {"model_version": "v", "trained_at": "2026-01-01T00:00:00Z", "timeframe": "1Day"}
    for _ in range(3):
        write_artifact(art, meta, {"BTC-USD": payload})
    gens = [p for p in art.iterdir() if p.name.startswith("gen-")]
    assert len(gens) == 2
    assert read_artifact(art).forecasts["BTC-USD"].yhat[0] == payload["yhat"][0]


def test_reader_rejects_unsafe_file_names(artifact_dir: Path, tmp_path: Path) -> None:
    """A manifest cannot make the server read outside its generation folder."""
    art = _copy(artifact_dir, tmp_path / "art")
    m = _manifest(art)
    m["files"]["../../etc/passwd"] = "0" * 64
    (art / MANIFEST_NAME).write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match="unsafe file name"):
        read_artifact(art)
