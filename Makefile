# The two commands a fresh clone needs (see README.md):
#   make demo   set up .venv (idempotent) and run the main job
#   make test   set up .venv and PostgreSQL (idempotent) and run the whole test suite
.PHONY: setup demo test lint bench-hub clean

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

demo: setup
	$(VENV)/bin/fmstack demo

lint: setup
	$(VENV)/bin/ruff check src tests bench edge
	$(VENV)/bin/ruff format --check src tests bench edge
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: setup
	bash scripts/test.sh

bench-hub: setup
	$(PY) bench/hub.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
