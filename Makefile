# The README's two commands are `make demo` and `make test`; both create the environment first if needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.egoforge-installed
PYTEST_ARGS ?=

.PHONY: setup demo test lint bench clean-venv

setup: $(STAMP)

# One environment for LLaMA-Factory 0.9.5 + verl 0.9.1 (pins in setup.cfg). DS_BUILD_OPS=0: no DeepSpeed kernels.
$(STAMP): setup.cfg setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	DS_BUILD_OPS=0 $(PY) -m pip install -e ".[dev,all]"
	$(PY) -m pip check
	touch $(STAMP)

demo: setup
	$(VENV)/bin/egoforge demo

test: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	set -e; for script in benchmarks/*.py; do case $$script in */_*) continue;; esac; \
	  echo "== $$script"; $(PY) $$script; done

clean-venv:
	rm -rf $(VENV)
