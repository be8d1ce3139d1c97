# Every target bootstraps what it needs: the engine (as root), the venv, all distributions.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Every distribution in the repo: the core, then each backend and contrib plugin.
DISTS := core $(wildcard builders/*/pyproject.toml) $(wildcard contrib/*/pyproject.toml)
DIST_DIRS := core $(patsubst %/pyproject.toml,%,$(filter %/pyproject.toml,$(DISTS)))
DIST_FILES := $(foreach d,$(DIST_DIRS),$(d)/pyproject.toml) pyproject.toml

.PHONY: venv engine test test-core demo bench lint clean

$(STAMP): $(DIST_FILES)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --group dev $(foreach d,$(DIST_DIRS),-e ./$(d))
	@touch $@

# Byte-compile the editable sources every time (cheap when nothing changed): with
# PYTHONDONTWRITEBYTECODE set, each CLI call would otherwise recompile them (~25 ms).
venv: $(STAMP)
	@$(BIN)/python -m compileall -q core/src builders contrib >/dev/null

# Docker first (podman.sh also tags/imports its arm64 base into a running dockerd).
engine:
	bash scripts/engine.sh
	bash scripts/podman.sh
	bash scripts/browser.sh

# Two workers, each test directory pinned to one (tests/conftest.py): the engine suites
# wait on engines more than on the CPU.
test: venv engine
	$(BIN)/python -m pytest -n 2 --dist loadgroup

test-core: venv
	$(BIN)/python -m pytest tests/core

demo: venv engine
	bash scripts/demo.sh

bench: venv engine
	$(BIN)/python bench/run.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check core builders contrib tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build dist
