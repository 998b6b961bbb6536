"""scripts/buildah-storage.sh: overlay where the kernel mounts one at the store, vfs where it cannot or where
the store already holds vfs layers, and BUILDAH_STORAGE_DRIVER above both."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = [
    pytest.mark.image,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting an overlay needs root (as building the image does)"),
]


def _driver(store: Path, **env: str) -> str:
    proc = subprocess.run(
        ["/bin/bash", str(ROOT / "scripts" / "buildah-storage.sh")],
        env={"PATH": os.environ["PATH"], "BUILDAH_STORAGE_ROOT": str(store), **env},
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return proc.stdout.strip()


@pytest.fixture
def on_overlayfs(tmp_path: Path) -> Iterator[Path]:
    """A folder on an overlay mount, as a container's own root is."""
    for name in ("lower", "upper", "work", "merged"):
        (tmp_path / name).mkdir()
    options = f"lowerdir={tmp_path / 'lower'},upperdir={tmp_path / 'upper'},workdir={tmp_path / 'work'}"
    subprocess.run(["/usr/bin/mount", "-t", "overlay", "overlay", "-o", options, str(tmp_path / "merged")], check=True)
    try:
        yield tmp_path / "merged"
    finally:
        subprocess.run(["/usr/bin/umount", str(tmp_path / "merged")], check=True)


def test_a_new_store_on_a_plain_file_system_is_overlay_and_the_probe_leaves_nothing(tmp_path: Path) -> None:
    store = tmp_path / "storage"
    assert _driver(store) == "overlay"
    assert list(store.iterdir()) == []


def test_a_store_on_overlayfs_is_vfs(on_overlayfs: Path) -> None:
    assert _driver(on_overlayfs / "storage") == "vfs"


def test_a_store_holding_vfs_layers_stays_vfs(tmp_path: Path) -> None:
    (tmp_path / "storage" / "vfs").mkdir(parents=True)
    assert _driver(tmp_path / "storage") == "vfs"


def test_the_setting_wins(tmp_path: Path) -> None:
    (tmp_path / "storage" / "vfs").mkdir(parents=True)
    assert _driver(tmp_path / "storage", BUILDAH_STORAGE_DRIVER="overlay") == "overlay"
    assert _driver(tmp_path / "elsewhere", BUILDAH_STORAGE_DRIVER="vfs") == "vfs"


def test_a_store_this_user_cannot_write_to_is_not_probed_and_is_vfs() -> None:
    """Where the store cannot be made (not root, or a read-only place), the answer is vfs, not an error."""
    assert _driver(Path("/proc/cryptopredict-no-store/storage")) == "vfs"
