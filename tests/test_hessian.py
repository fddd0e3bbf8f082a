"""HessianOperator: H @ v against the dense Hessian from torch.func.hessian (float64)."""
import copy

import pytest
import torch

from subspace_kit import HessianOperator
from subspace_kit.losses import get_loss

BACKENDS = ("reverse", "forward")


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(a - b) / torch.linalg.matrix_norm(b))


def random_block(P: int, m: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(P, m, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("model_name", ["mlp", "conv"])
def test_hvp_matches_dense_hessian(make_problem, dense_hessian, model_name, loss, backend):
    model, X, Y = make_problem(model_name)
    loss_fn = get_loss(loss)
    Hd = dense_hessian(model, loss_fn, X, Y)
    H = HessianOperator(model, loss_fn, X, Y, backend=backend)
    V = random_block(H.shape[0], 4)
    assert H.shape == Hd.shape and H.dtype == torch.float64
    assert rel_err(H @ V, Hd @ V) <= 1e-10
    v = V[:, 0]
    Hv = H @ v
    assert Hv.shape == v.shape
    assert float(torch.linalg.vector_norm(Hv - Hd @ v) / torch.linalg.vector_norm(Hd @ v)) <= 1e-10
    assert H.route == backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_hvp_does_not_depend_on_chunk_size(make_problem, backend):
    model, X, Y = make_problem("conv", n=13)
    loss_fn = get_loss("cross_entropy")
    V = random_block(sum(p.numel() for p in model.parameters()), 3)
    whole = HessianOperator(model, loss_fn, X, Y, backend=backend) @ V
    for chunk_size in (1, 5, 13, 100):
        chunked = HessianOperator(model, loss_fn, X, Y, chunk_size=chunk_size, backend=backend) @ V
        assert rel_err(chunked, whole) <= 1e-12, chunk_size


def test_both_backends_agree_on_the_paper_mlp():
    from subspace_kit.models import PaperMLP

    torch.manual_seed(0)
    model = PaperMLP(input_shape=(7,), num_classes=3, width=5).double()
    X = torch.randn(12, 7, dtype=torch.float64)
    Y = torch.nn.functional.one_hot(torch.arange(12) % 3, 3).double()
    V = random_block(sum(p.numel() for p in model.parameters()), 3)
    rev = HessianOperator(model, get_loss("mse"), X, Y, backend="reverse") @ V
    fwd = HessianOperator(model, get_loss("mse"), X, Y, backend="forward") @ V
    assert rel_err(fwd, rev) <= 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("training", [True, False])
def test_hvp_leaves_buffers_mode_and_grads_untouched(make_problem, backend, training):
    model, X, Y = make_problem("batchnorm")
    model.train(training)
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    params = [p.detach().clone() for p in model.parameters()]
    H = HessianOperator(model, get_loss("mse"), X, Y, chunk_size=5, backend=backend)
    H @ random_block(H.shape[0], 2)
    H @ random_block(H.shape[0], 1)[:, 0]
    assert model.training is training
    for name, b in model.named_buffers():
        assert torch.equal(b, buffers[name]), name
    for p, before in zip(model.parameters(), params):
        assert torch.equal(p, before) and p.grad is None


def test_batchnorm_in_train_mode_differentiates_the_training_loss(make_problem):
    # In train mode the loss uses batch statistics. Reference: plain double backward through a
    # copy of the model, the loss a training step differentiates. (torch.func.hessian is no
    # reference here: it gets train-mode BatchNorm wrong, off by ~16% on this model.)
    model, X, Y = make_problem("batchnorm")
    model.train()
    copy_ = copy.deepcopy(model)
    params = list(copy_.parameters())
    grads = torch.autograd.grad(get_loss("mse")(copy_(X), Y), params, create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in grads])
    V = random_block(flat.numel(), 3)
    expected = torch.stack([
        torch.cat([c.reshape(-1) for c in torch.autograd.grad(flat, params, V[:, j], retain_graph=True)])
        for j in range(V.shape[1])
    ], 1)
    for backend in BACKENDS:
        assert rel_err(HessianOperator(model, get_loss("mse"), X, Y, backend=backend) @ V, expected) <= 1e-10


def test_operator_follows_the_model_after_a_parameter_update(make_problem, dense_hessian):
    model, X, Y = make_problem("mlp")
    H = HessianOperator(model, get_loss("mse"), X, Y)  # single chunk: the graph is cached
    V = random_block(H.shape[0], 2)
    H @ V
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    assert rel_err(H @ V, dense_hessian(model, get_loss("mse"), X, Y) @ V) <= 1e-10


def test_num_matvecs_counts_columns(make_problem):
    model, X, Y = make_problem("mlp")
    H = HessianOperator(model, get_loss("mse"), X, Y)
    H @ random_block(H.shape[0], 3)
    H @ random_block(H.shape[0], 1)[:, 0]
    assert H.num_matvecs == 4


def test_loss_and_gradient_match_autograd(make_problem):
    model, X, Y = make_problem("conv")
    loss_fn = get_loss("cross_entropy")
    H = HessianOperator(model, loss_fn, X, Y, chunk_size=5)
    loss, g = H.loss_and_gradient()
    reference = loss_fn(model(X), Y)
    expected = torch.cat([t.reshape(-1) for t in torch.autograd.grad(reference, list(model.parameters()))])
    assert abs(loss - reference.item()) <= 1e-12
    assert float(torch.linalg.vector_norm(g - expected) / torch.linalg.vector_norm(expected)) <= 1e-12


def test_float32_operator_returns_float32(make_problem, dense_hessian):
    model, X, Y = make_problem("mlp", dtype=torch.float32)
    H = HessianOperator(model, get_loss("mse"), X, Y)
    Hd = dense_hessian(copy.deepcopy(model).double(), get_loss("mse"), X.double(), Y.double())
    V = random_block(H.shape[0], 2).float()
    out = H @ V
    assert out.dtype == torch.float32
    assert rel_err(out.double(), Hd @ V.double()) <= 1e-5
