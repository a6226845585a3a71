# authserver developer commands. `make run` and `make test` work on a fresh clone.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Re-install only when the project's dependencies change.
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install run test lint fmt clean screenshots bench bench-smoke

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Migrate the SQLite database in instance/, make signing keys, say how to create the
# first user, then serve the issuer on http://$(HOST):$(PORT). Each worker delivers the
# mail outbox from a thread of its own (AUTHSERVER_MAIL_SENDER=thread, the default).
run: export AUTHSERVER_ISSUER ?= http://$(HOST):$(PORT)
run: install
	$(BIN)/authserver db upgrade
	$(BIN)/authserver keys ensure
	$(BIN)/authserver setup-hint
	$(BIN)/gunicorn --workers 2 --bind $(HOST):$(PORT) --access-logfile - wsgi:app

# One pytest worker more than cores: browser and database waits leave a core idle otherwise
# (2 cores: -n 2 took 198 s, -n 3 169 s, -n 4 213 s).
WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))

test: install lint
	$(BIN)/pytest -q -n $(WORKERS)

# Walk every hosted page in headless chromium (tests/browser) and keep a screenshot of each.
screenshots: install
	@test -x /usr/bin/chromium || { echo "needs Debian's chromium: apt-get install -y chromium" >&2; exit 1; }
	rm -rf screenshots
	@status=0; AUTHSERVER_SCREENSHOTS=1 $(BIN)/pytest tests/browser -q || status=$$?; \
	echo "Screenshots of every page the browser tests visited: $(CURDIR)/screenshots/<test>/"; \
	exit $$status

# authserver against node-oidc-provider, side by side (bench/README.md); about 25 minutes.
# Installs wrk from Debian and the peer from npm when missing. BENCH_ARGS=--quick for a smoke run.
bench: install
	@command -v wrk >/dev/null || apt-get install -y wrk
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.run --markdown bench/RESULTS-latest.md $(BENCH_ARGS)

# The bench's smoke, run by .ci/run so that the bench cannot rot: authserver alone (no node,
# no peer), 2 workers, ES256, 2 s per workload, every run's sampled answers verified, scale
# on 20,000 rows, cleanup of 20,000 expired grants, no sign-in. Fails on a wrong answer or a
# failed request; about 2 minutes.
bench-smoke: install
	@command -v wrk >/dev/null || apt-get install -y wrk
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.run --quick --ours-only --workers 2 --skip-signin

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy authserver
	$(BIN)/lint-imports

fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info
