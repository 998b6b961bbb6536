"""The forecast artifact: the one contract between training and serving (standard library only).

An artifact is a directory:

    artifacts/
      manifest.json                 the commit point: schema, model version, checksums, metadata
      gen-20261122T085400Z-1a2b3c4d/
        BTC-USD.json                the forecast grid: yhat / lower / upper / actual close
        BTC-USD.prophet.json        the fitted model (prophet.serialize.model_to_json), for the record
        ...

A run writes a new generation directory, then replaces `manifest.json` atomically (temporary file,
fsync, rename). Until that rename the previous manifest, and the generation it names, stay intact,
so a failed run never leaves a half artifact and a server that starts meanwhile reads the old one.
Every file of the generation is listed in the manifest with its SHA-256, checked on load.
Plain JSON, never pickle: reading an artifact runs no code and needs no heavy library.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import itertools
import json
import math
import os
import re
import secrets
import shutil
import tempfile
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptopredict.alerts.state import Alerts, parse_alerts
from cryptopredict.errors import ArtifactError
from cryptopredict.ledger import Ledger, parse_ledger
from cryptopredict.timeframes import format_utc, parse_utc

__all__ = [
    "MANIFEST_NAME",
    "SCHEMA_VERSION",
    "Artifact",
    "BacktestRecord",
    "GateCheck",
    "GateRecord",
    "HorizonScore",
    "MethodScore",
    "SymbolForecast",
    "carried_pair",
    "disordered_points",
    "format_utc",
    "new_generation",
    "parse_backtest",
    "parse_gate",
    "parse_utc",
    "read_artifact",
    "write_artifact",
]

# 2: each grid also holds the served forecast's quantiles ("served"), beside Prophet's own series.
# 3: a backtest horizon's "served" is the forecast as served (the final weight); the nested weighting
#    procedure that was "served" in 2 is "nested", with its weighted cutoffs; "weight_basis" says why.
SCHEMA_VERSION = 3
MANIFEST_NAME = "manifest.json"
_GEN_PREFIX = "gen-"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")
_SERIES_KEYS = ("yhat", "yhat_lower", "yhat_upper")


@dataclass(frozen=True, slots=True)
class MethodScore:
    """One forecasting method's figures over a horizon's backtest cutoffs."""

    mape: float
    coverage: float | None  # share of actual closes inside its 80% interval; None without one
    n: int


@dataclass(frozen=True, slots=True)
class HorizonScore:
    """One backtested horizon: the served forecast, the nested procedure that set its weight, naive."""

    steps: int
    independent: int  # cutoffs whose outcome windows do not overlap
    weight: float  # the share of Prophet's predicted change served
    summary: str
    served: MethodScore
    nested: MethodScore
    naive: MethodScore
    weighted_cutoffs: int | None  # cutoffs where the nested procedure used a weight; None in schema 2
    # Served MAPE over naive's, as the backtest computed it from unrounded errors (None when naive
    # never erred): the champion's measure.
    skill: float | None


@dataclass(frozen=True, slots=True)
class BacktestRecord:
    """A pair's backtest as the manifest holds it, checked field by field."""

    cutoffs: tuple[str, ...]
    metrics: Mapping[str, HorizonScore]  # by horizon name, shortest first


@dataclass(frozen=True, slots=True)
class GateCheck:
    """One rule of the promotion gate applied to one symbol: did it pass, and the figures behind the verdict."""

    symbol: str
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class GateRecord:
    """The promotion gate's verdict as the manifest holds it."""

    passed: bool
    checks: tuple[GateCheck, ...]


