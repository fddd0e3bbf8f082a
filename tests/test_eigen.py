"""top_eigen: every method against torch.linalg.eigh, honest residuals, budgets."""
import pytest
import torch

from subspace_kit import HessianOperator, top_eigen
from subspace_kit.losses import get_loss

METHODS = ("lanczos", "block", "dense", "scipy")
ITERATIVE = ("lanczos", "block")


def explicit_residuals(H, result) -> torch.Tensor:
    """‖H v − λ v‖ / |λ| per pair, computed here from scratch."""
    HV = H @ result.vectors
    return torch.linalg.vector_norm(HV - result.vectors * result.values, dim=0) / result.values.abs()


def check_against_eigh(result, M, k, sin_largest_angle):
    evals, evecs = torch.linalg.eigh(M)
    expected, U = evals.flip(0)[:k], evecs.flip(1)[:, :k]
    assert result.values.shape == (k,) and result.vectors.shape == (M.shape[0], k)
    assert torch.all(result.values[:-1] >= result.values[1:]), "values must be descending"
    assert float(((result.values - expected).abs() / expected.abs()).max()) <= 1e-8
    gram = result.vectors.T @ result.vectors
    assert float((gram - torch.eye(k, dtype=gram.dtype)).abs().max()) <= 1e-10
    assert sin_largest_angle(result.vectors, U) <= 1e-6


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("model_name, loss, k", [("mlp", "mse", 3), ("mlp", "cross_entropy", 2)])
def test_top_eigen_of_a_hessian_matches_eigh(make_problem, dense_hessian, sin_largest_angle, method,
                                             model_name, loss, k):
    model, X, Y = make_problem(model_name)
    H = HessianOperator(model, get_loss(loss), X, Y)
    result = top_eigen(H, k, tol=1e-10, method=method)
    assert result.converged and result.method == method
    check_against_eigh(result, dense_hessian(model, get_loss(loss), X, Y), k, sin_largest_angle)


@pytest.mark.parametrize("method", METHODS)
def test_top_eigen_accepts_a_plain_dense_tensor(symmetric_matrix, sin_largest_angle, method):
    M = symmetric_matrix(torch.cat([torch.tensor([9.0, 7.0, 6.0, 5.0]), torch.linspace(-2.0, 3.0, 56)]), seed=3)
    result = top_eigen(M, 4, tol=1e-10, method=method)
    assert result.converged
    check_against_eigh(result, M, 4, sin_largest_angle)


@pytest.mark.parametrize("method", METHODS)
def test_largest_algebraic_wins_over_larger_negative_eigenvalues(symmetric_matrix, sin_largest_angle, method):
    # |λ| of the three most negative eigenvalues (30, 20, 12) exceeds every positive one (≤ 5):
    # a largest-magnitude solver would return them. The paper's λ1 ≥ λ2 ≥ … is algebraic.
    spectrum = torch.cat([torch.tensor([5.0, 4.0, 3.0, -12.0, -20.0, -30.0]), torch.linspace(-1.0, 1.0, 54)])
    M = symmetric_matrix(spectrum, seed=5)
    result = top_eigen(M, 3, tol=1e-10, method=method)
    assert torch.allclose(result.values, torch.tensor([5.0, 4.0, 3.0], dtype=torch.float64), rtol=1e-8, atol=0)
    check_against_eigh(result, M, 3, sin_largest_angle)


@pytest.mark.parametrize("method", METHODS)
def test_reported_residuals_are_the_explicit_residuals(make_problem, method):
    model, X, Y = make_problem("mlp")
    H = HessianOperator(model, get_loss("mse"), X, Y)
    result = top_eigen(H, 4, tol=1e-6, method=method)
    explicit = explicit_residuals(H, result)
    assert torch.allclose(result.residuals, explicit, rtol=1e-3, atol=1e-12)
    assert result.converged == bool((explicit <= 1e-6).all())


@pytest.mark.parametrize("method", ITERATIVE)
def test_tiny_budget_returns_unconverged_with_a_warning_and_honest_residuals(make_problem, method):
    model, X, Y = make_problem("conv")
    H = HessianOperator(model, get_loss("cross_entropy"), X, Y)
    with pytest.warns(RuntimeWarning, match="tol"):
        result = top_eigen(H, 3, tol=1e-12, method=method, max_matvecs=6)
    assert not result.converged
    assert result.matvecs <= 6
    explicit = explicit_residuals(H, result)
    assert float(explicit.max()) > 1e-12
    assert torch.allclose(result.residuals, explicit, rtol=1e-3, atol=1e-12)


