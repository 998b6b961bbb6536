# syntax=docker/dockerfile:1
# Stage 1 trains (heavy: Prophet, pandas), stage 2 serves (Flask, Waitress, the artifact).
# The train stage runs once on the build machine's own platform: its output is plain data, so
# every target platform serves the identical model and nothing trains under emulation.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# The image now in production (the champion). The workflow passes the one tagged `production`
# in GHCR, pinned by digest: --build-context production=docker-image://<image>@<digest>, which
# replaces this stage. Without one, /app/artifacts stays empty: a first run, nothing to compare
# with, and the track record starts with this model.
FROM ${PYTHON_IMAGE} AS production
RUN mkdir -p /app/artifacts

# The training environment (Prophet, CmdStan, pandas, Dask and the package), shared by the
# stage that trains and by the Dask worker image, so a cluster runs exactly what trains here.
FROM --platform=$BUILDPLATFORM ${PYTHON_IMAGE} AS train-env
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements-train.txt ./
RUN python3 -m venv /venv \
    && /venv/bin/pip install --no-cache-dir --require-hashes -r requirements-train.txt
COPY train.py ./
COPY cryptopredict ./cryptopredict

# Dask scheduler and workers for `train.py --cluster` (deploy/dask-compose.yml, docs/scaling-out.md):
#   docker build --target worker -t cryptopredict-worker .
#   docker run -p 8786:8786 cryptopredict-worker dask scheduler
#   docker run -e DASK_SCHEDULER_ADDRESS=tcp://scheduler:8786 cryptopredict-worker
# A worker starts one single-threaded process per core: a Prophet fit uses one core. No ENTRYPOINT,
# and `dask-scheduler` / `dask-worker` as the older commands, so Dask's Helm chart (whose container
# args name those commands) runs this image as it is. Built for the build machine's platform, like
# the train stage whose environment it is.
FROM train-env AS worker
# Matplotlib (the fit's charts) wants a writable config folder; the user has no home.
ENV PATH=/venv/bin:$PATH MPLCONFIGDIR=/tmp/matplotlib PYTHONPATH=/src
RUN printf '#!/bin/sh\nexec /venv/bin/dask scheduler "$@"\n' > /venv/bin/dask-scheduler \
    && printf '#!/bin/sh\nexec /venv/bin/dask worker "$@"\n' > /venv/bin/dask-worker \
    && chmod 0755 /venv/bin/dask-scheduler /venv/bin/dask-worker
USER 10001:10001
EXPOSE 8786
CMD ["dask", "worker", "--nworkers", "-1", "--nthreads", "1"]

