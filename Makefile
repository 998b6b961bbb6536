# Two commands a new user needs: `make run` (train on the bundled sample, serve on :8080) and
# `make test`. Both create .venv from the hashed lock files on first use.
# The lock files install on Python 3.11, 3.12 and 3.13: make takes python3 when it is one of them,
# else the newest python3.13, python3.12 or python3.11 on PATH; `make PYTHON=/path/to/python3.x` wins.
SUPPORTED := import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))
PYTHON ?= $(shell for p in python3 python3.13 python3.12 python3.11; do command -v $$p >/dev/null 2>&1 && $$p -c '$(SUPPORTED)' 2>/dev/null && { command -v $$p; break; }; done)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
# What `make run` needs: the training and serving locks alone (about half the packages of the
# dev lock, which adds the test tools). `make test` installs the rest into the same venv.
RUN_STAMP := $(VENV)/.installed-run

.PHONY: run train serve test check docs lint lock clean system-packages bench mutation python-version

# Where `make run` writes and serves (another checkout or a second Python can run beside this one).
ARTIFACTS  ?= artifacts
SERVE_PORT ?= 8080
# Extra train.py flags for `make run` (CI's other Python versions pass fewer backtest cutoffs).
TRAIN_FLAGS ?=

$(BIN)/python:
	@test -n "$(PYTHON)" && $(PYTHON) -c '$(SUPPORTED)' 2>/dev/null || { echo "make: cryptopredict needs Python 3.11, 3.12 or 3.13 (its lock files are for those): install one, or run make PYTHON=/path/to/python3.13" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	# Put the checkout on the venv's path (what an editable install does), so notebooks and
	# scripts run from any folder import this cryptopredict.
	$(BIN)/python -c 'import os, sysconfig; open(os.path.join(sysconfig.get_path("purelib"), "cryptopredict-checkout.pth"), "w").write(os.getcwd() + "\n")'

$(RUN_STAMP): requirements-train.txt requirements-api.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-train.txt -r requirements-api.txt
	touch $@

$(STAMP): requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.txt
	touch $@

run: train serve

# The Python version make picks, as 3.X (.ci/run runs the other supported ones beside it).
python-version:
	@$(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'

train: $(RUN_STAMP)
	$(BIN)/python train.py --source csv --csv-dir data/ --symbols BTC/USD,ETH/USD --timeframe 1Day --out $(ARTIFACTS)/ $(TRAIN_FLAGS)

serve: $(RUN_STAMP)
	$(BIN)/python api.py --artifact $(ARTIFACTS)/ --port $(SERVE_PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Debian packages the suite drives (browser, image builder, load generator); no-op when present.
system-packages:
	bash scripts/install-system-packages.sh

# The whole suite, the README's test command and CI's: lint, the documentation site, every test, on
# TEST_WORKERS processes (pytest-xdist, a file to a worker: a file's fixtures are built once; the
# longest files first, as tests/conftest.py orders them).
TEST_WORKERS ?= 2
test: system-packages lint docs
	$(BIN)/python -m pytest tests notebooks --nbmake -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=20

# The fast lane (94 s on two workers on a busy 2-core machine; the scheduled retrain runs it instead of the
# whole suite): lint and the tests that need no training run (not even the session's shared artifacts)
# and no image (pytest markers unit, server, training and image: tests/conftest.py).
FAST := not training and not image and not slow
# Test files that need a Debian tool (chromium, buildah, skopeo, wrk) to be imported at all and hold
# no test of the fast lane: left uncollected, so the lane also runs where those tools are missing.
FAST_IGNORE := tests/test_browser.py tests/test_image.py tests/test_registry.py tests/test_soak.py
check: lint
	$(BIN)/python -m pytest tests -m "$(FAST)" $(addprefix --ignore=,$(FAST_IGNORE)) -n $(TEST_WORKERS) --dist loadfile --durations=10

# The documentation site into site/. --strict fails on a broken link, an unknown anchor or a page
# missing from the nav (not with --quiet: mkdocs then stops counting the warnings).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Re-pin every dependency (with hashes) after editing a requirements-*.in file. --universal: one lock
# for every supported Python (3.11 to 3.13), with markers where a version needs another package.
lock:
	uv pip compile --quiet --generate-hashes --universal --python-version 3.11 requirements-api.in -o requirements-api.txt
	uv pip compile --quiet --generate-hashes --universal --python-version 3.11 requirements-train.in -o requirements-train.txt
	uv pip compile --quiet --generate-hashes --universal --python-version 3.11 requirements-dev.in -o requirements-dev.txt
	uv pip compile --quiet --generate-hashes --universal --python-version 3.11 requirements-client.in -o requirements-client.txt
	uv pip compile --quiet --generate-hashes --universal --python-version 3.11 bench/requirements-original.in -o bench/requirements-original.txt

clean:
	rm -rf $(VENV) $(ARTIFACTS) site .pytest_cache .ruff_cache mutants

# Serving, cold start, footprint and training benchmarks; writes bench/results/ (about 15 minutes).
bench: $(STAMP)
	$(BIN)/python bench/run.py

# Mutation testing of the core modules with mutmut (settings in pyproject.toml), one module at a
# time; not run by CI (docs/mutation.md says how long it takes). Each mutant
# runs only the tests that call its function. Results stay in mutants/ (`mutmut results`,
# `mutmut show NAME`); every mutant of the named modules is run again each time (about 22 minutes).
MUTATED := distribution training.served training.backtest training.gate training.calibration ledger serving.contract serving.hotpath
mutation: $(STAMP)
	rm -rf .mutation-fixtures
	for m in $(MUTATED); do \
		CRYPTOPREDICT_FIXTURE_CACHE=$(CURDIR)/.mutation-fixtures $(BIN)/mutmut run --max-children 2 "cryptopredict.$$m.*" || exit 1; \
	done
	$(BIN)/mutmut results
