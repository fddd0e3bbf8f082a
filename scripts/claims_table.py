"""The claims table of every shipped run, with the report's verdicts, in one markdown file.

Reads every run of the shipped store (``subspace_kit.paths.shipped_runs()``, i.e. data/runs)
through ``RunStore.load_path`` and decides its claims with ``report.claims``. A run of Dom and
Bulk only (momentum/Adam projected on the gradient) borrows the plain branch of the run that
shares its phase 1; a run on MNIST with the MLP gets full-batch GD with the same step from the
same initialisation as its alignment reference, when the store has one. Every verdict is
listed, "no" and "undecidable" included.

Usage: python scripts/claims_table.py [--store DIR] [--out benchmarks/results/claims.md]
"""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from subspace_kit.experiment import RunStore
from subspace_kit.experiment.report import claims, claims_markdown, verdicts
from subspace_kit.paths import shipped_runs

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "claims.md"


def plain_partner(result, by_key):
    """The run with the same phase 1 and a plain branch, for a run without one (or None)."""
    if "none" in result.config.modes:
        return None
    partner = result.config.replace(project_on="update", modes=("none", "dom", "bulk"))
    return by_key.get(partner.key())


def gd_reference(result, runs):
    """A full-batch GD run (no switch) with the same data, model, loss, step and seed."""
    cfg = result.config
    if cfg.optimizer == "gd":
        return None
    for other in runs:
        o = other.config
        if (o.optimizer == "gd" and o.modes == ("none",) and (o.dataset, o.model, o.loss, o.lr, o.n_train, o.seed)
                == (cfg.dataset, cfg.model, cfg.loss, cfg.lr, cfg.n_train, cfg.seed)):
            return other
    return None


def describe(cfg) -> str:
    return (f"{cfg.label('none')} on {cfg.dataset} ({cfg.model}, {cfg.loss}), η = {cfg.lr:g}, k = {cfg.k}, "
            f"steps {cfg.steps}, Hessian samples {cfg.hessian_samples or 'all'}, refresh every {cfg.refresh_every}"
            + (f", projection on the {cfg.project_on}" if cfg.optimizer in ("momentum", "adam") else "")
            + f", modes {', '.join(cfg.modes)}")


def table(store: Path) -> str:
    # every readable run of the store, in key order (the index and the switch points are not runs)
    runs = sorted(RunStore(store).runs(), key=lambda r: r.path.name)
    by_key = {r.config.key(): r for r in runs}
    count = Counter()
    parts = []
    keys = ("alignment", "dom_stall", "bulk_pace", "removed_part")
    overview = ["| run | setting | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    for r in runs:
        items = claims(r, plain=plain_partner(r, by_key), gd=gd_reference(r, runs))
        count.update(c.verdict for c in items)
        v = verdicts(items)
        c = r.config
        overview.append(f"| `{r.path.name}` | {c.label('none')}, {c.model}, {c.loss}, η = {c.lr:g}, {'/'.join(c.modes)}"
                        + (f", on the {c.project_on}" if c.optimizer in ("momentum", "adam") else "") + " | "
                        + " | ".join(v.get(k, "–") for k in keys) + " |")
        parts.append(f"## `{r.path.name}` ({r.status})\n\n{describe(r.config)}; switch at step {r.switch_step}, "
                     f"{r.horizon} steps logged after it.\n\n"
                     + (claims_markdown(items) if items else "No claim this run can test (phase 1 only, no checks)."))
    head = ("# Claims of every shipped run\n\nMade by `python scripts/claims_table.py` from the runs in "
            f"`data/runs/` with the verdicts of `subspace_kit/experiment/report.py`. {len(runs)} runs; verdicts: "
            + ", ".join(f"{v} {count[v]}" for v in ("yes", "no", "undecidable")) + ".\n")
    return head + "\n" + "\n".join(overview) + "\n\n" + "\n\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=str(shipped_runs()))
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    text = table(Path(args.store))
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
