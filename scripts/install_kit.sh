#!/usr/bin/env bash
# Installs the kit into the Python given, the one way the Makefile, Binder's postBuild and CI do it:
#   bash scripts/install_kit.sh PYTHON [EXTRAS]        e.g. .venv/bin/python notebooks,test
# 1. torch first, alone (--no-deps: only torch comes from that index; its dependencies come from
#    PyPI in step 2, pinned), by name, from PyTorch's wheel index for TORCH_VARIANT (default cpu:
#    torch==<constraints.txt's version>+cpu from https://download.pytorch.org/whl/cpu). A plain
#    `pip install torch` on Linux would take the CUDA build (several GB). CUDA users:
#    TORCH_VARIANT=cu126 (any label PyTorch publishes for that version). TORCH_INDEX overrides the
#    index URL (a mirror). pip's own configuration (find-links, a local index) is searched too,
#    which is how offline build machines satisfy torch==X+cpu from a local wheel.
# 2. the kit, editable, with EXTRAS (default: notebooks), every version from constraints.txt.
# 3. scripts/check_torch.py: fails loudly if torch is not the build asked for (never a silent
#    fall-back to the CUDA build).
# 4. notebook 13's data (Fashion-MNIST, the SST-2 substitute) into the kit's data cache, verified;
#    a failure here is reported and does not fail the set-up (the MNIST notebooks need no download).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:?usage: install_kit.sh PYTHON [EXTRAS]}"
EXTRAS="${2:-notebooks}"
VARIANT="${TORCH_VARIANT:-cpu}"
INDEX="${TORCH_INDEX:-https://download.pytorch.org/whl/${VARIANT}}"
VERSION="$(sed -n 's/^torch==\([^ #;]*\).*/\1/p' constraints.txt)"
[ -n "$VERSION" ] || { echo "constraints.txt pins no torch version" >&2; exit 1; }
if [ "$(uname -s)" = "Darwin" ] && [ "$VARIANT" = "cpu" ]; then
  REQ="torch==${VERSION}"   # macOS wheels are CPU (and MPS) builds without a +cpu label
else
  REQ="torch==${VERSION}+${VARIANT}"
fi
echo "Installing ${REQ} from ${INDEX} (TORCH_VARIANT=${VARIANT})"
if ! "$PY" -m pip install --quiet --no-deps -c constraints.txt --extra-index-url "$INDEX" "$REQ"; then
  echo "Could not install ${REQ}: is ${INDEX} reachable? Set TORCH_INDEX to a mirror of it, or see docs/INSTALL.md." >&2
  exit 1
fi
"$PY" -m pip install --quiet -c constraints.txt -e ".[${EXTRAS}]"
"$PY" scripts/check_torch.py --variant "$VARIANT"
"$PY" -m subspace_kit.datasets.prefetch \
  || echo "note: some data for notebook 13 could not be fetched now; it is fetched on first use (see data/README.md)"