FROM train-env AS train
COPY data ./data
# The watch rules train.py evaluates (docs/alerts.md); their states go in the artifact.
COPY alerts.toml ./
ARG SOURCE=alpaca
ARG SYMBOLS=BTC/USD,ETH/USD
ARG TIMEFRAME=1Hour
ARG START=2021-01-01
ARG MODEL_VERSION=dev
# Unique to each workflow run (X.Y.Z-YYYYMMDDHHMMSS). Secrets are not part of BuildKit's cache
# key and the other arguments repeat between scheduled runs, so without it a scheduled retrain
# would be a cache hit: no fresh bars, no new model. The same run's api build passes the same
# value and reuses this stage, so both platforms serve the artifact trained here.
ARG RUN_ID=local
# Backtest cutoffs: empty for train.py's default (the image tests build with a few, to be quick).
ARG BACKTEST_CUTOFFS=
# A pair without bars, unreadable or failing its fit fails that pair, not the run (train.py
# --skip-invalid: carried forward from production or left out); "false" fails the run instead.
ARG SKIP_INVALID=true
# The share of failed pairs above which the run is refused: empty for train.py's default (0.25).
ARG MAX_FAILED_SHARE=
COPY --from=production /app/artifacts/ /production/
# Alpaca keys are optional for crypto data; as BuildKit secrets they never reach a layer.
# The stage always completes, so that a refused challenger's report can still be exported:
# /run-output/status holds train.py's exit code and /run-output/train.log what it printed.
# A failed fetch, validation or promotion gate leaves no manifest in /artifacts, and the api
# stage's `api.py --check` then fails the build: nothing is shipped. (The pipe into tee needs no
# pipefail: train.py's status is written inside it.)
# With a Dask scheduler's address in the secret dask_scheduler_address, the fits and refits run on
# that cluster (train.py reads it as DASK_SCHEDULER_ADDRESS); empty or absent, in this stage.
# hadolint ignore=DL4006
RUN --mount=type=secret,id=alpaca_api_key --mount=type=secret,id=alpaca_secret_key \
    --mount=type=secret,id=dask_scheduler_address \
    mkdir -p /artifacts /run-output \
    && if [ -f /production/manifest.json ]; then set -- --baseline-artifact /production; else set --; fi \
    && if [ -n "$BACKTEST_CUTOFFS" ]; then set -- "$@" --backtest-cutoffs "$BACKTEST_CUTOFFS"; fi \
    && if [ "$SKIP_INVALID" = true ]; then set -- "$@" --skip-invalid; fi \
    && if [ -n "$MAX_FAILED_SHARE" ]; then set -- "$@" --max-failed-share "$MAX_FAILED_SHARE"; fi \
    && { ALPACA_API_KEY="$(cat /run/secrets/alpaca_api_key 2>/dev/null || true)" \
         ALPACA_SECRET_KEY="$(cat /run/secrets/alpaca_secret_key 2>/dev/null || true)" \
         DASK_SCHEDULER_ADDRESS="$(cat /run/secrets/dask_scheduler_address 2>/dev/null || true)" \
         MODEL_VERSION="$MODEL_VERSION" \
         /venv/bin/python train.py --source "$SOURCE" --csv-dir data --symbols "$SYMBOLS" \
             --timeframe "$TIMEFRAME" --start "$START" --run-id "$RUN_ID" --out /artifacts "$@"; \
         echo "$?" > /run-output/status; } 2>&1 | tee /run-output/train.log \
    && mkdir -p /served \
    && if [ -f /artifacts/manifest.json ]; then cp /artifacts/gen-*/report.md /artifacts/report.md \
         && /venv/bin/python -m cryptopredict.artifact served /artifacts /served; fi

# The training report and artifact on their own, for the workflow's job summary and upload:
#   docker buildx build --target report --output type=local,dest=out .
# out/status is train.py's exit code; out/train.log its output; out/report.md (promoted) or
# out/rejected-report.md (refused) the gate's decision.
FROM scratch AS report
COPY --from=train /artifacts /
COPY --from=train /run-output /

FROM ${PYTHON_IMAGE} AS api
ARG MODEL_VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE_URL=https://github.com/cryptopredict/cryptopredict
LABEL org.opencontainers.image.title="cryptopredict" \
      org.opencontainers.image.description="Crypto price forecasts from a Prophet model trained at build time" \
      org.opencontainers.image.version="${MODEL_VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 PORT=8080 ARTIFACT_DIR=/app/artifacts
WORKDIR /app
COPY requirements-api.txt ./
# pip itself is not needed at run time: drop it with setuptools once the server is installed.
RUN python3 -m venv /venv \
    && /venv/bin/pip install --no-cache-dir --require-hashes -r requirements-api.txt \
    && /venv/bin/pip uninstall --quiet --yes pip setuptools
# Only the light half of the package: the API imports nothing from cryptopredict/training.
COPY api.py ./
COPY cryptopredict/__init__.py cryptopredict/distribution.py cryptopredict/errors.py cryptopredict/ledger.py \
     cryptopredict/quantiles.py cryptopredict/timeframes.py ./cryptopredict/
COPY cryptopredict/artifact ./cryptopredict/artifact
COPY cryptopredict/serving ./cryptopredict/serving
# The alert states are part of the artifact; `python -m cryptopredict.alerts` posts them from this image.
COPY cryptopredict/alerts ./cryptopredict/alerts
# The artifact without the files kept for the record (Prophet's fitted models, the backtest charts, the
# report: the report stage has them), which the API never reads.
COPY --from=train /served ./artifacts
USER 10001:10001
# No verified artifact (a refused challenger, a failed fetch), no image.
RUN ["/venv/bin/python", "api.py", "--check"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/venv/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=4)"]
CMD ["/venv/bin/python", "api.py"]
