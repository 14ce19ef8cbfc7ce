# The README's commands: `make repro` (the pipeline), `make test` (the test suite) and
# `make serve` (the web page on http://127.0.0.1:7860).
# Both create the virtual environment from requirements.txt when it is missing.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Stage commands call `python`: make it the environment's.
export PATH := $(abspath $(BIN)):$(PATH)
export VIRTUAL_ENV := $(abspath $(VENV))

.PHONY: repro test test-fast serve setup plots-diff check-repro clean-venv

repro: $(STAMP)
	$(BIN)/dvc repro

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# The web page on the pipeline's outputs: make serve [SERVE_ARGS="--port 8000"]
serve: $(STAMP)
	$(BIN)/artstyle serve $(SERVE_ARGS)

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Are the workspace's evaluation metrics the committed ones? make check-repro [REV=HEAD]
# (exact; CHECK_ARGS=--loose for a run with train.repeatable: false or XGBoost on a GPU)
check-repro: $(STAMP)
	$(BIN)/python scripts/check_reproduced.py --rev $(REV) $(CHECK_ARGS)

# Every plot, workspace against a revision (`dvc plots diff`), as HTML:
# make plots-diff REV=HEAD~1. (The `compare` stage is another thing: reports/models.md.)
REV ?= HEAD
plots-diff: $(STAMP)
	$(BIN)/dvc plots diff $(REV) -o reports/plots_diff
	@echo "open reports/plots_diff/index.html"

clean-venv:
	rm -rf $(VENV)
