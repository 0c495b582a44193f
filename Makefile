# Two commands on a fresh clone: `make demo` (the main job) and `make test`.
# Each creates or refreshes the virtual environment .venv first.
PYTHON ?= $(shell command -v python3.12 2>/dev/null || echo python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench calibrate venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "pymc-maxent needs Python >= 3.12 (pyenv reads .python-version)")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/pymc-maxent demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile

# the everyday subset: no recovery fits, notebooks, docs build or CLI demo (`slow` marker)
test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(VENV)/bin/python -m pip install --quiet -e ".[bench]"
	$(VENV)/bin/python benchmarks/bench_b1_mixed_logit.py
	$(VENV)/bin/python benchmarks/bench_b2_likelihood.py
	$(VENV)/bin/python benchmarks/bench_maxent.py
	$(VENV)/bin/python benchmarks/bench_b4_maxent_individual.py
	$(VENV)/bin/python benchmarks/bench_tiers.py --sampler nutpie
	$(VENV)/bin/python benchmarks/bench_scale.py --advi-sizes 1000000 --dask-sizes 100000 1000000
	$(VENV)/bin/python benchmarks/bench_compile.py
	$(VENV)/bin/python benchmarks/bench_tests.py

# simulation-based calibration of every tier and MaxEnt's coverage (not in the tests; about an
# hour on two cores with 200 simulations per tier: SIMS=20 for a quick look)
SIMS ?= 200
WORKERS ?= 2
calibrate: $(STAMP)
	$(VENV)/bin/python benchmarks/calibrate.py --sims $(SIMS) --workers $(WORKERS) --output reports/calibration

clean:
	rm -rf $(VENV) reports .pytest_cache
