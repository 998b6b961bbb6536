#!/usr/bin/env bash
# Print the release version for this run as GitHub step outputs (version=X.Y.Z, stamp=UTC time).
#
#   scripts/next-version.sh push|schedule|workflow_dispatch
#
# On push: bump the latest vX.Y.Z tag (patch; "#minor" or "#major" in the head commit's message
# bumps more), create the annotated tag and push it. Otherwise reuse the latest tag (0.0.0 if none).
# The commit message is read from git, never interpolated into a shell command.
set -euo pipefail
event="${1:?usage: next-version.sh EVENT}"
latest="$(git tag --list 'v[0-9]*.[0-9]*.[0-9]*' --sort=-v:refname | head -n1)"
latest="${latest:-v0.0.0}"
IFS=. read -r major minor patch <<<"${latest#v}"
version="$major.$minor.$patch"
if [ "$event" = push ]; then
    message="$(git log -1 --format=%B)"
    if grep -q '#major' <<<"$message"; then
        version="$((major + 1)).0.0"
    elif grep -q '#minor' <<<"$message"; then
        version="$major.$((minor + 1)).0"
    else
        version="$major.$minor.$((patch + 1))"
    fi
    if [ -z "${DRY_RUN:-}" ]; then
        git -c user.name="github-actions[bot]" -c user.email="41898282+github-actions[bot]@users.noreply.github.com" \
            tag -a "v$version" -m "cryptopredict $version"
        git push origin "v$version"
    fi
fi
echo "version=$version"
echo "stamp=$(date -u +%Y%m%d%H%M%S)"
