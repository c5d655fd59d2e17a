# linkd — one command per job on a fresh machine: `make demo`, `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo lint docs test test-slow check check-domain figures bench mutation clean venv wheel

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	JAX_PLATFORMS=cpu $(PY) -m linkd run eigen_convergence --out runs/demo --overwrite
	@echo "figures written to runs/demo/figures/"

# The gate `make test` runs first: ruff (syntax errors, pyflakes, import order) and mypy at the
# declared Python version (config in pyproject.toml).
lint: $(STAMP)
	$(PY) -m ruff check linkd proofs_check tests benchmarks
	$(PY) -m mypy

# Two pytest workers (pytest-xdist), one test file each at a time so module fixtures run once (the
# preset runs are shared by both workers, tests/conftest.py): the suite is mostly single-threaded
# compilation, so this halves its wall time on 2 cores. `make test-slow` adds the full-size runs
# marked @pytest.mark.slow.
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# The user guide (docs/*.md) and the API reference from the docstrings (mkdocstrings), strictly:
# a broken link, a page missing from mkdocs.yml's nav or an unresolvable reference fails. ~10 s.
docs: $(STAMP)
	$(PY) -m mkdocs build --strict --quiet -d site

test: lint docs
	$(PYTEST) tests

test-slow: $(STAMP)
	$(PYTEST) --runslow tests

check: $(STAMP)
	$(PY) -m linkd check --fast

# Every claim over its domain: each exact, bound and monotone claim at its default point and
# DOMAIN_POINTS quasi-random points of its domain (the worst point recorded, with its --at command);
# qualitative claims run as in `make check`. Time on 2 cores: README ("Check your own bound").
DOMAIN_POINTS ?= 16
DOMAIN_SEED ?= 0
check-domain: $(STAMP)
	JAX_PLATFORMS=cpu $(PY) -m linkd check --fast --domain $(DOMAIN_POINTS) --seed $(DOMAIN_SEED) \
	  --json runs/claims-domain.json --report runs/claims-domain.md

figures: $(STAMP)
	$(PY) -m linkd figures --out figures

bench: $(STAMP)
	$(PY) benchmarks/run.py

# Planted bugs, one at a time, in a temporary copy of the tree: which survive linkd check --fast
# and the tests (15-40 min on 2 cores; not part of make test). Writes benchmarks/mutation_results.*
mutation: $(STAMP)
	$(PY) -m benchmarks.mutation

# The wheel (presets included, from experiments/) into dist/, built in a temporary copy of the
# sources so that no build/ or *.egg-info is left in the tree.
wheel: $(STAMP)
	@tmp=$$(mktemp -d) && cp -r pyproject.toml README.md linkd proofs_check experiments $$tmp/ && \
	  $(PY) -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir dist $$tmp && rm -rf $$tmp && ls dist/*.whl

clean:
	rm -rf $(VENV) runs site .pytest_cache .hypothesis .mypy_cache .ruff_cache build dist *.egg-info