@dataclass(frozen=True, slots=True)
class SymbolForecast:
    """One symbol's precomputed grid: history points first, then forecast points, `step` apart."""

    symbol: str  # 'BTC/USD'
    slug: str  # 'BTC-USD'
    timeframe: str
    step: timedelta
    start: datetime  # the first grid point (the first bar), aware UTC
    history_points: int
    # Prophet's own forecast, as fitted (served with model=prophet).
    yhat: tuple[float, ...]
    yhat_lower: tuple[float, ...]
    yhat_upper: tuple[float, ...]
    actual: tuple[float | None, ...]  # close of each history bar; None where a bar was missing
    meta: Mapping[str, Any]  # the manifest's entry for this symbol (rows, data window, metrics...)
    backtest: BacktestRecord | None = None  # meta["backtest"], parsed; None when not backtested
    # The served forecast: one column of prices per quantile level, ascending, at every grid point.
    levels: tuple[float, ...] = ()
    quantiles: tuple[array, ...] = ()

    @property
    def points(self) -> int:
        return len(self.yhat)

    def level_index(self, level: float) -> int:
        """Index of a stored level; KeyError when it is not stored."""
        i = bisect.bisect_left(self.levels, level)
        if i == len(self.levels) or abs(self.levels[i] - level) > 1e-12:
            raise KeyError(level)
        return i

    @property
    def history_end(self) -> datetime:
        return self.start + (self.history_points - 1) * self.step

    @property
    def end(self) -> datetime:
        return self.start + (self.points - 1) * self.step


@dataclass(frozen=True, slots=True)
class Artifact:
    """A verified artifact: its manifest and each symbol's forecast grid, keyed by slug."""

    path: Path
    manifest: Mapping[str, Any]
    forecasts: Mapping[str, SymbolForecast]
    # The track record carried from artifact to artifact (cryptopredict.ledger); None before it
    # existed (an artifact whose manifest names no ledger).
    ledger: Ledger | None = None
    # The charts' bytes by file name, verified against the manifest with everything else on load and
    # kept (a few hundred kB a pair), so a server never reads or hashes them again.
    charts: Mapping[str, bytes] = field(default_factory=dict)
    gate: GateRecord | None = None  # manifest["gate"], parsed; None in an artifact written without one
    # The watch rules' states after this run (cryptopredict.alerts); None when the manifest names none.
    alerts: Alerts | None = None

    @property
    def model_version(self) -> str:
        return str(self.manifest["model_version"])

    @property
    def generation_dir(self) -> Path:
        return self.path / self.manifest["generation"]

    def file_path(self, name: str) -> Path:
        """Path of a file the manifest lists (its checksum was verified on load)."""
        if name not in self.manifest["files"]:
            msg = f"{name!r} is not part of this artifact"
            raise KeyError(msg)
        return self.generation_dir / name


# --------------------------------------------------------------------------- writing (train side)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _dump(obj: object) -> bytes:
    # allow_nan=False: a NaN in an artifact is a bug upstream, never something to ship.
    return json.dumps(obj, allow_nan=False, separators=(",", ":"), sort_keys=False).encode()


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def new_generation() -> str:
    """A fresh generation name: the write time and a random part, unique to the run."""
    return f"{_GEN_PREFIX}{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"


