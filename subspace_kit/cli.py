"""Command line: ``python -m subspace_kit <command>``.

- ``demo``:   the kit's main job: the ``class`` preset's SGD / Dom-SGD / Bulk-SGD figure and
              claims table on the embedded MNIST-5k data (``run`` + ``report``).
- ``run``:    run (or resume, or read back) one experiment into the run store.
- ``report``: render a stored run as HTML + PNG figure and a claims table.
- ``eigen``:  top-k Hessian eigenvalues of the paper's MLP after a short SGD warm-up.
- ``check``:  list the runs of a store with their status, damaged ones with the reason
              (``--seal`` adds row counts and checksums to runs stored without them).

Errors are one line naming the file or the setting, never a traceback: exit status 2 for bad
settings, 1 for a run or store that cannot be used.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path


def _config_from_args(args):
    from .experiment import RunConfig

    overrides = {}
    if args.config:
        import json
        try:
            data = json.loads(Path(args.config).read_text())
        except OSError as exc:
            raise ValueError(f"--config: cannot read {args.config!r} ({exc.strerror or exc})") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"--config: {args.config!r} is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError(f"--config: {args.config!r} must hold a JSON object of config fields")
        overrides.update(data)
    preset = overrides.pop("preset", args.preset)
    flags = {"optimizer": args.optimizer, "lr": args.lr, "batch_size": args.batch_size, "k": args.k,
             "steps": args.steps, "seed": args.seed, "refresh_every": args.refresh_every,
             "dataset": args.dataset, "model": args.model, "loss": args.loss, "device": args.device,
             "project_on": args.project_on}
    if args.modes:
        flags["modes"] = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    if args.switch_step is not None:
        flags.update(switch="step", switch_step=args.switch_step)
    if args.interp:
        try:
            alpha, beta = (float(x) for x in args.interp.split(","))
        except ValueError:
            raise ValueError(f"--interp must be two numbers alpha,beta (e.g. 1,0.5); got {args.interp!r}") from None
        flags.update(interp_alpha=alpha, interp_beta=beta)
    overrides.update({k: v for k, v in flags.items() if v is not None})
    return RunConfig.preset(preset, **overrides)


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    from .experiment.config import PRESETS

    p.add_argument("--preset", default="class", help=f"{', '.join(PRESETS)} (default: class)")
    p.add_argument("--config", help="JSON file of config fields (may name a 'preset')")
    p.add_argument("--optimizer", help="sgd, gd, sam, momentum or adam")
    p.add_argument("--modes", help="comma-separated: none,dom,bulk,interp (default none,dom,bulk)")
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--k", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--switch-step", type=int, help="switch at this step instead of the preset's rule")
    p.add_argument("--refresh-every", type=int)
    p.add_argument("--interp", help="alpha,beta for mode interp")
    p.add_argument("--project-on", choices=["update", "gradient"])
    p.add_argument("--dataset")
    p.add_argument("--model")
    p.add_argument("--loss")
    p.add_argument("--device")
    p.add_argument("--seed", type=int)
    p.add_argument("--out", help="run store folder (default: the per-user store of subspace_kit.paths)")


def _stop_on_signals() -> threading.Event:
    """Ctrl-C or SIGTERM asks the run to checkpoint and stop (asking again resumes it)."""
    stop = threading.Event()

    def handler(signum, frame):
        if stop.is_set():  # a second Ctrl-C: leave now
            raise KeyboardInterrupt
        print("\nstopping after this step (checkpointing; run the same command again to resume)...",
              file=sys.stderr)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
    return stop


def _store(args):
    from .experiment.store import RunStore

    return RunStore(args.out)


def _run(args) -> int:
    from .experiment import run

    cfg = _config_from_args(args)
    result = run(cfg, store=_store(args), progress=True, stop=_stop_on_signals())
    print(f"{result.status}: {result.path}  ({result.summary.get('wall_seconds', 0):.0f} s, "
          f"{result.summary.get('hvps', 0)} HVPs, switch at step {result.summary.get('switch_step')})")
    if result.summary.get("message"):
        print(result.summary["message"])
    return 0 if result.status in ("completed", "stopped") else 1


def _report(args) -> int:
    from .experiment.report import claims, claims_markdown, write_report
    from .experiment.store import RunStore

    if args.run_dir:  # a folder the user names: a link to it is theirs to make, so resolve it
        result = RunStore.load_path(Path(args.run_dir).resolve())
    else:
        result = _store(args).load(_config_from_args(args))
    if result is None:
        print("no such run in the store; run it first with `python -m subspace_kit run ...`", file=sys.stderr)
        return 2
    if result.status == "damaged":
        print(f"error: the stored run {result.path} is damaged: {result.summary['message']}", file=sys.stderr)
        return 1
    paths = write_report(result, args.report_dir)
    print(claims_markdown(claims(result)))
    print("\n" + "\n".join(f"{kind}: {path}" for kind, path in paths.items()))
    return 0


def _demo(args) -> int:
    code = _run(args)
    if code != 0:
        return code
    args.run_dir = None
    return _report(args)


def _check_eigen_args(args) -> None:
    """The ``eigen`` options, each checked with a message naming it."""
    from ._validation import check_int_range, check_positive
    from .experiment.config import SEED_LIMIT

    check_int_range("--steps", args.steps, 0)
    check_int_range("--batch-size", args.batch_size, 1)
    check_int_range("--k", args.k, 1)
    check_int_range("--seed", args.seed, 0, SEED_LIMIT)
    check_positive("--lr", args.lr)
    check_positive("--tol", args.tol)


def _eigen(args) -> int:
    _check_eigen_args(args)
    import torch
    from tqdm.auto import tqdm

    from . import HessianOperator, top_eigen
    from .datasets import load
    from .losses import mse
    from .models import build_model

    data = load("mnist-5k")
    if args.batch_size > len(data):
        raise ValueError(f"--batch-size must be at most the data set's {len(data)} samples, got {args.batch_size}")
    model = build_model("mlp", input_shape=data.input_shape, num_classes=data.num_classes, seed=args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    for _ in tqdm(range(args.steps), desc="SGD warm-up", unit="step"):
        idx = torch.randint(len(data), (args.batch_size,), generator=gen)
        opt.zero_grad()
        mse(model(data.X[idx]), data.Y[idx]).backward()
        opt.step()
    result = top_eigen(HessianOperator(model, mse, data.X, data.Y), args.k, tol=args.tol, method="lanczos")
    print(f"Top-{args.k} eigenvalues of the full MNIST-5k training-loss Hessian after {args.steps} SGD steps "
          f"(η={args.lr}, batch {args.batch_size}); {result.matvecs} HVPs, converged={result.converged}:")
    for i, (lam, res) in enumerate(zip(result.values.tolist(), result.residuals.tolist()), 1):
        print(f"  λ{i:<2d} = {lam:10.4f}   residual {res:.1e}")
    return 0


def _check(args) -> int:
    store = _store(args)
    if args.seal:
        for path, what in store.seal():
            print(f"{path}: {what}")
        return 0
    entries = store.entries()
    for entry in entries:
        print(f"{entry.status:<10} {entry.path}" + (f"  {entry.message}" if entry.status == "damaged" else ""))
    if not entries:
        print(f"no runs in {store.root}")
    return 1 if any(e.status == "damaged" for e in entries) else 0


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line (no usage block), exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m subspace_kit", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, help_ in (("run", _run, "run one experiment into the run store"),
                              ("demo", _demo, "the main job: class preset figure + claims table"),
                              ("report", _report, "figure and claims table of a stored run")):
        p = sub.add_parser(name, help=help_)
        _add_run_flags(p)
        if name != "run":
            p.add_argument("--report-dir", default="reports", help="where figure.html/png and claims.md go")
            p.add_argument("--run-dir", help="(report) a run folder, instead of the config flags")
        p.set_defaults(func=func)
    p = sub.add_parser("eigen", help="top-k Hessian eigenvalues after an SGD warm-up")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_eigen)
    p = sub.add_parser("check", help="list a run store's runs; damaged ones with the reason")
    p.add_argument("--out", help="run store folder (default: the per-user store of subspace_kit.paths)")
    p.add_argument("--seal", action="store_true",
                   help="add row counts and checksums to the summaries of ended runs stored without them")
    p.set_defaults(func=_check)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from .datasets import DataUnavailable
    from .experiment.store import StoreError

    try:
        return args.func(args)
    except ValueError as exc:  # bad settings: one readable line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (DataUnavailable, StoreError) as exc:  # data or run store unusable: the message names it
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. a report folder that cannot be written
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C, or one while waiting for another run's lock
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
