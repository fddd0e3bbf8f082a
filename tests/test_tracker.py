"""SubspaceTracker: warm updates match fresh solves and cost fewer products."""
import pytest
import torch

from subspace_kit import HessianOperator, SubspaceTracker, top_eigen
from subspace_kit.losses import get_loss


def nudge(model, scale: float, seed: int = 0) -> None:
    """A small parameter change, as one optimizer step makes."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def true_residuals(H, result) -> torch.Tensor:
    HV = H @ result.vectors
    return torch.linalg.vector_norm(HV - result.vectors * result.values, dim=0) / result.values.abs()


def test_warm_update_matches_a_fresh_solve_with_fewer_products_than_cold(make_problem, sin_largest_angle):
    # The conv net with cross-entropy has λ2 = 1.22 next to a cluster (1.13, 1.11, 1.04, …):
    # a cold Lanczos from a random vector needs ~36 products to separate it at tol 1e-6. The
    # warm update starts from the previous eigenvectors, which a 1e-5 nudge barely moves.
    model, X, Y = make_problem("conv")
    H = HessianOperator(model, get_loss("cross_entropy"), X, Y)
    tracker = SubspaceTracker(2, tol=1e-6, cold_tol=1e-6)
    cold = tracker.update(H)
    assert cold.method == "lanczos" and cold.converged
    nudge(model, 1e-5)
    warm = tracker.update(H)
    fresh = top_eigen(H, 2, tol=1e-12, method="lanczos")
    assert warm.converged
    assert sin_largest_angle(warm.vectors, fresh.vectors) <= 1e-4
    assert torch.allclose(warm.values, fresh.values, rtol=1e-8)
    assert warm.matvecs < cold.matvecs
    assert torch.allclose(warm.residuals, true_residuals(H, warm), rtol=1e-3, atol=1e-12)
    assert tracker.total_matvecs == cold.matvecs + warm.matvecs


def test_update_on_an_unchanged_operator_costs_one_block(make_problem, sin_largest_angle):
    model, X, Y = make_problem("mlp")
    H = HessianOperator(model, get_loss("mse"), X, Y)
    tracker = SubspaceTracker(3, oversample=2, tol=1e-6)
    first = tracker.update(H)
    second = tracker.update(H)
    assert second.method == "certified" and second.converged
    assert second.matvecs == 3 + 2
    assert sin_largest_angle(second.vectors, first.vectors) <= 1e-5
    assert torch.allclose(second.residuals, true_residuals(H, second), rtol=1e-3, atol=1e-12)


def test_filtered_update_is_accepted_on_explicit_residuals(make_problem, sin_largest_angle):
    # A 1e-2 nudge turns the top-3 subspace of this MLP by more than tol: the Ritz pairs of the
    # old block fail, its power step passes, checked with one more block product.
    model, X, Y = make_problem("mlp")
    H = HessianOperator(model, get_loss("mse"), X, Y)
    tracker = SubspaceTracker(3, tol=1e-2, cold_tol=1e-10)
    tracker.update(H)
    nudge(model, 1e-2)
    result = tracker.update(H)
    assert result.method == "filtered" and result.converged
    assert result.matvecs == 2 * (3 + 2)
    assert torch.allclose(result.residuals, true_residuals(H, result), rtol=1e-3, atol=1e-12)
    assert (true_residuals(H, result) <= tracker.tol).all()
    fresh = top_eigen(H, 3, tol=1e-12, method="lanczos")
    assert sin_largest_angle(result.vectors, fresh.vectors) <= 1e-2
    gram = result.vectors.T @ result.vectors
    assert float((gram - torch.eye(3, dtype=gram.dtype)).abs().max()) <= 1e-12


def test_every_accepted_update_along_a_drift_has_explicit_residuals_within_tol(make_problem):
    # The property the randomized check lacked: whatever path answers, the reported residuals
    # are the true ones and each is <= tol.
    model, X, Y = make_problem("mlp")
    H = HessianOperator(model, get_loss("mse"), X, Y)
    tracker = SubspaceTracker(3, tol=1e-2, cold_tol=1e-10)
    tracker.update(H)
    methods = set()
    for step in range(12):
        nudge(model, 3e-3 * (1 + step % 4), seed=step + 1)
        result = tracker.update(H)
        methods.add(result.method)
        assert result.converged
        true = true_residuals(H, result)
        assert torch.allclose(result.residuals, true, rtol=1e-3, atol=1e-12)
        assert (true <= tracker.tol * (1 + 1e-6)).all()
    assert methods <= {"certified", "filtered", "refined"}


def test_probes_keep_the_randomized_check_and_label_it_estimated(make_problem):
    model, X, Y = make_problem("mlp")
    H = HessianOperator(model, get_loss("mse"), X, Y)
    tracker = SubspaceTracker(3, tol=1e-2, cold_tol=1e-10, probes=4)
    tracker.update(H)
    nudge(model, 1e-2)
    result = tracker.update(H)
    assert result.method == "estimated"
    assert result.matvecs == 3 + 2 + 4
    rss = float(torch.linalg.vector_norm(true_residuals(H, result)))
    assert rss / 3 <= float(result.residuals[0]) <= 3 * rss


def test_tracker_follows_a_drifting_matrix(symmetric_matrix, sin_largest_angle):
    # A plain tensor works as H too; each step rotates the spectrum's eigenvectors a little.
    spectrum = torch.cat([torch.tensor([10.0, 9.0, 8.0]), torch.linspace(-2.0, 2.0, 57)])
    tracker = SubspaceTracker(3, tol=1e-8)
    for step in range(4):
        M = symmetric_matrix(spectrum, seed=0) + 1e-3 * step * symmetric_matrix(spectrum, seed=1)
        result = tracker.update(M)
        assert result.converged
        U = torch.linalg.eigh(M).eigenvectors.flip(1)[:, :3]
        assert sin_largest_angle(result.vectors, U) <= 1e-6
    assert tracker.updates == 4


def test_reset_makes_the_next_update_cold(make_problem):
    model, X, Y = make_problem("mlp")
    H = HessianOperator(model, get_loss("mse"), X, Y)
    tracker = SubspaceTracker(3, tol=1e-6)
    tracker.update(H)
    tracker.reset()
    assert tracker.basis is None
    assert tracker.update(H).method == "lanczos"


def test_restore_resumes_from_a_saved_block(make_problem):
    model, X, Y = make_problem("mlp")
    H = HessianOperator(model, get_loss("mse"), X, Y)
    source = SubspaceTracker(3, tol=1e-6)
    source.update(H)
    resumed = SubspaceTracker(3, tol=1e-6)
    resumed.restore(source._block.clone())
    assert resumed.basis.shape == (H.shape[0], 3)
    assert resumed.update(H).method == "certified"


def test_tracker_rejects_k_not_below_the_operator_size(symmetric_matrix):
    with pytest.raises(ValueError, match=r"^k must"):
        SubspaceTracker(5).update(symmetric_matrix(torch.arange(5.0)))
    with pytest.raises(ValueError, match=r"^k must"):
        SubspaceTracker(0)


def test_block_refresh_spends_one_block_and_moves_towards_the_new_subspace(make_problem, sin_largest_angle):
    model, X, Y = make_problem("mlp")
    H = HessianOperator(model, get_loss("mse"), X, Y)
    tracker = SubspaceTracker(3, oversample=2, tol=1e-8, cold_tol=1e-10)
    tracker.update(H)
    nudge(model, 1e-2)
    exact = top_eigen(H, 3, tol=1e-12, method="lanczos")
    before = sin_largest_angle(tracker.basis, exact.vectors)
    result = tracker.update(H, refresh="block")
    assert result.method == "iterated" and result.matvecs == 3 + 2 and not result.converged
    assert torch.isnan(result.residuals).all()  # not measured: the basis is the power step
    assert sin_largest_angle(result.vectors, exact.vectors) < before / 3
    assert torch.allclose(result.values, exact.values, rtol=1e-2)
    assert tracker.update(H).converged  # a full update afterwards certifies again


def test_rotating_refresh_spends_columns_products_and_renews_every_vector_in_turn(make_problem, sin_largest_angle):
    model, X, Y = make_problem("mlp")
    H = HessianOperator(model, get_loss("mse"), X, Y)
    tracker = SubspaceTracker(4, oversample=2, tol=1e-8, cold_tol=1e-10)
    tracker.update(H)
    nudge(model, 1e-2)
    exact = top_eigen(H, 4, tol=1e-12, method="lanczos").vectors
    before = sin_largest_angle(tracker.basis, exact)
    spent = []
    for _ in range(10):  # five sweeps of the 4 vectors, 2 at a time
        result = tracker.update(H, refresh="rotate", columns=2)
        spent.append(result.matvecs)
        assert result.method == "rotated" and not result.converged
        assert torch.isnan(result.residuals).all()
        gram = result.vectors.T @ result.vectors
        assert float((gram - torch.eye(4, dtype=gram.dtype)).abs().max()) <= 1e-12
        block = tracker.state_dict()["block"]
        assert torch.allclose(block.T @ block, torch.eye(6, dtype=block.dtype), atol=1e-12)
    assert spent == [2] * 10
    assert sin_largest_angle(tracker.basis, exact) < before / 10  # power steps converge to the new subspace


def test_unknown_refresh_is_rejected_naming_it(make_problem):
    model, X, Y = make_problem("mlp")
    tracker = SubspaceTracker(2)
    with pytest.raises(ValueError, match=r"^refresh must be one of"):
        tracker.update(HessianOperator(model, get_loss("mse"), X, Y), refresh="partial")


def test_a_one_dimensional_subspace_is_tracked_with_the_default_refresh():
    # k = 1 (a class group's setting in notebook 15): the rotation width must not be checked when unused
    torch.manual_seed(0)
    A = torch.randn(8, 8, dtype=torch.float64)
    H = A @ A.T
    tracker = SubspaceTracker(1)
    for _ in range(3):
        result = tracker.update(H)
    top = torch.linalg.eigh(H).eigenvectors[:, -1:]
    assert abs(float((top.T @ result.vectors).abs().squeeze())) > 0.99
