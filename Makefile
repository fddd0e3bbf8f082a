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
	@# The offline SST-2 substitute (Rotten-Tomatoes sentences) ships in this sdist.
	$(PY) -m pip download --quiet --no-deps --no-binary :all: vaderSentiment==3.3.2 \
		-d $${SUBSPACE_KIT_DATA:-data/cache}/sst2 || echo "note: could not fetch the SST-2 substitute"
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
	@# a peer pulls a torchvision that cannot import beside the CPU torch; nothing here needs it
	$(PY) -m pip uninstall --quiet -y torchvision || true
	$(PY) benchmarks/bench_curvature.py
	$(PY) benchmarks/bench_engine.py

dashboard: $(STAMP)
	$(VENV)/bin/voila notebooks/dashboard.ipynb --port=8866 --no-browser

# Jupyter refuses to run as root without --allow-root (CI and these dev machines are root).
lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

clean-venv:
	rm -rf $(VENV)
