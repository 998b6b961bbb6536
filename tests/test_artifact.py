"""The artifact contract: verified on load, refused with one line when bad, written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from array import array
from dataclasses import replace
from pathlib import Path

import pytest

from cryptopredict.artifact import MANIFEST_NAME, Manifest, PairGrid, grid_of, read_artifact, write_artifact
from cryptopredict.errors import ArtifactError
from tests.helpers import DATA, GOLDEN, ROOT, rewrite_manifest, run_cli


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _manifest(path: Path) -> dict:
    return json.loads((path / MANIFEST_NAME).read_text())


def _gen_file(path: Path, name: str) -> Path:
    return path / _manifest(path)["generation"] / name


def _grid(path: Path, slug: str = "BTC-USD") -> PairGrid:
    return grid_of(read_artifact(path).forecasts[slug])


def _records(path: Path, model_version: str = "v") -> Manifest:
    """The records of an artifact's manifest under `model_version`, without the files a test does not write
    again (its ledger, report, alert states, charts and fitted models)."""
    m = read_artifact(path).manifest
    entries = {slug: replace(e, charts={}, backtest_chart=None, model_file=None) for slug, e in m.symbols.items()}
    return replace(
        m, model_version=model_version, trained_at="2026-01-01T00:00:00Z", symbols=entries,
        ledger=None, report=None, alerts=None,
    )  # fmt: skip


def _resign(path: Path, name: str) -> None:
    """Put a generation file's new SHA-256 in the manifest, so only a check of its content can catch it."""
    m = _manifest(path)
    m["files"][name] = hashlib.sha256(_gen_file(path, name).read_bytes()).hexdigest()
    rewrite_manifest(path, m)


def _tamper(path: Path) -> None:
    """Flip one bit of one byte in the middle of a binary grid."""
    f = _gen_file(path, "BTC-USD.served.bin")
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    """Cut the last value off a binary grid, and re-sign it: its size no longer matches the manifest."""
    f = _gen_file(path, "BTC-USD.series.bin")
    f.write_bytes(f.read_bytes()[:-8])
    _resign(path, "BTC-USD.series.bin")


def _wrong_length(path: Path) -> None:
    """State one value more in the manifest than a binary grid holds."""
    m = _manifest(path)
    m["grids"]["BTC-USD"]["files"]["served"]["length"] += 1
    rewrite_manifest(path, m)


def _corrupt_manifest(path: Path) -> None:
    (path / MANIFEST_NAME).write_text('{"schema_version": 1, "generation": ')


def _future_schema(path: Path) -> None:
    m = _manifest(path)
    m["schema_version"] = 99
    rewrite_manifest(path, m)


def _schema_four(path: Path) -> None:
    """The manifest as the last schema wrote it, as far as its version says: no digest, a copied track record."""
    m = _manifest(path)
    m["schema_version"] = 4
    del m["digest"]
    m["track_record"] = {}
    (path / MANIFEST_NAME).write_text(json.dumps(m))


def _edited_figure(path: Path) -> None:
    """Change the last digit of the first backtest MAPE in the manifest, its layout kept: only the manifest's
    digest can tell (no file's checksum covers the manifest itself)."""
    text = (path / MANIFEST_NAME).read_text()
    start = text.index('"mape": ') + len('"mape": ')
    end = min(text.index(",", start), text.index("\n", start))
    digit = text[end - 1]
    assert digit.isdigit()
    (path / MANIFEST_NAME).write_text(text[: end - 1] + ("1" if digit != "1" else "2") + text[end:])


def _edited_key(path: Path) -> None:
    """A manifest whose digest matches but whose records this code does not read (an unknown field)."""
    m = _manifest(path)
    m["symbols"]["BTC-USD"]["extra"] = 1
    rewrite_manifest(path, m)


def _crossing_quantiles(path: Path) -> None:
    """Swap the 10% and 90% values of the first standardised quantile table (the 1-step one), the manifest's
    digest made right: every quantile at that lead would cross."""
    m = _manifest(path)
    served = m["grids"]["BTC-USD"]["served"]
    levels, row = served["levels"], served["z_rows"][0]
    lo, hi = levels.index(0.1), levels.index(0.9)
    row[lo], row[hi] = row[hi], row[lo]
    rewrite_manifest(path, m)


def _negative_volatility(path: Path) -> None:
    """Make the first bar's volatility (after the closes) negative in the packed file, and re-sign it: its band
    would turn over."""
    f = _gen_file(path, "BTC-USD.served.bin")
    grid = _manifest(path)["grids"]["BTC-USD"]
    values = array("d" if grid["files"]["served"]["dtype"] == "<f8" else "f", f.read_bytes())
    first = grid["history_points"]
    values[first] = -values[first]
    f.write_bytes(values.tobytes())
    _resign(path, "BTC-USD.served.bin")


