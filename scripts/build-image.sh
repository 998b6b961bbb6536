#!/usr/bin/env bash
# Build the real Dockerfile with buildah, without a Docker engine or a reachable image registry.
#
#   scripts/build-image.sh [TAG]        (default TAG: cryptopredict:local)
#
# Environment: RUN_ID (the training run's identity, as the workflow passes it; default a UTC
# stamp, so every build trains afresh), PRODUCTION_IMAGE (an image whose artifact is production:
# the champion the workflow passes; default none, a first run), TARGETS (default "train api worker"),
# SOURCE, SYMBOLS, TIMEFRAME, START, BACKTEST_CUTOFFS, SKIP_INVALID and MAX_FAILED_SHARE (default the
# Dockerfile's and train.py's),
# MODEL_VERSION, ALPACA_API_KEY / ALPACA_SECRET_KEY, DASK_SCHEDULER_ADDRESS (train on that Dask
# cluster; default none, in the build), REGISTRY_TLS_VERIFY (false: PRODUCTION_IMAGE's registry
# speaks plain HTTP, as the tests' local one).
#
# Builds stage `train` (which trains on the bundled daily sample, offline), stage `api` and stage
# `worker` (the Dask scheduler/worker image), tagged TAG-train, TAG and TAG-worker. The Dockerfile's base image is made locally the first time: a debootstrap of
# Debian 12 with python3 and python3-venv, committed under the exact name the Dockerfile's FROM
# uses, so the Dockerfile is the one GitHub builds. pip inside the build uses this machine's pip
# configuration (index, certificates, constraints), mounted read-only, never baked into a layer.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
tag="${1:-cryptopredict:local}"
base="$(sed -n 's/^ARG PYTHON_IMAGE=//p' "$here/Dockerfile")"
say() { printf 'build-image: %s\n' "$*" >&2; }

# What it needs, said in one line before anything starts: root (buildah's storage and
# debootstrap), a Debian host (debootstrap makes the Debian 12 base from apt's own mirror), the tools.
missing=()
[ "$(id -u)" -eq 0 ] || missing+=("root")
[ -r /etc/debian_version ] || missing+=("a Debian host with a bookworm apt source")
for tool in buildah debootstrap; do
    command -v "$tool" >/dev/null || missing+=("$tool (scripts/install-system-packages.sh)")
