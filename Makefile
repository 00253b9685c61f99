# A fresh clone needs only these targets: each sets up .venv by itself.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo lint typecheck pytest install bench notebooks clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,server,plot,notebook,ray,otel,frameworks,postgres]'
	@touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check agentopt tests experiments examples
	$(VENV)/bin/ruff format --check agentopt tests experiments examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# pytest exits 5 when it ran no test; that is a failure here, as any non-zero code.
pytest: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadgroup

test: lint typecheck pytest

demo: $(STAMP)
	$(VENV)/bin/agentopt demo

# the notebooks at small settings, checked (the suite runs them too); full settings: notebooks/run.py
notebooks: $(STAMP)
	$(PY) -m pytest -q tests/notebooks

bench: $(STAMP)
	$(PY) experiments/bench_import.py
	$(PY) experiments/bench_pricing.py

clean:
	rm -rf $(VENV) .agentopt_cache agentopt-demo .pytest_cache .mypy_cache .ruff_cache
