"""The Gauss-Newton / functional split of the Hessian: ``H = G + F``.

For a mean loss ``L(θ) = (1/n) Σ ℓ(f(x_i; θ), y_i)`` the Hessian splits into

    G = (1/n) Σ_i J_iᵀ ∇²ℓ_i J_i          (Gauss-Newton: curvature of the loss through the outputs)
    F = (1/n) Σ_i Σ_c ∂ℓ_i/∂f_c ∇²f_c     (functional: curvature of the network itself)

with ``J_i = ∂f(x_i)/∂θ`` and ``∇²ℓ_i`` the Hessian of the loss with respect to the outputs.
Zakarin & Singh (2025) use this split and find the curvature energy concentrated in the
dominant subspace. ``GaussNewtonOperator`` multiplies with G without forming J: ``J v`` (forward
mode, or the double-vjp trick), then ``∇²ℓ`` of the loss in output space, then ``Jᵀ`` (reverse
mode); ``FunctionalOperator`` is
``H − G``. Both behave like ``HessianOperator``: ``@`` with a vector ``(P,)`` or a block
``(P, m)``, ``.shape``, ``.dtype``, ``.num_matvecs``, so ``top_eigen`` and ``spectral_density``
take them as they are.
"""
from __future__ import annotations

import torch
from torch.func import functional_call, grad, jvp, vjp, vmap

from ..hessian import HessianOperator


class GaussNewtonOperator(HessianOperator):
    """``G = (1/n) Σ_i J_iᵀ ∇²ℓ_i J_i`` of the mean loss over ``(X, Y)``, as an operator.

    Same arguments and conventions as ``HessianOperator``, whose data, chunking, parameter
    handling and product dispatch it reuses (parameters flattened in ``model.parameters()``
    order, ``loss_fn`` returns the mean loss, chunks weighted by their share of the data,
    buffers and train/eval mode left alone; ``loss_and_gradient`` is the same loss's).

    backend : ``"forward"`` computes ``J v`` with ``jvp``; ``"reverse"`` with the double-vjp
        trick (``J v`` = transpose of the linear map ``u ↦ Jᵀu``), for operations without
        forward-mode AD; ``"auto"`` tries reverse, then forward (``.route`` says which runs).
    """

    def _ggn_matmat(self, V: torch.Tensor, forward: bool) -> torch.Tensor:
        theta = torch.cat([p.detach().reshape(-1) for p in self._params])
        out = torch.zeros_like(V)
        for Xc, Yc, weight in self._chunks():
            buffers = self._buffers()

            def outputs_of(flat):
                return functional_call(self.model, {**dict(zip(self._names, self._unflatten(flat))), **buffers}, (Xc,))

            outputs, pullback = vjp(outputs_of, theta)  # pullback(u) = (Jᵀu,)
            loss_grad = grad(lambda o: self.loss_fn(o, Yc))
            if forward:
                def push(v):
                    return jvp(outputs_of, (theta,), (v,))[1]

                def loss_hvp(u):
                    return jvp(loss_grad, (outputs,), (u,))[1]
            else:
                _, push_t = vjp(lambda u: pullback(u)[0], torch.zeros_like(outputs))
                _, loss_hvp_t = vjp(loss_grad, outputs)  # ∇²ℓ is symmetric: its vjp is its product

                def push(v):
                    return push_t(v)[0]

                def loss_hvp(u):
                    return loss_hvp_t(u)[0]

            def ggn(v):
                return pullback(loss_hvp(push(v)))[0]

            out += weight * vmap(ggn, in_dims=1, out_dims=1)(V)
        return out

    def _matmat_forward(self, V: torch.Tensor) -> torch.Tensor:
        return self._ggn_matmat(V, forward=True)

    def _matmat_reverse(self, V: torch.Tensor) -> torch.Tensor:
        return self._ggn_matmat(V, forward=False)

    def __repr__(self) -> str:
        return (f"GaussNewtonOperator(P={self.num_params}, n={self.n}, dtype={self.dtype}, "
                f"route={self._route}, num_matvecs={self.num_matvecs})")


class FunctionalOperator:
    """``F = H − G``: the part of the Hessian that comes from the network's own curvature.

    Built from the two operators (any objects with ``@`` and the same ``.shape``), or with
    ``FunctionalOperator.from_model(model, loss_fn, X, Y)``. ``num_matvecs`` counts products
    with F (each costs one product with H and one with G).
    """

    def __init__(self, hessian, gauss_newton):
        if tuple(hessian.shape) != tuple(gauss_newton.shape):
            raise ValueError(f"hessian and gauss_newton must have the same shape; got "
                             f"{tuple(hessian.shape)} and {tuple(gauss_newton.shape)}")
        self.hessian, self.gauss_newton = hessian, gauss_newton
        self.shape = tuple(hessian.shape)
        self.dtype = getattr(hessian, "dtype", torch.float32)
        self.device = getattr(hessian, "device", torch.device("cpu"))
        self.num_matvecs = 0

    @classmethod
    def from_model(cls, model, loss_fn, X, Y, *, chunk_size=None) -> "FunctionalOperator":
        return cls(HessianOperator(model, loss_fn, X, Y, chunk_size=chunk_size),
                   GaussNewtonOperator(model, loss_fn, X, Y, chunk_size=chunk_size))

    def __matmul__(self, v: torch.Tensor) -> torch.Tensor:
        out = self.hessian @ v - self.gauss_newton @ v
        self.num_matvecs += 1 if v.ndim == 1 else v.shape[1]
        return out

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self @ v


def subspace_curvature(A, U: torch.Tensor) -> torch.Tensor:
    """``uᵢᵀ A uᵢ`` for each column of an orthonormal ``U`` (P, k): the curvature of the operator
    ``A`` along each basis direction; their sum is ``tr(Uᵀ A U)``, the energy of A in span(U)."""
    return (U * (A @ U)).sum(dim=0)
