# Two commands for a newcomer (see README): `make demo` and `make test`.
# Each creates .venv, installs torch==2.13.0 first (CPU wheel), then the pinned stack.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench dashboard lab clean-venv browser

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e ".[notebooks,test]"
	touch $(STAMP)

venv: $(STAMP)

# The kit's main job on the embedded MNIST-5k data.
demo: $(STAMP)
	$(PY) -m subspace_kit demo

# Browser tests need Debian's chromium; installed here when missing and we may use apt-get.
browser:
	@bash scripts/ensure_chromium.sh

test: $(STAMP) browser
	$(PY) -m pytest -q -ra

bench: $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[bench]"
	$(PY) benchmarks/bench_curvature.py

dashboard: $(STAMP)
	$(VENV)/bin/voila notebooks/dashboard.ipynb --port=8866 --no-browser

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

clean-venv:
	rm -rf $(VENV)
