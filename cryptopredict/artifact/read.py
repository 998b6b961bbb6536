"""Reading an artifact (the serve side, standard library only): every file verified, every record checked."""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptopredict.alerts.states import Alerts, parse_alerts
from cryptopredict.artifact.grids import DTYPES, PairGrid, SymbolForecast, forecast_of, grid_of, unpacked
from cryptopredict.artifact.records import (
    READABLE_VERSIONS,
    SCHEMA_VERSION,
    GateRecord,
    GridFile,
    Manifest,
    from_json,
)
from cryptopredict.artifact.write import GEN_PREFIX, MANIFEST_NAME, SAFE_NAME, canonical_digest
from cryptopredict.errors import ArtifactError, OlderSchemaError
from cryptopredict.ledger import Ledger, parse_ledger

__all__ = ["Artifact", "carried_pair", "read_artifact"]

# What an older artifact's refusal tells its owner to do.
RETRAIN = (
    "train it again with this code (train.py --out DIR; without --baseline-artifact, "
    "an artifact of the old schema cannot be carried forward)"
)


@dataclass(frozen=True, slots=True)
class Artifact:
    """A verified artifact: its manifest and each symbol's forecast grid, keyed by slug."""

    path: Path
    manifest: Manifest
    forecasts: Mapping[str, SymbolForecast]
    # The track record carried from artifact to artifact (cryptopredict.ledger); None before it
    # existed (an artifact whose manifest names no ledger).
    ledger: Ledger | None = None
    # The charts' bytes by file name, verified against the manifest with everything else on load and
    # kept (a few hundred kB a pair), so a server never reads or hashes them again.
    charts: Mapping[str, bytes] = field(default_factory=dict)
    # The watch rules' states after this run (cryptopredict.alerts); None when the manifest names none.
    alerts: Alerts | None = None
    # The files kept for the record (`Manifest.record_files`) that this copy of the artifact does not
    # hold: all of them in the API's copy (`copy_served`), none in the train stage's.
    absent_record_files: frozenset[str] = frozenset()

    @property
    def model_version(self) -> str:
        return self.manifest.model_version

    @property
    def gate(self) -> GateRecord | None:
        return self.manifest.gate

    @property
    def generation_dir(self) -> Path:
        return self.path / self.manifest.generation


def _sha256(data: bytes | mmap.mmap) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_verified(gen_dir: Path, name: str, digest: object) -> bytes:
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        msg = f"corrupt artifact: unsafe file name {name!r} in the manifest"
        raise ArtifactError(msg)
    try:
        data = (gen_dir / name).read_bytes()
    except OSError as exc:
        msg = f"incomplete artifact: cannot read {gen_dir / name} ({exc.strerror})"
        raise ArtifactError(msg) from None
    _verify(gen_dir / name, data, digest)
    return data


def _verify_streamed(path: Path, digest: object) -> None:
    """A file checked against its checksum without holding it (a fitted model is a megabyte or more)."""
    if not isinstance(digest, str):
        msg = f"corrupt artifact {path.parent.parent / MANIFEST_NAME}: the file {path.name!r} is not checksummed"
        raise ArtifactError(msg)
    try:
        with open(path, "rb") as fh:
            actual = hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError as exc:
        msg = f"incomplete artifact: cannot read {path} ({exc.strerror})"
        raise ArtifactError(msg) from None
    _check(path, actual, digest)


def _verify(path: Path, data: bytes | mmap.mmap, digest: object) -> None:
    _check(path, _sha256(data), digest)


def _check(path: Path, actual: str, digest: object) -> None:
    if actual != digest:
        msg = f"checksum mismatch for {path}: the manifest says {digest}, the file is {actual} (tampered or corrupt)"
        raise ArtifactError(msg)


def carried_pair(artifact: Artifact, slug: str) -> tuple[PairGrid, dict[str, bytes]]:
    """One pair of a verified artifact as a later run writes it again: its grid (`grid_of`, an entry of
    `write_artifact`'s `grids`) and its other files (charts; the fitted model and backtest chart where
    this copy holds them) by name, each checked against the manifest's checksum once more as it is read."""
    entry = artifact.manifest.symbols[slug]
    names = [entry.model_file, *entry.charts.values(), entry.backtest_chart]
    files = {
        name: _read_verified(artifact.generation_dir, name, artifact.manifest.files.get(name))
        for name in names
        if name and name not in artifact.absent_record_files
    }
    return grid_of(artifact.forecasts[slug]), files


def _loads(raw: bytes, where: Path) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"corrupt artifact {where}: not valid JSON ({exc})"
        raise ArtifactError(msg) from None


