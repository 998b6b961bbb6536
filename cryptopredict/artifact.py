"""The forecast artifact: the one contract between training and serving (standard library only).

An artifact is a directory:

    artifacts/
      manifest.json                 the commit point: schema, model version, checksums, metadata
      gen-20261122T085400Z-1a2b3c4d/
        BTC-USD.series.bin          Prophet's yhat / lower / upper, then the actual closes (NaN: no bar)
        BTC-USD.served.bin          the served forecast's quantile grid, one column per level
        BTC-USD.prophet.json        the fitted model (prophet.serialize.model_to_json), for the record
        ...

A run writes a new generation directory, then replaces `manifest.json` atomically (temporary file,
fsync, rename). Until that rename the previous manifest, and the generation it names, stay intact,
so a failed run never leaves a half artifact and a server that starts meanwhile reads the old one.
Every file of the generation is listed in the manifest with its SHA-256, checked on load.
Plain data, never pickle: reading an artifact runs no code and needs no heavy library.

The grids are packed little-endian floats ("<f8", or "<f4" for a file whose every value a float32
holds exactly), each listed in the manifest's "grids" with its dtype and length (values), beside the
fields a person reads (symbol, start, step, levels, weights). The server maps them (mmap) instead of
parsing them: at start each is checked (size, SHA-256, the quantiles' order) and released again, and
a request reads the few pages it needs, so a grid costs memory only while it is read.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import itertools
import json
import math
import mmap
import operator
import os
import re
import secrets
import shutil
import sys
import tempfile
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
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
    "carried_age_days",
    "carried_pair",
    "disordered_points",
    "format_utc",
    "new_generation",
    "parse_backtest",
    "parse_gate",
    "parse_utc",
    "payload_of",
    "read_artifact",
    "write_artifact",
]

# 2: each grid also holds the served forecast's quantiles ("served"), beside Prophet's own series.
# 3: a backtest horizon's "served" is the forecast as served (the final weight); the nested weighting
#    procedure that was "served" in 2 is "nested", with its weighted cutoffs; "weight_basis" says why.
# 4: the grids are packed binary files ("grids" in the manifest) instead of one JSON file a symbol.
SCHEMA_VERSION = 4
MANIFEST_NAME = "manifest.json"
_GEN_PREFIX = "gen-"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")
_SERIES_KEYS = ("yhat", "yhat_lower", "yhat_upper")
# The two binary files of a symbol, by their part of the grid.
_PARTS = ("series", "served")
_DTYPES = {"<f8": "d", "<f4": "f"}


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


class Closes(Sequence[float | None]):
    """The actual closes of the history bars over a packed column, where NaN stands for a missing bar."""

    __slots__ = ("_column",)

    def __init__(self, column: Sequence[float]) -> None:
        self._column = column

    def __len__(self) -> int:
        return len(self._column)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [None if v != v else v for v in self._column[i]]
        v = self._column[i]
        return None if v != v else v  # NaN is the one value not equal to itself

    def __iter__(self) -> Iterator[float | None]:
        return (None if v != v else v for v in self._column)


@dataclass(frozen=True, slots=True)
class SymbolForecast:
    """One symbol's precomputed grid: history points first, then forecast points, `step` apart."""

    symbol: str  # 'BTC/USD'
    slug: str  # 'BTC-USD'
    timeframe: str
    step: timedelta
    start: datetime  # the first grid point (the first bar), aware UTC
    history_points: int
    # Prophet's own forecast, as fitted (served with model=prophet); views of the packed grid.
    yhat: Sequence[float]
    yhat_lower: Sequence[float]
    yhat_upper: Sequence[float]
    actual: Sequence[float | None]  # close of each history bar; None where a bar was missing
    meta: Mapping[str, Any]  # the manifest's entry for this symbol (rows, data window, metrics...)
    backtest: BacktestRecord | None = None  # meta["backtest"], parsed; None when not backtested
    # The served forecast: one column of prices per quantile level, ascending, at every grid point.
    levels: tuple[float, ...] = ()
    quantiles: tuple[Sequence[float], ...] = ()
    # The manifest's "grids" entry: the payload's fields other than its columns (payload_of's other half).
    header: Mapping[str, Any] = field(default_factory=dict)

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


