# Two commands for a newcomer (see README): `make demo` and `make test`.
# Each creates .venv and installs the kit with scripts/install_kit.sh: torch first, the CPU build
# from PyTorch's CPU wheel index (https://download.pytorch.org/whl/cpu), then the kit with every
# version from constraints.txt, then a check that torch is the CPU build.
# CUDA users: `make demo TORCH_VARIANT=cu126` (any CUDA label PyTorch publishes for the pinned
# torch); TORCH_INDEX=<url> replaces the index (a mirror).
PYTHON ?= python3
VENV ?= .venv
TORCH_VARIANT ?= cpu
TORCH_INDEX ?= https://download.pytorch.org/whl/$(TORCH_VARIANT)
PY := $(VENV)/bin/python
# One stamp per torch variant: switching variant reinstalls torch.
STAMP := $(VENV)/.installed-$(TORCH_VARIANT)

.PHONY: demo test bench dashboard lab clean-venv browser venv data

$(STAMP): pyproject.toml constraints.txt scripts/install_kit.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	rm -f $(VENV)/.installed-*
	TORCH_VARIANT=$(TORCH_VARIANT) TORCH_INDEX=$(TORCH_INDEX) bash scripts/install_kit.sh $(PY) notebooks,test
	touch $(STAMP)

venv: $(STAMP)

# Notebook 13's data (Fashion-MNIST, the SST-2 substitute), verified, into the kit's data cache.
data: $(STAMP)
	$(PY) -m subspace_kit.datasets.prefetch

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
	$(PY) scripts/check_torch.py --variant $(TORCH_VARIANT)
	$(PY) benchmarks/bench_curvature.py
	$(PY) benchmarks/bench_engine.py

dashboard: $(STAMP)
	$(VENV)/bin/voila notebooks/dashboard.ipynb --port=8866 --no-browser

# Jupyter refuses to run as root without --allow-root (CI and these dev machines are root).
lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

clean-venv:
	rm -rf $(VENV)
