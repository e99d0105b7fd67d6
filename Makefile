# Studio: `make run` starts the whole studio on embedded defaults; `make test` runs the whole suite.
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: run test bench lint format install install-dev assets system-deps clean

run: install assets
	$(PY) -m studio.core.secret_key
	$(PY) manage.py studio_run

test: system-deps install-dev assets
	scripts/test.sh $(PYTEST_ARGS)

system-deps:
	scripts/system-deps.sh

# Benchmarks against the peers each issue names; results are written to bench/results/.
bench: install-dev assets
	scripts/test-services.sh $(PY) -m bench $(BENCH_ARGS)

lint: install-dev
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: install-dev
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

install: .venv/.installed
install-dev: .venv/.installed-dev
assets: frontend/static/vendor/.complete

.venv/.installed: pyproject.toml scripts/install.sh
	scripts/install.sh
	touch $@

.venv/.installed-dev: pyproject.toml scripts/install.sh
	scripts/install.sh dev
	touch .venv/.installed $@

frontend/static/vendor/.complete: frontend/package.json frontend/package-lock.json frontend/scripts/vendor.mjs
	scripts/assets.sh

clean:
	rm -rf .venv frontend/node_modules frontend/static/vendor var/staticfiles