def test_lanczos_residuals_are_honest_in_float32(symmetric_matrix):
    # The Ritz estimate |β s| falls to ~0 here while the true residual sits at the float32
    # rounding floor (~1e-7): the reported residual must be the true one, and a tol below the
    # floor must come back unconverged rather than "converged".
    M = symmetric_matrix(torch.cat([torch.tensor([50.0, 40.0, 30.0]), torch.linspace(-1.0, 1.0, 297)]),
                         seed=2, dtype=torch.float32)
    with pytest.warns(RuntimeWarning):
        result = top_eigen(M, 3, tol=1e-9, method="lanczos")
    explicit = explicit_residuals(M.double(), type(result)(result.values.double(), result.vectors.double(),
                                                           result.residuals, 0, False, "lanczos"))
    assert not result.converged
    assert torch.all(result.residuals.double() >= explicit / 10)
    assert torch.all(result.residuals.double() <= explicit * 10)


def test_lanczos_vectors_stay_orthonormal_in_float32(symmetric_matrix):
    spectrum = torch.cat([torch.linspace(10.0, 6.0, 8), torch.linspace(-3.0, 3.0, 392)])
    M = symmetric_matrix(spectrum, seed=4, dtype=torch.float32)
    result = top_eigen(M, 8, tol=1e-4, method="lanczos")
    gram = result.vectors.T @ result.vectors
    assert float((gram - torch.eye(8)).abs().max()) <= 1e-5
    assert torch.allclose(result.values, spectrum[:8], rtol=1e-4)


def test_lanczos_continues_past_an_invariant_start_vector(symmetric_matrix):
    # v0 is an eigenvector of the 4th eigenvalue: the Krylov space closes after one step and
    # must be extended with fresh directions instead of returning the wrong pair.
    spectrum = torch.tensor([6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.25, 0.0, -1.0])
    M = symmetric_matrix(spectrum, seed=7)
    v0 = torch.linalg.eigh(M).eigenvectors[:, -4]
    result = top_eigen(M, 2, tol=1e-10, method="lanczos", v0=v0)
    assert torch.allclose(result.values, spectrum[:2].double(), rtol=1e-10)


def test_top_eigen_does_not_mutate_its_inputs(symmetric_matrix):
    M = symmetric_matrix(torch.linspace(-1.0, 4.0, 30), seed=1)
    v0 = torch.ones(30, dtype=torch.float64)
    M_before, v0_before = M.clone(), v0.clone()
    for method in ("lanczos", "scipy"):
        top_eigen(M, 2, tol=1e-8, method=method, v0=v0)
    assert torch.equal(M, M_before) and torch.equal(v0, v0_before)


# ----------------------------------------------------------------- the one Lanczos kernel
def test_lanczos_tridiagonal_returns_an_orthonormal_basis_and_its_tridiagonal(symmetric_matrix):
    from subspace_kit import lanczos_tridiagonal

    M = symmetric_matrix(torch.linspace(-3.0, 5.0, 40), seed=2)
    v0 = torch.ones(40, dtype=M.dtype)
    run = lanczos_tridiagonal(M, v0, 12, keep_products=True)
    Q, T = run.basis.T, torch.diag(run.alpha) + torch.diag(run.beta[:-1], 1) + torch.diag(run.beta[:-1], -1)
    assert run.steps == 12 and not run.invariant
    assert torch.allclose(Q.T @ Q, torch.eye(12, dtype=M.dtype), atol=1e-12)
    assert torch.allclose(Q.T @ M @ Q, T.to(M.dtype), atol=1e-10)
    assert torch.allclose(run.products, (M @ Q).T, atol=1e-12)
    assert torch.allclose(Q[:, 0], v0 / v0.norm())
    # H Q = Q T + β_m q_{m+1} e_mᵀ: the residual of the last column has norm beta[-1]
    R = M @ Q - Q @ T.to(M.dtype)
    assert float(R[:, :-1].abs().max()) <= 1e-10
    assert float(R[:, -1].norm()) == pytest.approx(float(run.beta[-1]), rel=1e-8)


def test_lanczos_tridiagonal_stops_when_the_krylov_space_closes(symmetric_matrix):
    from subspace_kit import lanczos_tridiagonal

    M = torch.diag(torch.tensor([3.0, 3.0, 1.0, 1.0, -2.0], dtype=torch.float64))
    run = lanczos_tridiagonal(M, torch.ones(5, dtype=torch.float64), 5)
    assert run.invariant and run.steps == 3  # three distinct eigenvalues
    assert sorted(run.ritz()[0].tolist()) == pytest.approx([-2.0, 1.0, 3.0])


def test_dense_tensors_and_hessian_operators_satisfy_the_operator_protocol(make_problem):
    from subspace_kit import Operator

    model, X, Y = make_problem("mlp")
    assert isinstance(HessianOperator(model, get_loss("mse"), X, Y), Operator)
    assert isinstance(torch.eye(3), Operator)


def test_curvature_modules_import_no_private_names_of_other_modules():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "subspace_kit"
    core = ["eigen.py", "tracker.py", "hessian.py", "projection.py", "operators.py", "threads.py",
            "theory/spectral_density.py"]
    for name in core:
        tree = ast.parse((root / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                private = [a.name for a in node.names if a.name.startswith("_") and a.name != "__future__"]
                assert not private, f"{name} imports private names {private} from {node.module}"
