#!/usr/bin/env bash
# Print the storage driver buildah uses here (scripts/build-image.sh and tests/test_image.py ask it):
#   BUILDAH_STORAGE_DRIVER when set;
#   vfs when the store already holds vfs layers (containers/storage keeps one driver per store);
#   overlay when the kernel mounts an overlay whose upper folder lies where the store is (a layer is
#     then a diff: a build with its layer cache takes about a tenth of vfs's time, which copies the
#     whole file tree at every step);
#   vfs otherwise (an overlay upper folder cannot lie on overlayfs, as in a container's own root; a
#     store this user cannot write to is not probed).
# BUILDAH_STORAGE_ROOT: where the store lies (default buildah's, /var/lib/containers/storage; the
# tests probe other folders).
set -euo pipefail
store="${BUILDAH_STORAGE_ROOT:-/var/lib/containers/storage}"
if [ -n "${BUILDAH_STORAGE_DRIVER:-}" ]; then
    echo "$BUILDAH_STORAGE_DRIVER"
    exit 0
fi
if [ -d "$store/vfs" ]; then
    echo vfs
    exit 0
fi
# A store this user cannot write to (not root: scripts/build-image.sh then says what it needs) cannot
# be probed either.
if ! mkdir -p "$store" 2>/dev/null || ! probe="$(mktemp -d "$store/.overlay-probe.XXXXXX" 2>/dev/null)"; then
    echo vfs
    exit 0
fi
trap 'umount "$probe/merged" 2>/dev/null || true; rm -rf "$probe"' EXIT
mkdir "$probe/lower" "$probe/upper" "$probe/work" "$probe/merged"
if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
    "$probe/merged" 2>/dev/null; then
    echo overlay
else
    echo vfs
fi