def _unlisted_chart(path: Path) -> None:
    """Name a chart the manifest has no checksum for (the digest made right): a request for it could not be
    answered, so the artifact is refused at start."""
    m = _manifest(path)
    m["symbols"]["BTC-USD"]["charts"]["forecast"] = "BTC-USD.elsewhere.png"
    rewrite_manifest(path, m)


def _drop_grid(path: Path) -> None:
    _gen_file(path, "ETH-USD.series.bin").unlink()


def _missing(path: Path) -> None:
    shutil.rmtree(path)


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (_missing, "not found"),
        (_corrupt_manifest, "not valid JSON"),
        (_tamper, "checksum mismatch"),
        (_truncate, "(truncated, or a wrong length)"),
        (_wrong_length, "(truncated, or a wrong length)"),
        (_future_schema, "unknown artifact schema version 99"),
        (_schema_four, "artifact schema version 4 is older than this code reads (5): train it again"),
        (_edited_figure, "its content does not match its digest (edited or damaged since it was written)"),
        (_edited_key, "symbols.BTC-USD.extra is not a field this code reads"),
        (_crossing_quantiles, "the served quantile table at 1 step(s) is not finite and ascending"),
        (_negative_volatility, "the served volatility must be positive and every change finite"),
        (_unlisted_chart, "it names 'BTC-USD.elsewhere.png', a file it has no checksum for"),
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


@pytest.mark.server
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


@pytest.mark.training
def test_same_data_gives_the_same_grid(artifact_dir: Path, tmp_path: Path) -> None:
    """Training twice on the same data writes byte-identical forecast grids (seeded uncertainty)."""
    from cryptopredict.training.config import TrainConfig
    from cryptopredict.training.pipeline import run
    from cryptopredict.training.sources.csv import CsvSource
    from tests.conftest import SLICE_START

    config = TrainConfig(
        source=CsvSource(str(DATA)),
        symbols=("BTC/USD", "ETH/USD"),
        start=SLICE_START,
        out=str(tmp_path),
        model_version="test-1.0.0",
    )
    run(config, log=lambda _line: None)
    first, second = _manifest(artifact_dir)["files"], _manifest(tmp_path)["files"]
    grids = [name for name in first if name.endswith(".bin")]
    assert sorted(grids) == [f"{slug}.{part}.bin" for slug in ("BTC-USD", "ETH-USD") for part in ("series", "served")]
    assert {name: first[name] for name in grids} == {name: second[name] for name in grids}


def test_a_failed_write_leaves_the_previous_artifact(artifact_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """If the commit step fails, the old manifest and generation still load and no half generation stays."""
    art = _copy(artifact_dir, tmp_path / "art")
    before = _manifest(art)
    grid = _grid(art)

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        write_artifact(art, _records(art, "x"), {"BTC-USD": grid})
    monkeypatch.undo()
    assert _manifest(art) == before
    assert read_artifact(art).model_version == "test-1.0.0"
    assert sorted(p.name for p in art.iterdir() if p.name.startswith("gen-")) == [before["generation"]]
    assert not [p for p in art.iterdir() if p.name.startswith(".manifest-")]


def test_writer_refuses_non_finite_values(artifact_dir: Path, tmp_path: Path) -> None:
    """A grid holding NaN is refused before anything is written."""
    grid = _grid(artifact_dir)
    grid = replace(grid, yhat=(*grid.yhat[:3], float("nan"), *grid.yhat[4:]))
    with pytest.raises(ValueError, match="non-finite"):
        write_artifact(tmp_path / "out", _records(artifact_dir, "x"), {"BTC-USD": grid})
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_old_generations_are_pruned_but_the_previous_one_kept(artifact_dir: Path, tmp_path: Path) -> None:
    """After several writes only the current and the previous generation remain on disk."""
    art = _copy(artifact_dir, tmp_path / "art")
    grid = _grid(art)
    meta = _records(art)
    for _ in range(3):
        write_artifact(art, meta, {"BTC-USD": grid})
    gens = [p for p in art.iterdir() if p.name.startswith("gen-")]
    assert len(gens) == 2
    assert read_artifact(art).forecasts["BTC-USD"].yhat[0] == grid.yhat[0]


def test_reader_rejects_unsafe_file_names(artifact_dir: Path, tmp_path: Path) -> None:
    """A manifest cannot make the server read outside its generation folder."""
    art = _copy(artifact_dir, tmp_path / "art")
    m = _manifest(art)
    m["files"]["../../etc/passwd"] = "0" * 64
    rewrite_manifest(art, m)
    with pytest.raises(ArtifactError, match="unsafe file name"):
        read_artifact(art)


@pytest.mark.training
@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (_tamper, "checksum mismatch for "),
        (_truncate, "(truncated, or a wrong length)"),
        (_wrong_length, "(truncated, or a wrong length)"),
    ],
)
def test_a_damaged_binary_grid_is_refused_in_one_line_by_check_and_by_training(
    artifact_dir: Path, tmp_path: Path, damage, says: str
) -> None:
    """A flipped byte, a truncated grid or a wrong length stops `api.py --check` and `train.py --baseline-artifact`."""
    bad = _copy(artifact_dir, tmp_path / "art")
    damage(bad)
    check = run_cli("api.py", "--artifact", str(bad), "--check", timeout=60)
    assert check.returncode == 1
    assert check.stderr.strip().startswith("api.py: cannot start: ")
    assert len(check.stderr.strip().splitlines()) == 1, check.stderr
    assert says in check.stderr
    train = run_cli("train.py", "--csv-dir", str(DATA), "--out", str(tmp_path / "out"), "--baseline-artifact", str(bad))
    assert train.returncode != 0
    assert "Traceback" not in train.stderr
    last = train.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: --baseline-artifact: refused: ")
    assert says in last
    assert ".bin" in last
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()


