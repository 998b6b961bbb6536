"""Writing an artifact (the train side): a new generation, then the manifest replaced atomically."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptopredict.artifact.grids import PairGrid, columns_of, forecast_of, pack_grid
from cryptopredict.artifact.records import SCHEMA_VERSION, GridHeader, Manifest, from_json, to_json

__all__ = [
    "GEN_PREFIX",
    "MANIFEST_NAME",
    "SAFE_NAME",
    "canonical_digest",
    "json_bytes",
    "new_generation",
    "write_artifact",
]

MANIFEST_NAME = "manifest.json"
GEN_PREFIX = "gen-"
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")


def json_bytes(obj: object) -> bytes:
    """Compact JSON of data an artifact stores; allow_nan=False: a NaN in an artifact is a bug upstream,
    never something to ship."""
    return json.dumps(obj, allow_nan=False, separators=(",", ":")).encode()


def canonical_digest(doc: Mapping[str, Any]) -> str:
    """SHA-256 of a manifest's content without its "digest": keys sorted, no spaces, so a layout change
    (indentation, key order) keeps it and a changed value does not."""
    content = {k: v for k, v in doc.items() if k != "digest"}
    return hashlib.sha256(
        json.dumps(content, allow_nan=False, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
    return f"{GEN_PREFIX}{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"


def write_artifact(
    out_dir: str | os.PathLike[str],
    manifest: Manifest,
    grids: Mapping[str, PairGrid],
    extra_files: Mapping[str, bytes] | None = None,
    generation: str | None = None,
) -> Path:
    """Write a new generation into `out_dir` and commit it by replacing the manifest atomically.

    `manifest` holds the run's records; its `symbols` must have an entry for each pair of `grids`
    (others are dropped), and its `generation`, `grids` and `files` are filled here. `grids` maps slug
    to the pair's grid (a `PairGrid` with its served distribution; `grid_of` gives it back from a read
    artifact), written as `<slug>.series.bin` and `<slug>.served.bin` with its other fields in the
    manifest's `grids`.
    `extra_files` are other files of the generation (fitted models, charts, reports), by file name.
    `generation` is the new generation's name (`new_generation()`, when files inside name it); by
    default a fresh one. Returns the path of the manifest.
    """
    out = Path(out_dir)
    missing = [slug for slug in grids if slug not in manifest.symbols]
    if missing:
        msg = f"no manifest entry for the grid of {missing[0]!r}"
        raise ValueError(msg)
    out.mkdir(parents=True, exist_ok=True)
    generation = generation or new_generation()
    if not generation.startswith(GEN_PREFIX) or not SAFE_NAME.match(generation) or (out / generation).exists():
        msg = f"invalid or existing generation name {generation!r}"
        raise ValueError(msg)
    gen_dir = out / generation
    gen_dir.mkdir()
    manifest = replace(manifest, symbols={slug: manifest.symbols[slug] for slug in grids})
    try:
        files: dict[str, str] = {}
        headers, generation_files = _generation_files(manifest, grids, extra_files or {})
        for name, data in generation_files.items():
            _write_file(gen_dir / name, data)
            files[name] = _sha256(data)
        _fsync_dir(gen_dir)
        full = replace(
            manifest,
            schema_version=SCHEMA_VERSION,
            generation=generation,
            grids=headers,
            files=files,
        )
        doc = to_json(full)
        from_json(Manifest, doc)  # a record the reader would refuse is refused here, before anything ships
        doc = {"schema_version": SCHEMA_VERSION, "digest": canonical_digest(doc), **doc}
        data = json.dumps(doc, allow_nan=False, indent=2).encode() + b"\n"
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
    manifest: Manifest, grids: Mapping[str, PairGrid], extra_files: Mapping[str, bytes]
) -> tuple[dict[str, GridHeader], dict[str, bytes]]:
    """The manifest's grids and the generation's files by name; a grid the reader would refuse is
    refused here, by the same checks, before anything ships."""
    headers: dict[str, GridHeader] = {}
    files: dict[str, bytes] = {}
    for slug, grid in grids.items():
        header, packed = pack_grid(slug, grid)
        forecast_of(slug, header, columns_of(header, packed), manifest.symbols[slug])
        headers[slug] = header
        files[header.files.series.file] = packed["series"]
        files[header.files.served.file] = packed["served"]
    for name, data in extra_files.items():
        if not SAFE_NAME.match(name) or name in files or name == MANIFEST_NAME:
            msg = f"invalid or clashing artifact file name {name!r}"
            raise ValueError(msg)
        files[name] = bytes(data)
    missing = next((name for name in manifest.named_files if name not in files), None)
    if missing is not None:
        msg = f"the manifest names {missing!r}, a file this artifact does not hold"
        raise ValueError(msg)
    return headers, files


def _prune_generations(out: Path, keep: str) -> None:
    """Remove older generations, but keep the one just replaced: a server may be reading it."""
    gens = sorted(p for p in out.iterdir() if p.is_dir() and p.name.startswith(GEN_PREFIX))
    older = [p for p in gens if p.name != keep]
    for p in older[:-1]:
        shutil.rmtree(p, ignore_errors=True)