def _sha256(data: bytes | mmap.mmap) -> str:
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
    each slug to that symbol's metadata). `symbol_payloads` maps slug to the grid payload (the
    pipeline's dict: "symbol", "start", "yhat", ..., "actual", "served"; `payload_of` gives it back
    from a read artifact), written as `<slug>.series.bin` and `<slug>.served.bin` with its other
    fields in the manifest's "grids". `extra_files` are other files of the generation (fitted models, charts,
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
        grids, generation_files = _generation_files(symbol_payloads, extra_files or {})
        for name, data in generation_files.items():
            _write_file(gen_dir / name, data)
            files[name] = _sha256(data)
        _fsync_dir(gen_dir)
        symbols_meta = {slug: dict(manifest.get("symbols", {}).get(slug, {})) for slug in symbol_payloads}
        full = {
            **{k: v for k, v in manifest.items() if k not in ("symbols", "grids")},
            "schema_version": SCHEMA_VERSION,
            "generation": generation,
            "symbols": symbols_meta,
            "grids": grids,
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
) -> tuple[dict[str, dict[str, Any]], dict[str, bytes]]:
    """The manifest's "grids" and the generation's files by name; a grid the reader would refuse is
    refused here, by the same checks, before anything ships."""
    grids: dict[str, dict[str, Any]] = {}
    files: dict[str, bytes] = {}
    for slug, payload in symbol_payloads.items():
        header, packed = _pack_payload(slug, payload)
        _forecast(slug, header, _columns(header, packed), {})
        grids[slug] = header
        files.update({header["files"][part]["file"]: data for part, data in packed.items()})
    for name, data in extra_files.items():
        if not _SAFE_NAME.match(name) or name in files or name == MANIFEST_NAME:
            msg = f"invalid or clashing artifact file name {name!r}"
            raise ValueError(msg)
        files[name] = bytes(data)
    return grids, files


def _pack(values: Sequence[float]) -> tuple[str, bytes]:
    """Values as packed little-endian floats: float32 when every one of them survives it exactly, else float64.

    Prices are stored to 8 significant digits and served as stored; a float32 holds about 7, so it
    is chosen only where it changes nothing (whole prices, for instance)."""
    wide = array("d", values)
    packed = wide
    with contextlib.suppress(OverflowError):
        narrow = array("f", wide)
        if array("d", narrow).tobytes() == wide.tobytes():
            packed = narrow
    if sys.byteorder == "big":
        packed.byteswap()
    return ("<f4" if packed.typecode == "f" else "<f8"), packed.tobytes()


def _unpacked(data: bytes | mmap.mmap, dtype: str) -> Sequence[float]:
    """A packed file's values, without copying them where the machine is little-endian."""
    if sys.byteorder == "little":
        return memoryview(data).cast(_DTYPES[dtype])
    values = array(_DTYPES[dtype], bytes(data))
    values.byteswap()
    return values


def _columns(header: Mapping[str, Any], packed: Mapping[str, bytes]) -> dict[str, Sequence[float]]:
    """Each part's packed bytes seen as floats, in the dtype its header names."""
    return {part: _unpacked(data, header["files"][part]["dtype"]) for part, data in packed.items()}


