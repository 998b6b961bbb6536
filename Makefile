# Two commands a new user needs: `make run` (train on the bundled sample, serve on :8080) and
# `make test`. Both create .venv from the hashed lock files on first use.
# The lock files are compiled for Python 3.11: use python3.11, or python3 when it is 3.11.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || { python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null && command -v python3; })
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
# What `make run` needs: the training and serving locks alone (about half the packages of the
# dev lock, which adds the test tools). `make test` installs the rest into the same venv.
RUN_STAMP := $(VENV)/.installed-run

.PHONY: run train serve test lint lock clean system-packages bench mutation

$(BIN)/python:
	@test -n "$(PYTHON)" && $(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { echo "make: cryptopredict needs Python 3.11 (its lock files are for 3.11): install python3.11, or run make PYTHON=/path/to/python3.11" >&2; exit 1; }
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

train: $(RUN_STAMP)
	$(BIN)/python train.py --source csv --csv-dir data/ --symbols BTC/USD,ETH/USD --timeframe 1Day --out artifacts/

serve: $(RUN_STAMP)
	$(BIN)/python api.py --artifact artifacts/ --port 8080

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Debian packages the suite drives (browser, image builder, load generator); no-op when present.
system-packages:
	bash scripts/install-system-packages.sh

test: system-packages lint
	$(BIN)/python -m pytest tests notebooks --nbmake --durations=20

# Re-pin every dependency (with hashes) after editing a requirements-*.in file.
lock:
	uv pip compile --quiet --generate-hashes --python-version 3.11 requirements-api.in -o requirements-api.txt
	uv pip compile --quiet --generate-hashes --python-version 3.11 requirements-train.in -o requirements-train.txt
	uv pip compile --quiet --generate-hashes --python-version 3.11 requirements-dev.in -o requirements-dev.txt
	uv pip compile --quiet --generate-hashes --python-version 3.11 requirements-client.in -o requirements-client.txt
	uv pip compile --quiet --generate-hashes --python-version 3.11 bench/requirements-original.in -o bench/requirements-original.txt

clean:
	rm -rf $(VENV) artifacts .pytest_cache .ruff_cache mutants

# Serving, cold start, footprint and training benchmarks; writes bench/results/ (about 15 minutes).
bench: $(STAMP)
	$(BIN)/python bench/run.py

# Mutation testing of the core modules with mutmut (settings in pyproject.toml), one module at a
# time; not run by CI (see the README's development section for how long it takes). Each mutant
# runs only the tests that call its function. Results stay in mutants/ (`mutmut results`,
# `mutmut show NAME`); every mutant of the named modules is run again each time (about 22 minutes).
MUTATED := training.served training.backtest training.gate ledger serving.contract serving.hotpath
mutation: $(STAMP)
	rm -rf .mutation-fixtures
	for m in $(MUTATED); do \
		CRYPTOPREDICT_FIXTURE_CACHE=$(CURDIR)/.mutation-fixtures $(BIN)/mutmut run --max-children 2 "cryptopredict.$$m.*" || exit 1; \
	done
	$(BIN)/mutmut results
