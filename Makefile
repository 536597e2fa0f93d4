# The two commands of the README: `make demo` and `make test`.
# Both create .venv and install greenloop into it on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# An editable install compiles nothing: compile now, as a wheel install does, so a
	# shell with PYTHONDONTWRITEBYTECODE set does not recompile greenloop on every run.
	$(BIN)/python -m compileall -q src >/dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/greenloop demo $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -q $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) greenloop-demo .greenloop
