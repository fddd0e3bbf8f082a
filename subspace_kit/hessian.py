"""The training-loss Hessian as a linear operator: ``H @ v`` without forming ``H``.

``HessianOperator`` is the Hessian of the *mean* loss over a whole data set with respect to all
trainable parameters of a model, flattened in ``model.parameters()`` order. It is evaluated at
the model's parameters *as they are when you multiply*: one operator follows a model through
training.

Route: double backward. One gradient graph (``create_graph=True``) is built per chunk of data,
and every vector of a block is pushed back through that same graph, so a block of m vectors
costs far less than m separate HVPs (see ``benchmarks/bench_curvature.py``). When the
data fit in one chunk the graph is kept until the parameters change, so an eigensolver's
sequence of products pays for the forward and first backward pass once. Where an operation has
no double-backward support, the operator falls back to forward-over-reverse
(``torch.func.jvp`` of ``torch.func.grad``), and the other way round.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.func import functional_call, grad, jvp, vmap

from ._validation import check_choice, check_finite_data, check_int_range, check_vector_block

BACKENDS = ("auto", "reverse", "forward")


class HessianOperator:
    """``H = ∇²_θ (1/n) Σ_i ℓ(model(x_i), y_i)`` as an operator.

    Parameters
    ----------
    model : nn.Module
        Its trainable parameters define θ (``P`` entries). Its buffers and train/eval mode are
        read, never changed.
    loss_fn : callable
        ``loss_fn(outputs, targets)`` returning the *mean* loss over the samples given.
    X, Y : tensors with the same first dimension ``n``.
    chunk_size : int, optional
        Samples per forward pass; chunk contributions are weighted by ``len(chunk)/n`` so the
        result does not depend on it. ``None``: all samples at once.
    backend : ``"auto"``, ``"reverse"`` (double backward) or ``"forward"`` (forward-over-reverse).

    ``H @ v`` takes ``v`` of shape ``(P,)`` or a block ``(P, m)``; ``num_matvecs`` counts
    columns multiplied (a block of m counts m).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        X: torch.Tensor,
        Y: torch.Tensor,
        *,
        chunk_size: int | None = None,
        backend: str = "auto",
    ):
        if len(X) != len(Y):
            raise ValueError(f"X and Y must have the same length; got len(X)={len(X)}, len(Y)={len(Y)}")
        if len(X) == 0:
            raise ValueError("X must hold at least one sample")
        check_finite_data("X", X)
        check_finite_data("Y", Y)
        if chunk_size is not None:
            chunk_size = check_int_range("chunk_size", chunk_size, 1)
        self.backend = check_choice("backend", backend, BACKENDS)
        self.model = model
        self.loss_fn = loss_fn
        self._names = [n for n, p in model.named_parameters() if p.requires_grad]
        self._params = [p for p in model.parameters() if p.requires_grad]
        if not self._params:
            raise ValueError("model has no trainable parameters")
        self.dtype = self._params[0].dtype
        self.device = self._params[0].device
        self.X = X.to(self.device, self.dtype if X.is_floating_point() else X.dtype)
        self.Y = Y.to(self.device, self.dtype if Y.is_floating_point() else Y.dtype)
        self.n = len(X)
        self.chunk_size = chunk_size or self.n
        self.num_params = sum(p.numel() for p in self._params)
        self.shape = (self.num_params, self.num_params)
        self.num_matvecs = 0
        self._route = None if backend == "auto" else backend
        self._cache_key = None
        self._cache = None  # [(leaves, flat_grad, loss)] for the single chunk, kept across calls

    # ------------------------------------------------------------------ data and parameters
    def _chunks(self):
        for start in range(0, self.n, self.chunk_size):
            stop = min(start + self.chunk_size, self.n)
            yield self.X[start:stop], self.Y[start:stop], (stop - start) / self.n

    def _buffers(self) -> dict:
        # Clones: a BatchNorm in train mode would otherwise update the caller's running stats.
        return {name: b.clone() for name, b in self.model.named_buffers()}

    def _loss_of(self, params: dict, Xc, Yc) -> torch.Tensor:
        out = functional_call(self.model, {**params, **self._buffers()}, (Xc,))
        return self.loss_fn(out, Yc)

    def _params_key(self):
        return tuple((p.data_ptr(), p._version) for p in self._params)

    def _unflatten(self, flat: torch.Tensor) -> list[torch.Tensor]:
        out, i = [], 0
        for p in self._params:
            out.append(flat[i : i + p.numel()].view_as(p))
            i += p.numel()
        return out

    # ------------------------------------------------------------------ reverse route
    def _graphs(self):
        """Yield ``(leaves, flat_grad_with_graph, weighted_loss)`` for each chunk."""
        single = self.chunk_size >= self.n
        key = self._params_key()
        if single and self._cache is not None and self._cache_key == key:
            yield from self._cache
            return
        built = []
        for Xc, Yc, weight in self._chunks():
            leaves = [p.detach().requires_grad_(True) for p in self._params]
            with torch.enable_grad():
                loss = weight * self._loss_of(dict(zip(self._names, leaves)), Xc, Yc)
                grads = torch.autograd.grad(loss, leaves, create_graph=True)
            item = (leaves, torch.cat([g.reshape(-1) for g in grads]), loss)
            if single:
                built.append(item)
            yield item
        if single:
            self._cache, self._cache_key = built, key

    def _matmat_reverse(self, V: torch.Tensor) -> torch.Tensor:
        # One column at a time through the shared graph: measured faster on CPU than batching
        # the columns with ``is_grads_batched`` (vmap over backward), see the benchmark.
        out = torch.zeros_like(V)
        for leaves, flat_grad, _ in self._graphs():
            for j in range(V.shape[1]):
                cols = torch.autograd.grad(flat_grad, leaves, grad_outputs=V[:, j], retain_graph=True,
                                           allow_unused=True)
                out[:, j] += torch.cat([
                    torch.zeros(p.numel(), dtype=p.dtype, device=p.device) if c is None else c.reshape(-1)
                    for c, p in zip(cols, leaves)
                ])
        return out

    # ------------------------------------------------------------------ forward-over-reverse
    def _matmat_forward(self, V: torch.Tensor) -> torch.Tensor:
        theta = torch.cat([p.detach().reshape(-1) for p in self._params])
        out = torch.zeros_like(V)
        for Xc, Yc, weight in self._chunks():
            def flat_loss(flat):
                return weight * self._loss_of(dict(zip(self._names, self._unflatten(flat))), Xc, Yc)

            grad_fn = grad(flat_loss)

            def hvp(v):
                return jvp(grad_fn, (theta,), (v,))[1]

            out += vmap(hvp, in_dims=1, out_dims=1)(V)
        return out

    # ------------------------------------------------------------------ public
    def __matmul__(self, v: torch.Tensor) -> torch.Tensor:
        check_vector_block("v", v, self.num_params)
        V = v.reshape(self.num_params, -1).to(self.device, self.dtype)
        routes = [self._route] if self._route else ["reverse", "forward"]
        error = None
        for route in routes:
            try:
                out = self._matmat_reverse(V) if route == "reverse" else self._matmat_forward(V)
            except (RuntimeError, NotImplementedError) as exc:  # op lacks this AD mode
                if self.backend != "auto":
                    raise
                error = exc
                continue
            self._route = route
            self.num_matvecs += V.shape[1]
            return out.reshape(v.shape) if v.ndim == 1 else out
        self._explain_data_problem()
        raise RuntimeError(f"no HVP route works for this model: {error}") from error

    def _explain_data_problem(self) -> None:
        """After every route failed: a ``ValueError`` saying what is wrong with X or Y when
        the loss cannot even be evaluated on one sample (integer inputs to a float model,
        class labels where the loss wants targets shaped like the outputs)."""
        Xc, Yc, _ = next(self._chunks())
        params = {n: p.detach() for n, p in zip(self._names, self._params)}
        try:
            with torch.no_grad():
                out = functional_call(self.model, {**params, **self._buffers()}, (Xc,))
        except Exception as exc:  # noqa: BLE001 -- any failure of the model on X is reported
            hint = (f" X has dtype {self.X.dtype}; a model with float weights needs float inputs "
                    "(pass X.float()), unless it takes integer ids such as tokens"
                    if not self.X.is_floating_point() else "")
            raise ValueError(f"model(X) fails on X of shape {tuple(self.X.shape)}: {exc}.{hint}") from exc
        try:
            with torch.no_grad():
                self.loss_fn(out, Yc)
        except Exception as exc:  # noqa: BLE001 -- any failure of the loss on Y is reported
            labels = not self.Y.is_floating_point() and self.Y.ndim == 1 and out.ndim == 2
            hint = (" Y looks like integer class labels; the kit's losses take one-hot targets "
                    f"(torch.nn.functional.one_hot(Y, {out.shape[-1]}).float())." if labels else "")
            raise ValueError(
                f"loss_fn(model(X), Y) fails for Y of shape {tuple(self.Y.shape)} and dtype {self.Y.dtype} "
                f"against outputs of shape (n, {', '.join(map(str, out.shape[1:]))}): {exc}.{hint}") from exc

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self @ v

    @property
    def route(self) -> str | None:
        """The HVP route in use (``"reverse"`` or ``"forward"``), once one has run."""
        return self._route

    def loss_and_gradient(self) -> tuple[float, torch.Tensor]:
        """Full-data mean loss and its gradient ``(P,)`` at the current parameters.

        Reuses the cached gradient graph when the data fit in one chunk, so asking for the
        gradient next to HVPs at the same point is free.
        """
        total, g = 0.0, torch.zeros(self.num_params, dtype=self.dtype, device=self.device)
        for _, flat_grad, loss in self._graphs():
            total += float(loss.detach())
            g += flat_grad.detach()
        return total, g

    def __repr__(self) -> str:
        return (
            f"HessianOperator(P={self.num_params}, n={self.n}, chunk_size={self.chunk_size}, "
            f"dtype={self.dtype}, route={self._route}, num_matvecs={self.num_matvecs})"
        )
