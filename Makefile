# Two commands do everything (README):
#   make reproduce   set up, then execute every notebook headlessly into results/
#   make test        set up, check the formatting (ruff), then run the tests (unit tests and every
#                    notebook with small parameters), spread over the cores (pytest-xdist, one
#                    test file per process at a time, in the order tests/conftest.py gives them)
# Setup first checks for PartiPrompts (standard library only: nothing is installed before it is
# found or downloaded), then creates .venv unless a virtual environment is already active, installs
# the pinned dependencies (requirements.lock) and this package (editable). CPU-only machine: prefix
# the command with PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu to get the CPU build of
# torch (README: what to do when that host cannot be reached).
# make lock rewrites requirements.lock from the environment, and environment.yml's pins from it. It re-runs only when
# requirements.lock or pyproject.toml changed.

PYTHON ?= python3
ifdef VIRTUAL_ENV
ENV_DIR := $(VIRTUAL_ENV)
else
ENV_DIR := .venv
endif
PY := $(ENV_DIR)/bin/python
STAMP := $(ENV_DIR)/.aigc-installed

.PHONY: setup reproduce test bench lock clean-results

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "PYTHON: $(PYTHON) is older than 3.11; run e.g. 'make test PYTHON=python3.12'"; exit 1; }
	@$$(test -x $(PY) && echo $(PY) || echo $(PYTHON)) -S -m aigc_lib.prompts --check
	@test -x $(PY) || $(PYTHON) -m venv $(ENV_DIR)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.lock
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e .
	@touch $@

# The library's bytecode, written here once (a no-op when current): every kernel and runner process
# imports it, and with PYTHONDONTWRITEBYTECODE set each would compile it again (0.15 s apiece).
BYTECODE = $(PY) -m compileall -q aigc_lib

reproduce: $(STAMP)
	@$(BYTECODE)
	$(PY) -m aigc_lib.reproduce

test: $(STAMP)
	@$(BYTECODE)
	$(PY) -m ruff format --check --quiet . || { echo "ruff format --check: run '$(PY) -m ruff format .'"; exit 1; }
	$(PY) -m pytest -n auto --dist loadfile --no-loadscope-reorder

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

lock: $(STAMP)
	{ sed -n '/^#/p' requirements.lock; $(PY) -m pip freeze --exclude-editable | sed 's/+cpu$$//'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock
	{ sed '/^      - [^-]/d' environment.yml; sed -n 's/^\([^#].*\)$$/      - \1/p' requirements.lock; } > environment.yml.new
	mv environment.yml.new environment.yml
