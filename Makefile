# The two commands a newcomer needs: `make demo` and `make test`. Each installs what is missing first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install

$(STAMP): pyproject.toml setup.py proxy/_scan.pyx
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/redaction-proxy demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)
