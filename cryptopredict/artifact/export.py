"""The API's copy of an artifact: the manifest and every file the API reads, without the files kept for the record.

The train stage keeps the whole artifact (for the workflow's report); the API image holds this copy.
The manifest is copied byte for byte, so its digest and every checksum still hold; the copy lacks
only `Manifest.record_files` (each pair's fitted Prophet model and backtest chart, the training
report), which `read_artifact` accepts absent and checks where present. A pair a later run carries
forward from this copy is written without them: its record stays in the image that trained it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cryptopredict.artifact.read import read_artifact
from cryptopredict.artifact.write import MANIFEST_NAME

__all__ = ["copy_served"]


def copy_served(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> tuple[int, int]:
    """Copy the artifact at `src`, verified first, into the empty or new folder `dst`, leaving out the files
    kept for the record; returns (files copied, files left out). ArtifactError when `src` is not a
    verified artifact; ValueError when `dst` is not empty."""
    artifact = read_artifact(src)
    manifest = artifact.manifest
    out = Path(dst)
    if out.exists() and any(out.iterdir()):
        msg = f"{out} is not empty: the API's copy goes in a new or empty folder"
        raise ValueError(msg)
    gen = out / manifest.generation
    gen.mkdir(parents=True)
    served = [name for name in manifest.files if name not in manifest.record_files]
    for name in served:
        shutil.copyfile(artifact.generation_dir / name, gen / name)
    # The manifest last, as a writer commits: a copy cut short has no manifest and is no artifact.
    shutil.copyfile(artifact.path / MANIFEST_NAME, out / MANIFEST_NAME)
    read_artifact(out)
    return len(served), len(manifest.files) - len(served)