def test_a_pair_read_from_one_artifact_is_written_into_another_unchanged(artifact_dir: Path, tmp_path: Path) -> None:
    """grid_of gives back what write_artifact took: carried into another artifact, its files are the same bytes."""
    source = read_artifact(artifact_dir)
    write_artifact(
        tmp_path / "next", _records(artifact_dir), {slug: grid_of(fc) for slug, fc in source.forecasts.items()}
    )
    before, after = _manifest(artifact_dir), _manifest(tmp_path / "next")
    assert after["grids"] == before["grids"]
    grids = [name for name in before["files"] if name.endswith(".bin")]
    assert {n: after["files"][n] for n in grids} == {n: before["files"][n] for n in grids}
    carried = read_artifact(tmp_path / "next").forecasts["ETH-USD"]
    assert list(carried.actual) == list(source.forecasts["ETH-USD"].actual)
    assert carried.end == source.forecasts["ETH-USD"].end


def test_a_pairs_grid_is_plain_data_that_crosses_processes() -> None:
    """A `PairGrid` crosses process boundaries (a fit on a Dask worker): reduced and rebuilt the way pickle does
    it (`copy.deepcopy` goes through the same `__reduce_ex__`), it comes back equal, and it holds no view of
    the mapped files it was read from (a memoryview cannot be reduced)."""
    import copy

    grid = grid_of(read_artifact(GOLDEN).forecasts["BTC-USD"])
    assert copy.deepcopy(grid) == grid
    assert grid.served is not None
    columns = [grid.yhat, grid.actual, grid.served.sigma, *grid.served.quantiles]
    assert all(type(column) is tuple for column in columns)


def test_grids_are_float64_where_float32_would_change_a_published_price() -> None:
    """The golden grids' 8-digit prices need float64; the answers served from them are the recorded ones."""
    m = json.loads((GOLDEN / MANIFEST_NAME).read_text())
    dtypes = {spec["dtype"] for grid in m["grids"].values() for spec in grid["files"].values()}
    assert dtypes == {"<f8"}
    low = read_artifact(GOLDEN).forecasts["BTC-USD"].quantiles[0][0]
    assert array("d", array("f", [low]))[0] != low  # what float32 would have served instead