def write_artifact(
    out_dir: str | os.PathLike[str],
    manifest: Mapping[str, Any],
    symbol_payloads: Mapping[str, Mapping[str, Any]],
    extra_files: Mapping[str, bytes] | None = None,
    generation: str | None = None,
) -> Path:
    """Write a new generation into `out_dir` and commit it by replacing the manifest atomically.

    `manifest` holds the run's metadata (model_version, trained_at, ...; its "symbols" entry maps
    each slug to that symbol's metadata). `symbol_payloads` maps slug to the grid payload written
    as `<slug>.json`. `extra_files` are other files of the generation (fitted models, charts,
    reports), by file name. `generation` is the new generation's name (`new_generation()`, when
    files inside name it); by default a fresh one. Returns the path of the manifest.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    generation = generation or new_generation()
    if not generation.startswith(_GEN_PREFIX) or not _SAFE_NAME.match(generation) or (out / generation).exists():
        msg = f"invalid or existing generation name {generation!r}"
        raise ValueError(msg)
    gen_dir = out / generation
    gen_dir.mkdir()
    try:
        files: dict[str, str] = {}
        for name, data in _generation_files(symbol_payloads, extra_files or {}).items():
            _write_file(gen_dir / name, data)
            files[name] = _sha256(data)
        _fsync_dir(gen_dir)
        symbols_meta = {
            slug: {**dict(manifest.get("symbols", {}).get(slug, {})), "file": f"{slug}.json"}
            for slug in symbol_payloads
        }
        full = {
            **{k: v for k, v in manifest.items() if k != "symbols"},
            "schema_version": SCHEMA_VERSION,
            "generation": generation,
            "symbols": symbols_meta,
            "files": files,
        }
        data = json.dumps(full, allow_nan=False, indent=2).encode() + b"\n"
        fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".tmp", dir=out)
        try:
            with os.fdopen(fd, "wb") as fh:
                os.fchmod(fh.fileno(), 0o644)  # mkstemp makes 0600; a non-root server must read it
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, out / MANIFEST_NAME)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(out)
    except BaseException:
        shutil.rmtree(gen_dir, ignore_errors=True)
        raise
    _prune_generations(out, keep=generation)
    return out / MANIFEST_NAME


def _generation_files(
    symbol_payloads: Mapping[str, Mapping[str, Any]], extra_files: Mapping[str, bytes]
) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for slug, payload in symbol_payloads.items():
        _check_payload(slug, payload)
        files[f"{slug}.json"] = _dump(payload)
    for name, data in extra_files.items():
        if not _SAFE_NAME.match(name) or name in files or name == MANIFEST_NAME:
            msg = f"invalid or clashing artifact file name {name!r}"
            raise ValueError(msg)
        files[name] = bytes(data)
    return files


def _check_payload(slug: str, payload: Mapping[str, Any]) -> None:
    """Refuse to write a grid the reader would refuse: same rules, caught before shipping."""
    _parse_symbol(slug, payload, {"symbol": payload.get("symbol")})


def _prune_generations(out: Path, keep: str) -> None:
    """Remove older generations, but keep the one just replaced: a server may be reading it."""
    gens = sorted(p for p in out.iterdir() if p.is_dir() and p.name.startswith(_GEN_PREFIX))
    older = [p for p in gens if p.name != keep]
    for p in older[:-1]:
        shutil.rmtree(p, ignore_errors=True)


# --------------------------------------------------------------------------- reading (serve side)


def carried_pair(artifact: Artifact, slug: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """One pair of a verified artifact as a later run writes it again: its grid payload (an entry of
    `write_artifact`'s `symbol_payloads`) and its other files (fitted model, charts) by name, each
    checked against the manifest's checksum once more as it is read."""
    meta = artifact.manifest["symbols"][slug]
    names = [meta["file"], meta.get("model_file"), *(meta.get("charts") or {}).values(), meta.get("backtest_chart")]
    gen_dir = artifact.generation_dir
    blobs = {name: _read_verified(gen_dir, name, artifact.manifest["files"].get(name)) for name in names if name}
    return _loads(blobs.pop(meta["file"]), gen_dir / meta["file"]), blobs


def read_artifact(path: str | os.PathLike[str]) -> Artifact:
    """Load and verify an artifact directory; raise ArtifactError with a one-line reason."""
    root = Path(path)
    manifest_path = root / MANIFEST_NAME
    try:
        raw = manifest_path.read_bytes()
    except FileNotFoundError:
        msg = f"no artifact at {root}: {MANIFEST_NAME} not found (run train.py first)"
        raise ArtifactError(msg) from None
    except OSError as exc:
        msg = f"cannot read {manifest_path}: {exc.strerror}"
        raise ArtifactError(msg) from None
    manifest = _upgrade(_loads(raw, manifest_path))
    generation = manifest.get("generation")
    files = manifest.get("files")
    if not isinstance(generation, str) or not generation.startswith(_GEN_PREFIX) or "/" in generation:
        msg = f"corrupt artifact {manifest_path}: bad 'generation' entry"
        raise ArtifactError(msg)
    if not isinstance(files, dict) or not isinstance(manifest.get("symbols"), dict):
        msg = f"corrupt artifact {manifest_path}: 'files' and 'symbols' must be objects"
        raise ArtifactError(msg)
    for key in ("model_version", "trained_at", "timeframe"):
        if not isinstance(manifest.get(key), str):
            msg = f"corrupt artifact {manifest_path}: missing {key!r}"
            raise ArtifactError(msg)
    blobs = {name: _read_verified(root / generation, name, digest) for name, digest in files.items()}
    forecasts: dict[str, SymbolForecast] = {}
    for slug, meta in manifest["symbols"].items():
        name = meta.get("file") if isinstance(meta, dict) else None
        if name not in blobs:
            msg = f"corrupt artifact {manifest_path}: no checksummed file for symbol {slug!r}"
            raise ArtifactError(msg)
        payload = _loads(blobs[name], root / generation / name)
        try:
            forecasts[slug] = _parse_symbol(slug, payload, meta)
        except ValueError as exc:
            msg = f"corrupt artifact {root / generation / name}: {exc}"
            raise ArtifactError(msg) from None
        try:
            backtest = parse_backtest(meta.get("backtest"))
        except ValueError as exc:
            msg = f"corrupt artifact {manifest_path}: {slug} backtest: {exc}"
            raise ArtifactError(msg) from None
        forecasts[slug] = replace(forecasts[slug], backtest=backtest)
    try:
        gate = parse_gate(manifest.get("gate"))
    except ValueError as exc:
        msg = f"corrupt artifact {manifest_path}: gate: {exc}"
        raise ArtifactError(msg) from None
    if not forecasts:
        msg = f"artifact {root} serves no symbol"
        raise ArtifactError(msg)
    return Artifact(
        path=root,
        manifest=manifest,
        forecasts=forecasts,
        ledger=_named_file(root, manifest, blobs, "ledger", ("ledger", "track record"), parse_ledger),
        charts={name: data for name, data in blobs.items() if name.endswith(".png")},
        gate=gate,
        alerts=_named_file(
            root,
            manifest,
            blobs,
            "alerts",
            ("alerts file", "alert states"),
            lambda obj: parse_alerts(obj, str(manifest["model_version"])),
        ),
    )


def _named_file(
    root: Path,
    manifest: Mapping[str, Any],
    blobs: Mapping[str, bytes],
    key: str,
    labels: tuple[str, str],
    parse: Callable[[Any], Any],
) -> Any:
    """The file the manifest names under `key` (None when it names none), checksummed like every file
    and validated by `parse` (ValueError: corrupt); `labels` name it in the two refusals."""
    name = manifest.get(key)
    if name is None:
        return None
    where = root / manifest["generation"] / str(name)
    if name not in blobs:
        msg = f"corrupt artifact {root / MANIFEST_NAME}: the {labels[0]} {name!r} is not a checksummed file"
        raise ArtifactError(msg)
    try:
        return parse(_loads(blobs[name], where))
    except ValueError as exc:
        msg = f"corrupt {labels[1]} {where}: {exc}"
        raise ArtifactError(msg) from None


def _loads(raw: bytes, where: Path) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"corrupt artifact {where}: not valid JSON ({exc})"
        raise ArtifactError(msg) from None


def _field(obj: Any, path: str, kind: type, *, optional: bool = False) -> Any:
    """`obj[a][b]...` for path "a.b...", checked to be a `kind` (float: any finite number; a bool is neither
    int nor float); ValueError naming the path."""
    value = obj
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            msg = f"{path} is missing"
            raise ValueError(msg)
        value = value[key]
    if value is None and optional:
        return None
    numeric = kind is float
    if isinstance(value, bool) and kind is not bool:
        ok = False
    elif numeric:
        ok = isinstance(value, (int, float)) and math.isfinite(value)
    else:
        ok = isinstance(value, kind)
    if not ok:
        msg = f"{path} is {value!r}, not {'a number' if numeric else 'a ' + kind.__name__}"
        raise ValueError(msg)
    return float(value) if numeric else value


def _method(entry: Any, name: str) -> MethodScore:
    return MethodScore(
        mape=_field(entry, f"{name}.mape", float),
        coverage=_field(entry, f"{name}.coverage", float, optional=True),
        n=_field(entry, f"{name}.n", int),
    )


def parse_backtest(raw: Any) -> BacktestRecord | None:
    """A manifest's backtest section as a typed record (None for none); ValueError naming the first bad field."""
    if raw is None:
        return None
    cutoffs = _field(raw, "cutoffs", list)
    if not all(isinstance(c, str) for c in cutoffs):
        msg = "cutoffs must be timestamps"
        raise ValueError(msg)
    metrics = _field(raw, "metrics", dict)
    scores = {}
    for name, entry in metrics.items():
        try:
            scores[name] = HorizonScore(
                steps=_field(entry, "steps", int),
                independent=_field(entry, "independent", int),
                weight=_field(entry, "weight", float),
                summary=_field(entry, "summary", str),
                served=_method(entry, "served"),
                nested=_method(entry, "nested"),
                naive=_method(entry, "naive"),
                weighted_cutoffs=_field(entry, "nested.weighted_cutoffs", int, optional=True),
                skill=_field(entry, "skill.mape_ratio", float, optional=True),
            )
        except ValueError as exc:
            msg = f"metrics.{name}.{exc}"
            raise ValueError(msg) from None
    return BacktestRecord(tuple(cutoffs), scores)


def parse_gate(raw: Any) -> GateRecord | None:
    """A manifest's gate section as a typed record (None for none); ValueError naming the first bad field."""
    if raw is None:
        return None
    passed = _field(raw, "passed", bool)
    checks = []
    for k, check in enumerate(_field(raw, "checks", list)):
        try:
            checks.append(GateCheck(*(_field(check, key, str) for key in ("symbol", "name")),
                                    _field(check, "passed", bool), _field(check, "detail", str)))  # fmt: skip
        except ValueError as exc:
            msg = f"checks[{k}].{exc}"
            raise ValueError(msg) from None
    return GateRecord(passed, tuple(checks))


def _upgrade_2(manifest: dict[str, Any]) -> dict[str, Any]:
    """Schema 2 -> 3: 2's "served" backtest figures were the nested procedure's; they stand for both."""
    for meta in manifest.get("symbols", {}).values() if isinstance(manifest.get("symbols"), dict) else ():
        bt = meta.get("backtest") if isinstance(meta, dict) else None
        metrics = bt.get("metrics") if isinstance(bt, dict) else None
        for entry in metrics.values() if isinstance(metrics, dict) else ():
            if isinstance(entry, dict) and "nested" not in entry and isinstance(entry.get("served"), dict):
                entry["nested"] = {**entry["served"], "weighted_cutoffs": None}
    return {**manifest, "schema_version": SCHEMA_VERSION}


def _upgrade(manifest: Any) -> dict[str, Any]:
    """Bring an older manifest to the current schema; the one place format history lives."""
    if not isinstance(manifest, dict):
        msg = "corrupt artifact: the manifest is not a JSON object"
        raise ArtifactError(msg)
    version = manifest.get("schema_version")
    if version == SCHEMA_VERSION:
        return manifest
    if version == 2:
        return _upgrade_2(manifest)
    if version == 1:
        # Schema 1 grids hold only Prophet's own forecast: there is no served forecast to upgrade
        # to without the closes and the backtest, so such an artifact must be trained again.
        msg = (
            f"artifact schema version 1 predates the served forecast (this server reads version {SCHEMA_VERSION}): "
            "train it again"
        )
        raise ArtifactError(msg)
    msg = f"unknown artifact schema version {version!r} (this server reads version {SCHEMA_VERSION})"
    raise ArtifactError(msg)


def _read_verified(gen_dir: Path, name: str, digest: object) -> bytes:
    if not isinstance(name, str) or not _SAFE_NAME.match(name):
        msg = f"corrupt artifact: unsafe file name {name!r} in the manifest"
        raise ArtifactError(msg)
    try:
        data = (gen_dir / name).read_bytes()
    except OSError as exc:
        msg = f"incomplete artifact: cannot read {gen_dir / name} ({exc.strerror})"
        raise ArtifactError(msg) from None
    actual = _sha256(data)
    if actual != digest:
        msg = (
            f"checksum mismatch for {gen_dir / name}: the manifest says {digest}, "
            f"the file is {actual} (tampered or corrupt)"
        )
        raise ArtifactError(msg)
    return data


def _parse_symbol(slug: str, payload: Any, meta: Mapping[str, Any]) -> SymbolForecast:
    if not isinstance(payload, dict):
        msg = f"{slug}: payload is not a JSON object"
        raise ValueError(msg)
    try:
        step = timedelta(seconds=int(payload["step_seconds"]))
        start = parse_utc(payload["start"])
        history_points = int(payload["history_points"])
        series = {k: tuple(float(x) for x in payload[k]) for k in _SERIES_KEYS}
        actual = tuple(None if x is None else float(x) for x in payload["actual"])
        symbol, timeframe = str(payload["symbol"]), str(payload["timeframe"])
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"{slug}: missing or malformed field ({exc!r})"
        raise ValueError(msg) from None
    n = len(series["yhat"])
    if step <= timedelta(0) or not 0 < history_points <= n:
        msg = f"{slug}: inconsistent step or history_points"
        raise ValueError(msg)
    if any(len(v) != n for v in series.values()) or len(actual) != history_points:
        msg = f"{slug}: series lengths differ"
        raise ValueError(msg)
    if not all(math.isfinite(x) for v in series.values() for x in v):
        msg = f"{slug}: non-finite values in the forecast"
        raise ValueError(msg)
    levels, quantiles = _parse_served(slug, payload.get("served"), n)
    return SymbolForecast(
        symbol=symbol,
        slug=slug,
        timeframe=timeframe,
        step=step,
        start=start,
        history_points=history_points,
        actual=actual,
        meta=meta,
        levels=levels,
        quantiles=quantiles,
        **series,
    )


def _parse_served(slug: str, served: Any, n: int) -> tuple[tuple[float, ...], tuple[array, ...]]:
    """The served quantile grid: levels ascending in (0, 1) with 0.1, 0.5 and 0.9 among them, one
    column of n finite positive prices per level, never decreasing across levels at any point."""
    try:
        levels = tuple(float(x) for x in served["levels"])
        # array('d'): 8 bytes a number, against 24 for a float in a tuple (hourly grids are large).
        columns = tuple(array("d", (float(x) for x in col)) for col in served["quantiles"])
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"{slug}: missing or malformed served forecast ({exc!r})"
        raise ValueError(msg) from None
    if (
        not levels
        or list(levels) != sorted(set(levels))
        or not levels[0] > 0
        or not levels[-1] < 1
        or not {0.1, 0.5, 0.9} <= set(levels)
    ):
        msg = f"{slug}: served levels must ascend inside (0, 1) and include 0.1, 0.5 and 0.9"
        raise ValueError(msg)
    if len(columns) != len(levels) or any(len(c) != n for c in columns):
        msg = f"{slug}: served quantiles do not match the levels and the grid"
        raise ValueError(msg)
    bad = disordered_points(columns)
    if bad:
        msg = f"{slug}: served quantiles at point {bad[0]} are not positive, finite and ascending"
        raise ValueError(msg)
    return levels, columns


def disordered_points(columns: Sequence[Sequence[float]]) -> list[int]:
    """Grid points whose quantiles (one column per level, levels ascending) are not all finite, positive
    and non-decreasing: the one rule the reader and the promotion gate apply."""
    return [
        i
        for i, row in enumerate(zip(*columns, strict=True))
        if not all(math.isfinite(v) and v > 0 for v in row) or any(a > b for a, b in itertools.pairwise(row))
    ]
