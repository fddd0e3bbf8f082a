"""Bad input to the curvature core raises ValueError naming the argument, never a wrong number."""
import pytest
import torch

from subspace_kit import HessianOperator, SubspaceTracker, top_eigen
from subspace_kit.losses import mse


@pytest.fixture
def operator(make_problem):
    model, X, Y = make_problem("mlp")
    return HessianOperator(model, mse, X, Y)


@pytest.mark.parametrize("k", [0, -1, 79, 80])
def test_top_eigen_rejects_k_outside_one_to_p_minus_one(operator, k):
    assert operator.shape == (79, 79)
    with pytest.raises(ValueError, match=rf"^k must be in \[1, 78\], got {k}"):
        top_eigen(operator, k)


def test_top_eigen_rejects_a_non_integer_k(operator):
    with pytest.raises(ValueError, match=r"^k must be an integer"):
        top_eigen(operator, 2.5)


def test_top_eigen_rejects_an_unknown_method(operator):
    with pytest.raises(ValueError, match=r"^method must be one of .*'lanczos'.*got 'arnoldi'"):
        top_eigen(operator, 2, method="arnoldi")


@pytest.mark.parametrize("tol", [0.0, -1e-3, float("nan")])
def test_top_eigen_rejects_a_non_positive_tol(operator, tol):
    with pytest.raises(ValueError, match=r"^tol must be"):
        top_eigen(operator, 2, tol=tol)


def test_top_eigen_rejects_a_start_vector_of_the_wrong_length(operator):
    with pytest.raises(ValueError, match=r"^v0 must have shape \(79,\)"):
        top_eigen(operator, 2, v0=torch.ones(78, dtype=torch.float64))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_top_eigen_rejects_a_non_finite_start_vector(operator, bad):
    v0 = torch.ones(79, dtype=torch.float64)
    v0[3] = bad
    with pytest.raises(ValueError, match=r"^v0 has non-finite entries"):
        top_eigen(operator, 2, v0=v0, method="lanczos")


def test_top_eigen_rejects_a_non_square_operator():
    with pytest.raises(ValueError, match=r"^H must be a square operator"):
        top_eigen(torch.ones(4, 5), 1)


@pytest.mark.parametrize("shape", [(78,), (80,), (79, 2, 1), (2, 79)])
def test_matmul_rejects_a_vector_of_the_wrong_shape(operator, shape):
    with pytest.raises(ValueError, match=r"^v must have shape \(79,\) or \(79, m\)"):
        operator @ torch.ones(shape, dtype=torch.float64)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_matmul_rejects_non_finite_entries(operator, bad):
    v = torch.ones(79, dtype=torch.float64)
    v[10] = bad
    with pytest.raises(ValueError, match=r"^v has non-finite entries"):
        operator @ v
    assert operator.num_matvecs == 0


def test_operator_rejects_x_and_y_of_different_lengths(make_problem):
    model, X, Y = make_problem("mlp")
    with pytest.raises(ValueError, match=r"^X and Y must have the same length; got len\(X\)=12, len\(Y\)=11"):
        HessianOperator(model, mse, X, Y[:11])


@pytest.mark.parametrize("chunk_size", [0, -3])
def test_operator_rejects_chunk_size_below_one(make_problem, chunk_size):
    model, X, Y = make_problem("mlp")
    with pytest.raises(ValueError, match=rf"^chunk_size must be >= 1, got {chunk_size}"):
        HessianOperator(model, mse, X, Y, chunk_size=chunk_size)


def test_operator_rejects_an_unknown_backend(make_problem):
    model, X, Y = make_problem("mlp")
    with pytest.raises(ValueError, match=r"^backend must be one of"):
        HessianOperator(model, mse, X, Y, backend="symbolic")


def test_operator_rejects_empty_data(make_problem):
    model, X, Y = make_problem("mlp")
    with pytest.raises(ValueError, match=r"^X must hold at least one sample"):
        HessianOperator(model, mse, X[:0], Y[:0])


@pytest.mark.parametrize("kwargs, name", [({"oversample": -1}, "oversample"), ({"tol": 0}, "tol"),
                                          ({"probes": -1}, "probes"), ({"max_matvecs": 0}, "max_matvecs")])
