"""Gauss-Newton and functional operators against dense Jacobians and Hessians (float64)."""
import pytest
import torch
from torch.func import functional_call, hessian, jacrev

from subspace_kit import HessianOperator, top_eigen
from subspace_kit.losses import cross_entropy, mse
from subspace_kit.theory import FunctionalOperator, GaussNewtonOperator, subspace_curvature
from subspace_kit.theory._toy import one_thread

F64 = torch.float64


@pytest.fixture(autouse=True)
def _tiny_problems_run_on_one_thread():
    with one_thread():
        yield


def _problem(net, n=7, d=4, classes=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = net.double()
    X = torch.randn(n, d, generator=gen, dtype=F64)
    Y = torch.nn.functional.one_hot(torch.randint(0, classes, (n,), generator=gen), classes).to(F64)
    return net, X, Y


def _mlp():
    return torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))


def _dense(net, loss_fn, X, Y):
    """``(G, H)`` built densely: G = Jᵀ (∇²ℓ) J with J from jacrev, H from torch.func.hessian."""
    names = [name for name, _ in net.named_parameters()]
    shapes = [p.shape for p in net.parameters()]
    theta = torch.cat([p.detach().reshape(-1) for p in net.parameters()])

    def outputs_of(flat):
        params, i = {}, 0
        for name, shape in zip(names, shapes):
            params[name] = flat[i : i + shape.numel()].view(shape)
            i += shape.numel()
        return functional_call(net, params, (X,))

    out = outputs_of(theta)
    J = jacrev(outputs_of)(theta).reshape(out.numel(), -1)
    loss_hessian = hessian(lambda o: loss_fn(o, Y))(out).reshape(out.numel(), out.numel())
    return J.T @ loss_hessian @ J, hessian(lambda flat: loss_fn(outputs_of(flat), Y))(theta)


@pytest.mark.parametrize("loss_fn", [mse, cross_entropy])
@pytest.mark.parametrize("backend", ["forward", "reverse", "auto"])
@pytest.mark.parametrize("chunk_size", [None, 3])
def test_gauss_newton_product_matches_dense_jacobian_form(loss_fn, backend, chunk_size):
    net, X, Y = _problem(_mlp())
    G_dense, _ = _dense(net, loss_fn, X, Y)
    G = GaussNewtonOperator(net, loss_fn, X, Y, chunk_size=chunk_size, backend=backend)
    V = torch.randn(G.shape[0], 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    assert torch.linalg.norm(G @ V - G_dense @ V) <= 1e-10 * torch.linalg.norm(G_dense @ V)
    assert torch.allclose(G @ V[:, 0], G_dense @ V[:, 0], rtol=1e-10, atol=1e-14)
    assert G.num_matvecs == 4 and G.shape == G_dense.shape and G.dtype == F64


@pytest.mark.parametrize("loss_fn", [mse, cross_entropy])
def test_gauss_newton_plus_functional_part_is_the_hessian(loss_fn):
    net, X, Y = _problem(_mlp())
    _, H_dense = _dense(net, loss_fn, X, Y)
    G = GaussNewtonOperator(net, loss_fn, X, Y)
    F = FunctionalOperator(HessianOperator(net, loss_fn, X, Y), G)
    V = torch.randn(G.shape[0], 4, generator=torch.Generator().manual_seed(2), dtype=F64)
    FV = F @ V
    assert torch.linalg.norm(G @ V + FV - H_dense @ V) <= 1e-10 * torch.linalg.norm(H_dense @ V)
    assert torch.linalg.norm(FV) > 1e-3 * torch.linalg.norm(H_dense @ V)  # a real split, F ≠ 0
    assert F.num_matvecs == 4


def test_functional_part_vanishes_for_a_linear_model_with_mse():
    net, X, Y = _problem(torch.nn.Linear(4, 3))
    F = FunctionalOperator.from_model(net, mse, X, Y)
    V = torch.randn(F.shape[0], 3, generator=torch.Generator().manual_seed(3), dtype=F64)
    assert torch.linalg.norm(F @ V) <= 1e-12 * torch.linalg.norm(F.hessian @ V)


def test_gauss_newton_is_positive_semidefinite_and_works_with_top_eigen():
    net, X, Y = _problem(_mlp())
    G_dense, H_dense = _dense(net, cross_entropy, X, Y)
    assert torch.linalg.eigvalsh(G_dense).min() > -1e-12
    assert torch.linalg.eigvalsh(H_dense).min() < -1e-6  # unlike the Hessian itself
    G = GaussNewtonOperator(net, cross_entropy, X, Y)
    result = top_eigen(G, 3, method="lanczos", tol=1e-10)
    assert torch.allclose(result.values, torch.linalg.eigvalsh(G_dense).flip(0)[:3], rtol=1e-8)
    U = result.vectors
    assert torch.allclose(subspace_curvature(G, U), torch.diagonal(U.T @ G_dense @ U), rtol=1e-10)


def test_bad_arguments_raise_value_errors_naming_them():
    net, X, Y = _problem(_mlp())
    with pytest.raises(ValueError, match="backend"):
        GaussNewtonOperator(net, mse, X, Y, backend="sideways")
    with pytest.raises(ValueError, match="v must have shape"):
        GaussNewtonOperator(net, mse, X, Y) @ torch.ones(3, dtype=F64)
    with pytest.raises(ValueError, match="same shape"):
        FunctionalOperator(torch.eye(3, dtype=F64), torch.eye(4, dtype=F64))