def _manifest(manifest_path: Path, doc: Any) -> Manifest:
    """The manifest's records, once its schema and its own digest are checked."""
    if not isinstance(doc, dict):
        msg = f"corrupt artifact {manifest_path}: the manifest is not a JSON object"
        raise ArtifactError(msg)
    version = doc.get("schema_version")
    oldest = READABLE_VERSIONS[0]
    if isinstance(version, int) and not isinstance(version, bool) and 0 < version < oldest:
        msg = f"artifact schema version {version} is older than this code reads ({oldest}): {RETRAIN}"
        raise OlderSchemaError(msg, version)
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        msg = f"unknown artifact schema version {version!r} (this code reads versions {oldest} to {SCHEMA_VERSION})"
        raise ArtifactError(msg)
    if doc.get("digest") != canonical_digest(doc):
        msg = (
            f"corrupt artifact {manifest_path}: its content does not match its digest "
            "(edited or damaged since it was written)"
        )
        raise ArtifactError(msg)
    try:
        manifest = from_json(Manifest, {k: v for k, v in doc.items() if k != "digest"})
    except ValueError as exc:
        msg = f"corrupt artifact {manifest_path}: {exc}"
        raise ArtifactError(msg) from None
    generation = manifest.generation
    if not generation.startswith(GEN_PREFIX) or not SAFE_NAME.match(generation):
        msg = f"corrupt artifact {manifest_path}: bad 'generation' entry"
        raise ArtifactError(msg)
    unsafe = next((name for name in manifest.files if not SAFE_NAME.match(name)), None)
    if unsafe is not None:
        msg = f"corrupt artifact: unsafe file name {unsafe!r} in the manifest"
        raise ArtifactError(msg)
    unlisted = next((name for name in manifest.named_files if name not in manifest.files), None)
    if unlisted is not None:
        msg = f"corrupt artifact {manifest_path}: it names {unlisted!r}, a file it has no checksum for"
        raise ArtifactError(msg)
    return manifest


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
    manifest = _manifest(manifest_path, _loads(raw, manifest_path))
    gen_dir = root / manifest.generation
    packed = set()
    for slug in manifest.symbols:
        grid = manifest.grids.get(slug)
        if grid is None:
            msg = f"corrupt artifact {manifest_path}: no grid for symbol {slug!r}"
            raise ArtifactError(msg)
        for spec in (grid.files.series, grid.files.served):
            _check_grid_file(manifest_path, spec)
            packed.add(spec.file)
    record = manifest.record_files
    absent = frozenset(name for name in record if not (gen_dir / name).exists())
    for name in sorted(record - absent):
        _verify_streamed(gen_dir / name, manifest.files.get(name))
    blobs = {
        name: _read_verified(gen_dir, name, digest)
        for name, digest in manifest.files.items()
        if name not in packed and name not in record
    }
    forecasts: dict[str, SymbolForecast] = {}
    for slug, entry in manifest.symbols.items():
        grid = manifest.grids[slug]
        specs = {"series": grid.files.series, "served": grid.files.served}
        parts = {part: _mapped(gen_dir, spec, manifest.files) for part, spec in specs.items()}
        try:
            forecasts[slug] = forecast_of(slug, grid, parts, entry, manifest.schema_version)
        except ValueError as exc:
            msg = f"corrupt artifact {gen_dir / f'{slug}.*.bin'}: {exc}"
            raise ArtifactError(msg) from None
        finally:
            for view in parts.values():
                _release(view)
    if not forecasts:
        msg = f"artifact {root} serves no symbol"
        raise ArtifactError(msg)
    return Artifact(
        path=root,
        manifest=manifest,
        forecasts=forecasts,
        ledger=_named_file(root, manifest, blobs, manifest.ledger, ("ledger", "track record"), parse_ledger),
        charts={name: data for name, data in blobs.items() if name.endswith(".png")},
        alerts=_named_file(
            root,
            manifest,
            blobs,
            manifest.alerts,
            ("alerts file", "alert states"),
            lambda obj: parse_alerts(obj, manifest.model_version),
        ),
        absent_record_files=absent,
    )


def _named_file(
    root: Path,
    manifest: Manifest,
    blobs: Mapping[str, bytes],
    name: str | None,
    labels: tuple[str, str],
    parse: Callable[[Any], Any],
) -> Any:
    """The file the manifest names (None when it names none), checksummed like every file and
    validated by `parse` (ValueError: corrupt); `labels` name it in the two refusals."""
    if name is None:
        return None
    where = root / manifest.generation / name
    if name not in blobs:
        msg = f"corrupt artifact {root / MANIFEST_NAME}: the {labels[0]} {name!r} is not a checksummed file"
        raise ArtifactError(msg)
    try:
        return parse(_loads(blobs[name], where))
    except ValueError as exc:
        msg = f"corrupt {labels[1]} {where}: {exc}"
        raise ArtifactError(msg) from None


def _check_grid_file(manifest_path: Path, spec: GridFile) -> None:
    """A binary file entry's dtype and length checked to be ones this code reads."""
    if spec.dtype not in DTYPES or spec.length < 0 or not SAFE_NAME.match(spec.file):
        msg = f"corrupt artifact {manifest_path}: bad grid file entry {spec!r}"
        raise ArtifactError(msg)


def _mapped(gen_dir: Path, spec: GridFile, files: Mapping[str, str]) -> Sequence[float]:
    """A binary grid file, mapped: its size checked against the manifest's length and dtype, its SHA-256
    against the manifest's, then seen as floats (read from disk only where a request looks)."""
    name, dtype, length = spec.file, spec.dtype, spec.length
    if name not in files:
        msg = f"corrupt artifact {gen_dir.parent / MANIFEST_NAME}: the grid file {name!r} is not checksummed"
        raise ArtifactError(msg)
    path = gen_dir / name
    expected = length * array(DTYPES[dtype]).itemsize
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
    return unpacked(data, dtype)


def _release(values: Sequence[float]) -> None:
    """Let the kernel take back the pages of a mapped grid that the checks read (they are read again,
    a few at a time, when a request needs them): a checked grid costs no resident memory until then."""
    if isinstance(values, memoryview) and isinstance(values.obj, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        values.obj.madvise(mmap.MADV_DONTNEED)