def test_a_grid_that_float32_holds_exactly_is_stored_as_float32(artifact_dir: Path, tmp_path: Path) -> None:
    """Prophet's series are float32 (served to its 7 digits); the served file is float32 only where every one
    of its numbers survives it (whole prices, a volatility of a power of two), else float64: read back the same."""
    grid = _grid(artifact_dir)
    assert grid.served is not None
    sigma = grid.served.sigma
    write_artifact(tmp_path / "wide", _records(artifact_dir), {"BTC-USD": grid})
    files = _manifest(tmp_path / "wide")["grids"]["BTC-USD"]["files"]
    assert (files["series"]["dtype"], files["served"]["dtype"]) == ("<f4", "<f8")
    assert _gen_file(tmp_path / "wide", "BTC-USD.series.bin").stat().st_size == 4 * files["series"]["length"]
    # Whole numbers up to 2**24 and a volatility of 2**-6, as a float32 holds them.
    grid = replace(
        grid,
        actual=tuple(None if v is None else min(float(round(v)), 2.0**24) for v in grid.actual),
        served=replace(grid.served, sigma=(2.0**-6,) * len(sigma)),
    )
    write_artifact(tmp_path / "out", _records(artifact_dir), {"BTC-USD": grid})
    files = _manifest(tmp_path / "out")["grids"]["BTC-USD"]["files"]
    assert (files["series"]["dtype"], files["served"]["dtype"]) == ("<f4", "<f4")
    assert _gen_file(tmp_path / "out", "BTC-USD.served.bin").stat().st_size == 4 * files["served"]["length"]
    back = grid_of(read_artifact(tmp_path / "out").forecasts["BTC-USD"])
    # The served quantiles follow the closes they are laid at: only the stored numbers come back as given,
    # Prophet's to 7 significant digits.
    for key in ("yhat", "yhat_lower", "yhat_upper"):
        assert getattr(back, key) == tuple(float(f"{v:.7g}") for v in getattr(grid, key))
    assert back.served is not None
    unserved = {"yhat": (), "yhat_lower": (), "yhat_upper": ()}
    assert replace(back, **unserved, served=replace(back.served, quantiles=())) == replace(
        grid, **unserved, served=replace(grid.served, quantiles=())
    )


def test_prophets_series_are_served_to_float32s_seven_digits(tmp_path: Path) -> None:
    """Prophet's own forecast is stored as float32 and read as the 7 significant digits it holds (not the
    float64 it widens to, 81928.8671875 for 81928.87): within half a unit of the 7th digit of the fitted
    values (the golden artifact's, of schema 5, stored to 10 digits), and the file is those float32s."""
    from tests.helpers import GOLDEN

    golden = read_artifact(GOLDEN)
    slug = "BTC-USD"
    write_artifact(tmp_path / "out", _records(GOLDEN), {slug: grid_of(golden.forecasts[slug])})
    art = read_artifact(tmp_path / "out")
    fc, stored = art.forecasts[slug], array("f", (art.generation_dir / f"{slug}.series.bin").read_bytes())
    served_all = []
    for key in ("yhat", "yhat_lower", "yhat_upper"):
        fitted, served = list(getattr(golden.forecasts[slug], key)), list(getattr(fc, key))
        assert served == [float(f"{v:.7g}") for v in fitted]
        assert all(abs(s - f) <= 0.5e-6 * abs(f) for s, f in zip(served, fitted, strict=True))
        assert served != fitted
        served_all += served
    assert stored == array("f", served_all)


def test_prophets_forecast_between_grid_points_keeps_its_seven_digits(artifact_dir: Path) -> None:
    """Interpolated between two grid points, Prophet's own forecast is rounded to the 7 digits its grid
    holds (the served forecast's to the 10 of its own rule), and lies between its neighbours."""
    from cryptopredict.serving import lookup

    fc = read_artifact(artifact_dir).forecasts["BTC-USD"]
    assert fc.prophet_digits == 7
    i = fc.history_points + 3
    when = fc.start + i * fc.step + fc.step / 3
    p = lookup.at(fc, when, model="prophet")
    for value, column in zip(
        (p.prediction, p.prediction_low, p.prediction_high), (fc.yhat, fc.yhat_lower, fc.yhat_upper), strict=True
    ):
        assert value == float(f"{value:.7g}")
        assert min(column[i], column[i + 1]) <= value <= max(column[i], column[i + 1])
    assert read_artifact(GOLDEN).forecasts["BTC-USD"].prophet_digits == 10  # schema 5: float64, as stored


def test_the_served_quantiles_are_stored_as_their_parameters(artifact_dir: Path) -> None:
    """A pair's served file holds the close and the volatility at each bar (and Prophet's changes only where
    a weight reads them), not 23 quantiles at every point; read back, they give the quantiles training published."""
    m = _manifest(artifact_dir)
    art = read_artifact(artifact_dir)
    for slug, grid in m["grids"].items():
        served, n = grid["served"], grid["history_points"]
        extra = (n if served["history_change"] else 0) + (grid["forecast_points"] if served["future_change"] else 0)
        assert grid["files"]["served"]["length"] == n + n + extra  # the closes, the volatility, the changes
        fc = art.forecasts[slug]
        assert len(fc.quantiles) == 23
        assert all(len(column) == grid["points"] for column in fc.quantiles)