def test_tracker_rejects_bad_settings(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        SubspaceTracker(3, **kwargs)


# ----------------------------------------------------------------- issue 14, item 6
@pytest.mark.parametrize("which", ["X", "Y"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_operator_rejects_non_finite_data_naming_x_or_y(make_problem, which, bad):
    model, X, Y = make_problem("mlp")
    data = {"X": X.clone(), "Y": Y.clone()}
    data[which][4, 1] = bad
    with pytest.raises(ValueError, match=rf"^{which} has non-finite entries .* the first at index 4"):
        HessianOperator(model, mse, data["X"], data["Y"])


def test_integer_inputs_to_a_float_model_say_so(make_problem):
    model, X, Y = make_problem("mlp")
    H = HessianOperator(model, mse, (10 * X).long(), Y)
    with pytest.raises(ValueError, match=r"^model\(X\) fails .*X has dtype torch.int64.*X.float\(\)"):
        H @ torch.ones(H.shape[0], dtype=torch.float64)


def test_class_labels_as_mse_targets_say_so(make_problem):
    model, X, Y = make_problem("mlp")
    H = HessianOperator(model, mse, X, Y.argmax(dim=1))
    with pytest.raises(ValueError, match=r"^loss_fn\(model\(X\), Y\) fails .*integer class labels.*one_hot"):
        H @ torch.ones(H.shape[0], dtype=torch.float64)


def test_matmul_rejects_a_complex_vector(operator):
    with pytest.raises(ValueError, match=r"^v must be real; got dtype torch.complex128"):
        operator @ torch.ones(79, dtype=torch.complex128)


@pytest.mark.parametrize("method", ["lanczos", "block", "dense", "scipy"])
def test_top_eigen_blames_a_non_finite_operator_not_a_vector_nobody_passed(make_problem, method):
    model, X, Y = make_problem("mlp")
    with torch.no_grad():
        next(model.parameters())[0, 0] = float("nan")  # a diverged model
    H = HessianOperator(model, mse, X, Y)
    with pytest.raises(ValueError, match=r"^H @ v returned non-finite values") as info:
        top_eigen(H, 2, method=method)
    assert "v has" not in str(info.value)


def test_tracker_blames_a_non_finite_operator(make_problem):
    model, X, Y = make_problem("mlp")
    H = HessianOperator(model, mse, X, Y)
    tracker = SubspaceTracker(2)
    tracker.update(H)
    with torch.no_grad():
        next(model.parameters())[0, 0] = float("nan")  # inf would saturate in tanh and stay finite
    with pytest.raises(ValueError, match=r"^H @ v returned non-finite values"):
        tracker.update(H)


@pytest.mark.parametrize("name", ["dominant", "bulk", "alignment"])
@pytest.mark.parametrize("g_shape, u_shape, argument", [
    ((78,), (79, 2), r"^g must have shape \(79,\) or \(79, m\) to match U of shape \(79, 2\); got \(78,\)"),
    ((79,), (79,), r"^U must be a basis of shape \(P, k\); got shape \(79,\)"),
    ((2, 79), (79, 2), r"^g must have shape \(79,\) or \(79, m\) to match U of shape \(79, 2\); got \(2, 79\)"),
])
def test_projections_reject_mismatched_shapes_naming_the_argument(name, g_shape, u_shape, argument):
    import subspace_kit

    fn = getattr(subspace_kit, name)
    with pytest.raises(ValueError, match=argument):
        fn(torch.ones(g_shape, dtype=torch.float64), torch.ones(u_shape, dtype=torch.float64))


def test_projections_reject_complex_and_mixed_dtypes():
    from subspace_kit import alignment, dominant

    U = torch.linalg.qr(torch.randn(6, 2, dtype=torch.float64))[0]
    with pytest.raises(ValueError, match=r"^g must be real"):
        dominant(torch.ones(6, dtype=torch.complex128), U)
    with pytest.raises(ValueError, match=r"^g and U must have the same dtype"):
        alignment(torch.ones(6, dtype=torch.float32), U)


def test_a_non_finite_operator_error_is_also_a_linalg_error(make_problem):
    # The engine marks a branch diverged when its refresh raises LinAlgError (issue 14, item 2).
    model, X, Y = make_problem("mlp")
    with torch.no_grad():
        next(model.parameters())[0, 0] = float("nan")
    with pytest.raises(torch.linalg.LinAlgError):
        top_eigen(HessianOperator(model, mse, X, Y), 2, method="lanczos")
