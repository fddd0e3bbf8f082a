"""Slide-ready figures for a lesson, as PNG and SVG, from one command.

    python scripts/slides.py                       # every figure into slides/
    python scripts/slides.py --out /tmp/lesson     # somewhere else
    python scripts/slides.py --pool class_results  # also the class experiment's pooled figure
    python scripts/slides.py --only valley,pool    # a subset (names: see --help)
    python scripts/slides.py --smoke               # tiny runs instead of the shipped ones (seconds; CI)

Figures (each ``<out>/<NN_name>.png`` and ``.svg``, matplotlib, no browser needed):
- ``headline``: the main result of the shipped ``class`` run (notebooks 01/04), drawn by
  ``experiment.figures.save_headline`` (loss after the switch relative to the loss at the switch, on a
  linear axis, beside the full history);
- ``valley``: the ill-conditioned valley's exact expected losses after the switch and χ₁ of SGD and
  GD (notebook 05);
- ``noise``: χ_k of SGD and of GD with the same step, from the shipped runs (notebook 07);
- ``eos``: loss, alignment and sharpness of GD at the Edge of Stability (notebook 08);
- ``pool``: Dom/SGD and Bulk/SGD ratios pooled from a folder of class results (notebook 15).

Every figure is computed from the kit's shipped runs or closed forms, so two teachers get the same
slides. Runs on one thread.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

FIGURES = ("headline", "valley", "noise", "eos", "pool")


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_both(fig, stem: Path) -> list[Path]:
    """``fig`` (matplotlib) as ``<stem>.png`` (150 dpi) and ``<stem>.svg``; closes it."""
    plt = _pyplot()
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.tight_layout()
    for path in paths:
        fig.savefig(path, dpi=150)
    plt.close(fig)
    return paths


def headline(stem: Path, *, smoke: bool) -> list[Path]:
    """The shipped class run's headline figure, by ``experiment.figures.save_headline``."""
    from subspace_kit.experiment.shipped import load_shipped
    from subspace_kit.experiment import figures

    result = load_shipped("class", smoke=smoke)
    if not hasattr(figures, "save_headline"):  # until teaching-core's headline figure lands
        raise RuntimeError("experiment.figures.save_headline is not available in this version of the kit")
    figures.save_headline(result, stem)
    return [p for p in (stem.with_suffix(".png"), stem.with_suffix(".svg")) if p.exists()]


def valley(stem: Path, *, smoke: bool) -> list[Path]:
    """Notebook 05's valley: exact expected losses after the switch, and χ₁ of SGD and GD."""
    import numpy as np

    from subspace_kit.theory import Valley

    warmup, steps, lr = (20, 40, 0.5) if smoke else (300, 1500, 0.5)
    v = Valley()
    switch = tuple(v.simulate("sgd", lr=lr, steps=warmup, seed=0).path[-1])
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    colors = {"sgd": "#1f77b4", "dom_sgd": "#d62728", "bulk_sgd": "#2ca02c"}
    for method, label in (("sgd", "SGD"), ("dom_sgd", "Dom-SGD"), ("bulk_sgd", "Bulk-SGD")):
        loss = v.expected_loss(method, lr=lr, steps=steps, start=switch)
        left.plot(np.arange(steps + 1), loss / loss[0], color=colors[method], label=label)
    left.axhline(1.0, ls=":", color="gray")
    left.set(xlabel="steps after the switch", ylabel="E loss ÷ loss at the switch",
             title="valley: after the switch (exact)")
    left.legend()
    for method, label, color in (("sgd", "SGD", "#1f77b4"), ("gd", "GD", "#ff7f0e")):
        chi = v.simulate(method, lr=lr, steps=warmup + steps, seed=0).alignment
        window = 25  # a running median: SGD's single steps flicker, the slide shows the level
        level = [float(np.median(chi[max(0, t - window):t + 1])) for t in range(len(chi))]
        right.plot(chi, color=color, alpha=0.2, lw=0.8)
        right.plot(level, color=color, label=f"{label} (running median of {window} steps)")
    right.set(xlabel="step", ylabel="χ₁(∇L)", ylim=(-0.02, 1.02), title="alignment with the sharp direction")
    right.legend()
    return save_both(fig, stem)


def noise(stem: Path, *, smoke: bool) -> list[Path]:
    """Notebook 07: χ_k of SGD and GD (same step) from the shipped runs, over the steps both have."""
    import math

    from subspace_kit.experiment.shipped import load_shipped

    sgd, gd = load_shipped("sgd", smoke=smoke), load_shipped("gd_small", smoke=smoke)
    horizon = max(r["step"] for r in gd.rows)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for result, label, color in ((sgd, "SGD", "#1f77b4"), (gd, "GD", "#ff7f0e")):
        pts = [(r["step"], r["alignment_full"]) for r in result.rows
               if r["phase"] == "warmup" and r["step"] <= horizon and math.isfinite(r.get("alignment_full", math.nan))]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=color, label=label)
    ax.set(xlabel="step", ylabel=f"χ_{sgd.config.k}(∇L)", ylim=(-0.02, 1.02),
           title=f"same start, same η = {sgd.config.lr:g}: only SGD is aligned")
    ax.legend()
    return save_both(fig, stem)


def eos(stem: Path, *, smoke: bool) -> list[Path]:
    """Notebook 08: the Edge-of-Stability run's three panels (``experiment.figures.save_png``)."""
    from subspace_kit.experiment.shipped import load_shipped
    from subspace_kit.experiment.figures import save_png

    result = load_shipped("eos", smoke=smoke)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    stem.parent.mkdir(parents=True, exist_ok=True)
    for path in paths:
        save_png(result, path)  # matplotlib picks the format from the suffix
    return paths


def pool(stem: Path, *, folder, smoke: bool) -> list[Path]:
    """Notebook 15: the pooled class results of ``folder``."""
    from subspace_kit.experiment.pool import read_contributions, save_pooled

    return save_pooled(read_contributions(folder), stem, smoke=smoke)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="slides", help="folder for the figures (default: slides/)")
    parser.add_argument("--pool", default=None, help="folder of class results to pool (notebook 15)")
    parser.add_argument("--only", default=None, help=f"comma-separated subset of {', '.join(FIGURES)}")
    parser.add_argument("--smoke", action="store_true", help="tiny runs instead of the shipped ones")
    args = parser.parse_args(argv)
    names = FIGURES if args.only is None else tuple(n.strip() for n in args.only.split(",") if n.strip())
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        parser.error(f"unknown figure {unknown[0]!r}; choose from {', '.join(FIGURES)}")
    if "pool" in names and args.pool is None:
        if args.only is not None:
            parser.error("--only pool needs --pool FOLDER (the folder the groups handed in to)")
        names = tuple(n for n in names if n != "pool")
    torch.set_num_threads(1)
    out, failed = Path(args.out), 0
    for i, name in enumerate(names, 1):
        stem = out / f"{i:02d}_{name}"
        try:
            if name == "pool":
                written = pool(stem, folder=args.pool, smoke=args.smoke)
            else:
                written = globals()[name](stem, smoke=args.smoke)
            print(f"{name}: " + ", ".join(str(p) for p in written))
        except (RuntimeError, ValueError) as exc:  # one missing figure must not cost the others
            failed += 1
            print(f"{name}: not written: {exc}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