def test_the_manifest_reads_back_as_the_records_it_was_written_from(artifact_dir: Path) -> None:
    """Every section of a trained manifest is a record whose JSON form is the manifest itself, digest aside."""
    from cryptopredict.artifact import to_json

    doc = _manifest(artifact_dir)
    assert doc["schema_version"] == 6
    assert to_json(read_artifact(artifact_dir).manifest) == {k: v for k, v in doc.items() if k != "digest"}


def test_a_manifest_laid_out_again_still_loads(artifact_dir: Path, tmp_path: Path) -> None:
    """The digest covers the manifest's content, not its layout: keys sorted and unindented, it still loads."""
    art = _copy(artifact_dir, tmp_path / "art")
    (art / MANIFEST_NAME).write_text(json.dumps(_manifest(art), sort_keys=True))
    assert read_artifact(art).manifest == read_artifact(artifact_dir).manifest


def test_an_artifact_of_schema_5_is_read_as_it_was_written(artifact_dir: Path, tmp_path: Path) -> None:
    """Schema 5 laid the closes after Prophet's series (float64) and not in the served file. Such an artifact
    (production's, the first retrain after an upgrade) is still read, every answer as before: the lineage
    and its track record go on, where an older schema starts a new one."""
    from cryptopredict.training import lineage
    from tests.helpers import as_schema_5

    old = _copy(artifact_dir, tmp_path / "art")
    as_schema_5(old)
    assert _manifest(old)["schema_version"] == 5
    now, before = read_artifact(artifact_dir), read_artifact(old)
    assert before.manifest.schema_version == 5
    for slug, fc in now.forecasts.items():
        was = before.forecasts[slug]
        assert list(was.actual) == list(fc.actual)
        assert [list(c) for c in was.quantiles] == [list(c) for c in fc.quantiles]
        # Float64 there: the values as stored (here the float32s widened), not rounded to 7 digits.
        assert list(was.yhat) == [float(v) for v in array("f", fc.yhat)]
    assert before.ledger is not None
    assert before.ledger == now.ledger
    lines: list[str] = []
    assert lineage.load_production(str(old), lines.append) is not None
    assert "track record of" in lines[-1]


def _served_cli(src: str, dst: str) -> subprocess.CompletedProcess[str]:
    """`python -m cryptopredict.artifact served SRC DST`, as the Dockerfile's train stage runs it."""
    return subprocess.run(
        [sys.executable, "-m", "cryptopredict.artifact", "served", src, dst],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_apis_copy_leaves_out_the_files_kept_for_the_record(artifact_dir: Path, tmp_path: Path) -> None:
    """`python -m cryptopredict.artifact served` copies the manifest byte for byte and every file but the
    fitted models, backtest charts and report, and the copy is read with every answer the same; a record
    file present but tampered with is still refused; a copy never lands in a folder that holds something."""
    art = read_artifact(artifact_dir)
    record = art.manifest.record_files
    assert {n for n in record if n.endswith(".prophet.json")} == {f"{s}.prophet.json" for s in art.forecasts}
    assert art.manifest.report in record
    assert art.absent_record_files == frozenset()
    proc = _served_cli(str(artifact_dir), str(tmp_path / "served"))
    assert proc.returncode == 0, proc.stderr
    assert f"left out {len(record)} kept for the record" in proc.stdout
    copy = read_artifact(tmp_path / "served")
    assert (tmp_path / "served" / MANIFEST_NAME).read_bytes() == (artifact_dir / MANIFEST_NAME).read_bytes()
    assert sorted(p.name for p in copy.generation_dir.iterdir()) == sorted(set(art.manifest.files) - record)
    assert copy.absent_record_files == record
    assert copy.charts
    assert copy.charts == art.charts
    for slug, fc in art.forecasts.items():
        assert [list(c) for c in copy.forecasts[slug].quantiles] == [list(c) for c in fc.quantiles]
    left_out = sum((art.generation_dir / n).stat().st_size for n in record)
    held = sum(p.stat().st_size for p in art.generation_dir.iterdir())
    assert sum(p.stat().st_size for p in copy.generation_dir.iterdir()) == held - left_out

    again = _served_cli(str(artifact_dir), str(tmp_path / "served"))
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'served'} is not empty: the API's copy goes in a new or empty folder"
    ]
    bad = _copy(artifact_dir, tmp_path / "bad")
    model = next(n for n in record if n.endswith(".prophet.json"))
    (bad / art.manifest.generation / model).write_text("{}")
    refused = _served_cli(str(bad), str(tmp_path / "from-bad"))
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1
    assert f"checksum mismatch for {bad / art.manifest.generation / model}" in refused.stderr
    assert not (tmp_path / "from-bad").exists()