done
if [ ${#missing[@]} -gt 0 ]; then
    needs="$(printf '%s, ' "${missing[@]}")"
    say "error: needs ${needs%, }"
    exit 1
fi

buildah=(buildah --storage-driver "$(bash "$here/scripts/buildah-storage.sh")")
say "buildah storage: ${buildah[2]}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

make_base() {
    # The Debian mirror apt already uses on this machine.
    local mirror
    mirror="$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1)"
    [ -n "$mirror" ] || mirror="$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)"
    [ -n "$mirror" ] || { say "error: no Debian mirror found in apt's sources"; exit 1; }
    say "making base image $base: debootstrap of Debian 12 (minbase + python3, python3-venv)"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -n 20 "$work/debootstrap.log" >&2; say "error: debootstrap failed"; exit 1; }
    rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/*
    local ctr mnt
    ctr="$("${buildah[@]}" from scratch)"
    mnt="$("${buildah[@]}" mount "$ctr")"
    cp -a "$work/rootfs/." "$mnt/"
    "${buildah[@]}" umount "$ctr" >/dev/null
    "${buildah[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --cmd python3 "$ctr"
    "${buildah[@]}" commit --quiet "$ctr" "$base" >/dev/null
    "${buildah[@]}" rm "$ctr" >/dev/null
    rm -rf "$work/rootfs"
}

if "${buildah[@]}" inspect --type image "$base" >/dev/null 2>&1; then
    say "base image $base already here"
else
    make_base
fi

# pip's effective configuration on this machine (files and PIP_* variables) as one pip.conf,
# plus every absolute path it names (CA bundle, constraints, wheel folders), all read-only.
volumes=()
{
    echo "[global]"
    # Environment variables come first in the listing and win over files, as in pip itself.
    pip config list 2>/dev/null | sed -n "s/^\(global\|install\|:env:\)\.\([a-z-]*\)='\(.*\)'$/\2 = \3/p" \
        | awk -F' = ' '!seen[$1]++'
} >"$work/pip.conf"
volumes+=(--volume "$work/pip.conf:/etc/pip.conf:ro")
while read -r path; do
    # A local "simple" index links to files beside it: mount the whole index folder.
    [ "$(basename "$path")" = simple ] && [ -d "$path" ] && path="$(dirname "$path")"
    [ -e "$path" ] && volumes+=(--volume "$path:$path:ro")
done < <(sed -n 's/^[a-z-]* = //p' "$work/pip.conf" | tr ' ' '\n' | sed 's#^file://##' | grep '^/' | sort -u)

# Alpaca keys travel as build secrets, never as build args; empty files mean "no keys".
: >"$work/alpaca_api_key"
: >"$work/alpaca_secret_key"
[ -n "${ALPACA_API_KEY:-}" ] && printf '%s' "$ALPACA_API_KEY" >"$work/alpaca_api_key"
[ -n "${ALPACA_SECRET_KEY:-}" ] && printf '%s' "$ALPACA_SECRET_KEY" >"$work/alpaca_secret_key"
: >"$work/dask_scheduler_address"
[ -n "${DASK_SCHEDULER_ADDRESS:-}" ] && printf '%s' "$DASK_SCHEDULER_ADDRESS" >"$work/dask_scheduler_address"

version="${MODEL_VERSION:-$(git -C "$here" describe --tags --always --dirty 2>/dev/null || echo dev)}"
common=(
    --isolation chroot --pull=never --layers --format docker -f "$here/Dockerfile"
    "${volumes[@]}"
    --secret "id=alpaca_api_key,src=$work/alpaca_api_key"
    --secret "id=alpaca_secret_key,src=$work/alpaca_secret_key"
    --secret "id=dask_scheduler_address,src=$work/dask_scheduler_address"
    --build-arg "SOURCE=${SOURCE:-csv}"
    --build-arg "SYMBOLS=${SYMBOLS:-BTC/USD,ETH/USD}"
    --build-arg "TIMEFRAME=${TIMEFRAME:-1Day}"
    --build-arg "MODEL_VERSION=$version"
    --build-arg "RUN_ID=${RUN_ID:-local-$(date -u +%Y%m%d%H%M%S)}"
    --build-arg "REVISION=$(git -C "$here" rev-parse HEAD 2>/dev/null || echo unknown)"
    --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    --tls-verify="${REGISTRY_TLS_VERIFY:-true}"
)
[ -n "${START:-}" ] && common+=(--build-arg "START=$START")
[ -n "${BACKTEST_CUTOFFS:-}" ] && common+=(--build-arg "BACKTEST_CUTOFFS=$BACKTEST_CUTOFFS")
[ -n "${SKIP_INVALID:-}" ] && common+=(--build-arg "SKIP_INVALID=$SKIP_INVALID")
[ -n "${MAX_FAILED_SHARE:-}" ] && common+=(--build-arg "MAX_FAILED_SHARE=$MAX_FAILED_SHARE")
# The champion, as the workflow passes it: a named build context replacing the `production` stage.
if [ -n "${PRODUCTION_IMAGE:-}" ]; then
    common+=(--build-context "production=docker-image://$PRODUCTION_IMAGE")
fi
trained=()
for target in ${TARGETS:-train api worker}; do
    name="$tag"
    [ "$target" != api ] && name="$tag-$target"
    say "building stage $target as $name (model $version)"
    # Once the train stage is built, later targets take it as it is (buildah's layer cache does not
    # reuse a RUN with secret mounts): the api image serves exactly the artifact the train image holds.
    # buildah's chroot RUN copies its own binary into a sealed memfd first, and the kernel can refuse
    # that seal for a moment (EBUSY): before any step of ours ran, so that one failure is tried again.
    for attempt in 1 2 3; do
        "${buildah[@]}" build "${common[@]}" "${trained[@]}" --target "$target" -t "$name" "$here" \
            >"$work/build.log" 2>&1 && break
        if [ "$attempt" = 3 ] || ! grep -q 'sealing memfd copy' "$work/build.log"; then
            tail -n 40 "$work/build.log" >&2
            say "error: building stage $target failed"
            exit 1
        fi
        say "buildah could not start a step (sealing memfd copy: busy); building stage $target again"
    done
    grep -E '^(loading|production:|track record:|\[[0-9]+/[0-9]+\]|wrote)' "$work/build.log" >&2 || true
    # The train stage completes even when training fails (so the workflow can export the report):
    # here, as in the workflow's gate step, a failed or refused training run fails the build.
    if grep -q '^train.py: error: ' "$work/build.log"; then
        say "error: $(grep '^train.py: error: ' "$work/build.log" | tail -n 1)"
        exit 1
    fi
    if [ "$target" = train ]; then
        case "$name" in */*) local_name="$name" ;; *) local_name="localhost/$name" ;; esac
        trained=(--build-context "train=container-image://$local_name")
    fi
done
"${buildah[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep -E "$(echo "${tag%%:*}" | sed 's/[.]/\\./g')" >&2 || true
