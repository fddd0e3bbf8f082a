"""Command line: ``python -m subspace_kit <command>``.

- ``eigen``: top-k Hessian eigenvalues of the paper's MLP after a short SGD warm-up.
- ``demo``: the kit's main job on the embedded MNIST-5k data.
"""
from __future__ import annotations

import argparse
import sys


def _eigen(args) -> int:
    import torch
    from tqdm.auto import tqdm

    from . import HessianOperator, top_eigen
    from .datasets import load
    from .losses import mse
    from .models import build_model

    torch.manual_seed(args.seed)
    data = load("mnist-5k")
    model = build_model("mlp", input_shape=data.input_shape, num_classes=data.num_classes, seed=args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    for _ in tqdm(range(args.steps), desc="SGD warm-up", unit="step"):
        idx = torch.randint(len(data), (args.batch_size,), generator=gen)
        opt.zero_grad()
        mse(model(data.X[idx]), data.Y[idx]).backward()
        opt.step()
    H = HessianOperator(model, mse, data.X, data.Y)
    with tqdm(total=None, desc="Lanczos (HVPs)", unit="hvp") as bar:
        result = top_eigen(H, args.k, tol=args.tol, method="lanczos")
        bar.update(result.matvecs)
    print(f"Top-{args.k} eigenvalues of the full MNIST-5k training-loss Hessian after {args.steps} SGD steps "
          f"(η={args.lr}, batch {args.batch_size}); {result.matvecs} HVPs, converged={result.converged}:")
    for i, (lam, res) in enumerate(zip(result.values.tolist(), result.residuals.tolist()), 1):
        print(f"  λ{i:<2d} = {lam:10.4f}   residual {res:.1e}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m subspace_kit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("eigen", "demo"):
        p = sub.add_parser(name, help="top-k Hessian eigenvalues after an SGD warm-up")
        p.add_argument("--steps", type=int, default=500)
        p.add_argument("--lr", type=float, default=0.01)
        p.add_argument("--batch-size", type=int, default=50)
        p.add_argument("--k", type=int, default=10)
        p.add_argument("--tol", type=float, default=1e-4)
        p.add_argument("--seed", type=int, default=0)
        p.set_defaults(func=_eigen)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