def _pack_payload(slug: str, payload: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A grid payload as its header (every field but the columns) and its two packed files by part."""
    try:
        served = payload["served"]
        columns = {
            "series": [
                *(x for k in _SERIES_KEYS for x in payload[k]),
                *(math.nan if x is None else x for x in payload["actual"]),
            ],
            "served": [x for column in served["quantiles"] for x in column],
        }
        header = {k: v for k, v in payload.items() if k not in (*_SERIES_KEYS, "actual", "served")}
        header["points"] = len(payload["yhat"])
        header["served"] = {k: v for k, v in served.items() if k != "quantiles"}
        header["files"] = {}
        packed = {}
        for part, values in columns.items():
            dtype, packed[part] = _pack(values)
            header["files"][part] = {"file": f"{slug}.{part}.bin", "dtype": dtype, "length": len(values)}
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"{slug}: missing or malformed field ({exc!r})"
        raise ValueError(msg) from None
    return header, packed


def payload_of(fc: SymbolForecast) -> dict[str, Any]:
    """The grid payload `write_artifact` takes, given back from a read forecast (the reader's inverse):
    a pair's grid is carried from one artifact into another without knowing the file format."""
    header = {k: v for k, v in fc.header.items() if k not in ("points", "files", "served")}
    return {
        **header,
        **{key: list(getattr(fc, key)) for key in _SERIES_KEYS},
        "actual": list(fc.actual),
        "served": {**fc.header.get("served", {}), "quantiles": [list(column) for column in fc.quantiles]},
    }


def _prune_generations(out: Path, keep: str) -> None:
    """Remove older generations, but keep the one just replaced: a server may be reading it."""
    gens = sorted(p for p in out.iterdir() if p.is_dir() and p.name.startswith(_GEN_PREFIX))
    older = [p for p in gens if p.name != keep]
    for p in older[:-1]:
        shutil.rmtree(p, ignore_errors=True)


# --------------------------------------------------------------------------- reading (serve side)


def carried_age_days(carried: Mapping[str, Any], trained_at: str) -> float:
    """How many days before a run (trained at `trained_at`) the forecast it carried was trained."""
    return (parse_utc(trained_at) - parse_utc(carried["trained_at"])).total_seconds() / 86400


def carried_pair(artifact: Artifact, slug: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """One pair of a verified artifact as a later run writes it again: its grid payload (`payload_of`,
    an entry of `write_artifact`'s `symbol_payloads`) and its other files (fitted model, charts) by
    name, each checked against the manifest's checksum once more as it is read."""
    meta = artifact.manifest["symbols"][slug]
    names = [meta.get("model_file"), *(meta.get("charts") or {}).values(), meta.get("backtest_chart")]
    gen_dir = artifact.generation_dir
    files = {name: _read_verified(gen_dir, name, artifact.manifest["files"].get(name)) for name in names if name}
    return payload_of(artifact.forecasts[slug]), files


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
    gen_dir = root / generation
    grids = manifest.get("grids")
    legacy = grids is None  # schema 2 and 3: one JSON file a symbol, read through the writer's packing
    if not legacy and not isinstance(grids, dict):
        msg = f"corrupt artifact {manifest_path}: 'grids' must be an object"
        raise ArtifactError(msg)
    packed = set() if legacy else {_grid_file(manifest_path, spec) for spec in _grid_specs(manifest_path, grids)}
    blobs = {name: _read_verified(gen_dir, name, digest) for name, digest in files.items() if name not in packed}
    forecasts: dict[str, SymbolForecast] = {}
    for slug, meta in manifest["symbols"].items():
        if not isinstance(meta, dict):
            msg = f"corrupt artifact {manifest_path}: the entry of symbol {slug!r} is not an object"
            raise ArtifactError(msg)
        if legacy:
            header, parts, where = _legacy_grid(manifest_path, gen_dir, slug, meta, blobs)
        else:
            if not isinstance(grids.get(slug), dict):
                msg = f"corrupt artifact {manifest_path}: no grid for symbol {slug!r}"
                raise ArtifactError(msg)
            header, where = grids[slug], gen_dir / f"{slug}.*.bin"
            parts = {part: _mapped(gen_dir, spec, files) for part, spec in _parts(manifest_path, slug, header)}
        try:
            forecasts[slug] = _forecast(slug, header, parts, meta)
        except ValueError as exc:
            msg = f"corrupt artifact {where}: {exc}"
            raise ArtifactError(msg) from None
        finally:
            for view in parts.values():
                _release(view)
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
    if version == 3:  # its grids are JSON files, read by _legacy_grid (a manifest without "grids")
        return {**manifest, "schema_version": SCHEMA_VERSION}
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
    _verify(gen_dir / name, data, digest)
    return data


def _verify(path: Path, data: bytes | mmap.mmap, digest: object) -> None:
    actual = _sha256(data)
    if actual != digest:
        msg = f"checksum mismatch for {path}: the manifest says {digest}, the file is {actual} (tampered or corrupt)"
        raise ArtifactError(msg)


def _grid_specs(manifest_path: Path, grids: Mapping[str, Any]) -> list[Any]:
    """Every binary file entry of the manifest's "grids"."""
    return [spec for slug, header in grids.items() for _, spec in _parts(manifest_path, slug, header)]


def _parts(manifest_path: Path, slug: str, header: Any) -> list[tuple[str, Any]]:
    """(part, file entry) of one symbol's grid header, both parts present."""
    files = header.get("files") if isinstance(header, dict) else None
    if not isinstance(files, dict) or set(files) != set(_PARTS):
        msg = f"corrupt artifact {manifest_path}: the grid of {slug!r} must list the files {', '.join(_PARTS)}"
        raise ArtifactError(msg)
    return [(part, files[part]) for part in _PARTS]


def _grid_file(manifest_path: Path, spec: Any) -> str:
    """A binary file entry's name, its dtype and length checked to be ones this code reads."""
    name = spec.get("file") if isinstance(spec, dict) else None
    length = spec.get("length") if isinstance(spec, dict) else None
    if (
        not isinstance(name, str)
        or spec.get("dtype") not in _DTYPES
        or not isinstance(length, int)
        or isinstance(length, bool)
        or length < 0
    ):
        msg = f"corrupt artifact {manifest_path}: bad grid file entry {spec!r}"
        raise ArtifactError(msg)
    return name


def _mapped(gen_dir: Path, spec: Mapping[str, Any], files: Mapping[str, Any]) -> Sequence[float]:
    """A binary grid file, mapped: its size checked against the manifest's length and dtype, its SHA-256
    against the manifest's, then seen as floats (read from disk only where a request looks)."""
    name, dtype, length = spec["file"], spec["dtype"], spec["length"]
    if name not in files:
        msg = f"corrupt artifact {gen_dir.parent / MANIFEST_NAME}: the grid file {name!r} is not checksummed"
        raise ArtifactError(msg)
    if not _SAFE_NAME.match(name):
        msg = f"corrupt artifact: unsafe file name {name!r} in the manifest"
        raise ArtifactError(msg)
    path = gen_dir / name
    expected = length * array(_DTYPES[dtype]).itemsize
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size != expected:
                msg = (
                    f"corrupt artifact {path}: {size} bytes, where the manifest's {length} values of {dtype} "
                    f"make {expected} (truncated, or a wrong length)"
                )
                raise ArtifactError(msg)
            # The map keeps its own duplicate of the descriptor: two open files a pair while serving.
            data: bytes | mmap.mmap = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    except OSError as exc:
        msg = f"incomplete artifact: cannot read {path} ({exc.strerror})"
        raise ArtifactError(msg) from None
    _verify(path, data, files[name])
    return _unpacked(data, dtype)


def _release(values: Sequence[float]) -> None:
    """Let the kernel take back the pages of a mapped grid that the checks read (they are read again,
    a few at a time, when a request needs them): a checked grid costs no resident memory until then."""
    if isinstance(values, memoryview) and isinstance(values.obj, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        values.obj.madvise(mmap.MADV_DONTNEED)


def _legacy_grid(
    manifest_path: Path, gen_dir: Path, slug: str, meta: Mapping[str, Any], blobs: Mapping[str, bytes]
) -> tuple[dict[str, Any], dict[str, Sequence[float]], Path]:
    """A schema 2 or 3 symbol's JSON grid as a header and its columns, packed as the writer packs them: a
    production artifact of the last schema stays readable (its track record and forecasts carry on)."""
    name = meta.get("file")
    if name not in blobs:
        msg = f"corrupt artifact {manifest_path}: no checksummed file for symbol {slug!r}"
        raise ArtifactError(msg)
    where = gen_dir / name
    payload = _loads(blobs[name], where)
    try:
        if not isinstance(payload, dict):
            msg = f"{slug}: payload is not a JSON object"
            raise ValueError(msg)
        header, packed = _pack_payload(slug, payload)
    except ValueError as exc:
        msg = f"corrupt artifact {where}: {exc}"
        raise ArtifactError(msg) from None
    return header, _columns(header, packed), where


def _forecast(
    slug: str, header: Mapping[str, Any], parts: Mapping[str, Sequence[float]], meta: Mapping[str, Any]
) -> SymbolForecast:
    """A symbol's forecast from its grid header and its two columns of floats, checked: lengths agree,
    Prophet's series finite, the served quantiles positive, finite and ascending at every point."""
    try:
        step = timedelta(seconds=int(header["step_seconds"]))
        start = parse_utc(header["start"])
        history_points = int(header["history_points"])
        n = int(header["points"])
        symbol, timeframe = str(header["symbol"]), str(header["timeframe"])
        levels = tuple(float(x) for x in header["served"]["levels"])
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"{slug}: missing or malformed field ({exc!r})"
        raise ValueError(msg) from None
    if step <= timedelta(0) or not 0 < history_points <= n:
        msg = f"{slug}: inconsistent step or history_points"
        raise ValueError(msg)
    series, served = parts["series"], parts["served"]
    if len(series) != 3 * n + history_points:
        msg = f"{slug}: series lengths differ"
        raise ValueError(msg)
    yhat, yhat_lower, yhat_upper = (series[k * n : (k + 1) * n] for k in range(3))
    # A sum is NaN or infinite when any term is (the C loop of sum(), not a Python one per value).
    if not all(math.isfinite(sum(column)) for column in (yhat, yhat_lower, yhat_upper)):
        msg = f"{slug}: non-finite values in the forecast"
        raise ValueError(msg)
    if (
        not levels
        or list(levels) != sorted(set(levels))
        or not levels[0] > 0
        or not levels[-1] < 1
        or not {0.1, 0.5, 0.9} <= set(levels)
    ):
        msg = f"{slug}: served levels must ascend inside (0, 1) and include 0.1, 0.5 and 0.9"
        raise ValueError(msg)
    if len(served) != len(levels) * n:
        msg = f"{slug}: served quantiles do not match the levels and the grid"
        raise ValueError(msg)
    _check_quantiles(slug, served, n)
    quantiles = tuple(served[k * n : (k + 1) * n] for k in range(len(levels)))
    return SymbolForecast(
        symbol=symbol,
        slug=slug,
        timeframe=timeframe,
        step=step,
        start=start,
        history_points=history_points,
        yhat=yhat,
        yhat_lower=yhat_lower,
        yhat_upper=yhat_upper,
        actual=Closes(series[3 * n :]),
        meta=meta,
        levels=levels,
        quantiles=quantiles,
        header=header,
    )


def _check_quantiles(slug: str, served: Sequence[float], n: int) -> None:
    """Every quantile positive, finite and at or above the level below it, at every point.

    The grid is level-major, so its values from the second level on, against those up to the last
    but one, compare each level with the one below at every point, in one C loop (a NaN compares
    false, so it fails too); with them in order, the lowest level positive and the highest finite,
    every value is."""
    top = len(served) - n
    ordered = all(map(operator.le, served[:top], served[n:]))
    if ordered and min(served[:n], default=1.0) > 0 and math.isfinite(max(served[top:], default=0.0)):
        return
    bad = disordered_points([served[k : k + n] for k in range(0, len(served), n)])  # only to name the first
    msg = f"{slug}: served quantiles at point {bad[0]} are not positive, finite and ascending"
    raise ValueError(msg)


def disordered_points(columns: Sequence[Sequence[float]]) -> list[int]:
    """Grid points whose quantiles (one column per level, levels ascending) are not all finite, positive
    and non-decreasing: the one rule the reader and the promotion gate apply."""
    return [
        i
        for i, row in enumerate(zip(*columns, strict=True))
        if not all(math.isfinite(v) and v > 0 for v in row) or any(a > b for a, b in itertools.pairwise(row))
    ]
