# Two commands a new machine needs: `make run` and `make test` (each creates .venv first).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test test-typescript test-go lint format deploy-files bench loadtest clean

$(STAMP): pyproject.toml sdks/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench]' -e sdks/python  # the SDK, a dependency: editable here
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## the server on the embedded defaults: SQLite + ./data, 127.0.0.1:8080
	$(VENV)/bin/juststorage serve

# Three pytest workers, each taking whole test files (module fixtures start one server
# per file); PYTEST_WORKERS= runs in one process.
PYTEST_WORKERS ?= -n 3 --dist loadfile

# PostgreSQL tests run against a fresh database per test on the local cluster, which
# scripts/ensure-postgres.sh starts if it is installed but stopped. Without PostgreSQL
# they skip locally and fail in CI (CI=true). rclone (for tests/s3) comes from Debian the
# same way: installed when missing and apt-get may run, else its tests skip (fail in CI).
# The console's browser tests need Debian's chromium, which scripts/ensure-chromium.sh
# installs the same way (as root or with sudo), and the second real S3 server (Ceph
# RGW on a one-node cluster the tests start) Debian's radosgw, ceph-mon and ceph-osd,
# which scripts/ensure-radosgw.sh installs the same way.
# The TypeScript and Go SDKs' suites run beside pytest (their servers take ports from
# the ephemeral range, pytest's from below it); their output follows pytest's.
test: $(STAMP)  ## the whole suite: pytest, with the TypeScript and Go SDKs' conformance suites beside it
	@scripts/ensure-rclone.sh; scripts/ensure-chromium.sh; scripts/ensure-radosgw.sh; \
	url="$${JUSTSTORAGE_TEST_DATABASE_URL:-$$(scripts/ensure-postgres.sh)}"; status=0; \
	sdk_log="$$(mktemp)"; \
	( export JUSTSTORAGE_BIN="$(abspath $(VENV))/bin/juststorage"; sdk=0; \
	  scripts/test-typescript-sdk.sh || sdk=1; scripts/test-go-sdk.sh || sdk=1; exit $$sdk ) \
	  >"$$sdk_log" 2>&1 & sdk_pid=$$!; \
	JUSTSTORAGE_TEST_DATABASE_URL="$$url" $(PY) -m pytest $(PYTEST_WORKERS) $(PYTEST_ARGS) || status=1; \
	wait $$sdk_pid || status=1; \
	echo "--- the TypeScript and Go SDKs' suites ---"; cat "$$sdk_log"; rm -f "$$sdk_log"; \
	exit $$status

test-typescript: $(STAMP)  ## the TypeScript SDK alone (node --test on the conformance scenario)
	JUSTSTORAGE_BIN="$(abspath $(VENV))/bin/juststorage" scripts/test-typescript-sdk.sh

test-go: $(STAMP)  ## the Go SDK alone (installs golang-go if missing): gofmt, vet, go test
	JUSTSTORAGE_BIN="$(abspath $(VENV))/bin/juststorage" scripts/test-go-sdk.sh

lint: $(STAMP)  ## ruff (lint + format check) and mypy --strict
	$(VENV)/bin/ruff check src tests bench scripts sdks
	$(VENV)/bin/ruff format --check src tests bench scripts sdks
	$(VENV)/bin/mypy
	cd sdks/python && $(abspath $(VENV))/bin/mypy --strict src && $(abspath $(PY)) unasync.py --check
	$(VENV)/bin/vermin --target=3.9- --violations --no-tips --quiet sdks/python/src  # requires-python

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests bench scripts
	$(VENV)/bin/ruff format src tests bench scripts

# docker-compose.yml, .env.example and deploy/{prometheus,grafana,kubernetes} are
# generated from src/juststorage/deploy/ (deploy/README.md): edit the module, then run this.
deploy-files: $(STAMP)  ## rewrite the repository's generated deployment files
	$(PY) -m juststorage.deploy.repository .

# BENCH_ONLY=small,pg picks sections; BENCH_SIZE=tiny runs every one on tiny sizes.
bench: $(STAMP)  ## performance table (tests/smoke runs it on tiny sizes in `make test`)
	$(PY) -m bench

# A bounded mixed workload against a fresh local server (scripts/loadtest.py);
# LOADTEST_ARGS="--clients 32 --duration 30 --workers 4" to change it.
loadtest: $(STAMP)  ## throughput, p50/p99 and errors per operation; /metrics checked against the client
	$(PY) scripts/loadtest.py $(LOADTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache sdks/go/.gocache
