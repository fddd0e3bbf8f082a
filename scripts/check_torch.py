#!/usr/bin/env python3
"""Says whether the installed PyTorch is the build the set-up asked for; exit 1 (with what to do) if not.

    python scripts/check_torch.py --variant cpu      # after installing torch==<constraints>+cpu

``--variant cpu`` (the default set-up): torch must be a CPU build (``torch.version.cuda`` is None,
local version ``+cpu`` except on macOS, whose wheels carry no label) with no ``nvidia-*`` or
``triton`` package installed beside it. ``--variant cu126`` (any ``cuXYZ``): a CUDA build with
that label. Either way its version must be the one in ``constraints.txt``. Nothing is installed
or removed here: a set-up that silently fell back to another build is caught, never repaired.
"""
from __future__ import annotations

import argparse
import platform
import re
import sys
from importlib import metadata
from pathlib import Path

CONSTRAINTS = Path(__file__).resolve().parents[1] / "constraints.txt"
CUDA_ONLY = re.compile(r"^(nvidia-.*|triton)$")  # what a CUDA build of torch pulls in on Linux


def pinned_torch(constraints: Path = CONSTRAINTS) -> str:
    """The ``torch==X`` version in ``constraints``."""
    for line in constraints.read_text().splitlines():
        match = re.fullmatch(r"torch==([^\s;#]+)", line.strip())
        if match:
            return match[1]
    raise SystemExit(f"{constraints} pins no torch version (expected a line torch==X)")


def problems(variant: str, pinned: str, version: str, cuda: str | None, installed: list[str],
             system: str = platform.system()) -> list[str]:
    """What is wrong with torch ``version`` (``torch.version.cuda`` = ``cuda``) beside the
    distributions ``installed`` (names), for the set-up ``variant``; empty when all is right."""
    found = []
    public, _, label = version.partition("+")
    if public != pinned:
        found.append(f"torch {version} is installed but constraints.txt pins {pinned}")
    if variant == "cpu":
        if cuda is not None:
            found.append(f"torch {version} is a CUDA {cuda} build, not the CPU build asked for")
        if system != "Darwin" and label != "cpu":
            found.append(f"torch {version} lacks the +cpu label of PyTorch's CPU wheels")
        extra = sorted(name for name in installed if CUDA_ONLY.match(name))
        if extra:
            found.append(f"CUDA packages are installed beside the CPU build: {', '.join(extra)}")
    elif re.fullmatch(r"cu\d+", variant):
        if cuda is None or label != variant:
            found.append(f"torch {version} is not the {variant} build asked for (torch.version.cuda={cuda})")
    else:
        found.append(f"variant must be 'cpu' or a CUDA label like 'cu126'; got {variant!r}")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", default="cpu", help="cpu (default) or a CUDA label such as cu126")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError as exc:
        print(f"torch cannot be imported ({exc}); the set-up did not install it", file=sys.stderr)
        return 1
    installed = [re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower() for d in metadata.distributions()]
    found = problems(args.variant, pinned_torch(), torch.__version__, torch.version.cuda, installed)
    if found:
        print("PyTorch is not the build this set-up asked for:\n  " + "\n  ".join(found), file=sys.stderr)
        print("Remove it (pip uninstall torch, and the nvidia-* packages) and run the set-up again; CUDA users: "
              "TORCH_VARIANT=cu126 (see docs/INSTALL.md).", file=sys.stderr)
        return 1
    print(f"torch {torch.__version__} ({'CPU' if torch.version.cuda is None else 'CUDA ' + torch.version.cuda} build): ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
