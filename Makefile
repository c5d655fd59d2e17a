# linkd — one command per job on a fresh machine: `make demo`, `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow check figures bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	JAX_PLATFORMS=cpu $(PY) -m linkd run eigen_convergence --out runs/demo --overwrite
	@echo "figures written to runs/demo/figures/"

test: $(STAMP)
	$(PY) -m pytest -q tests

test-slow: $(STAMP)
	$(PY) -m pytest -q --runslow tests

check: $(STAMP)
	$(PY) -m linkd check --fast

figures: $(STAMP)
	$(PY) -m linkd figures --out figures

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis build *.egg-info
